"""Prometheus metrics, served on the metrics port: Barrack calls by route and status, rate-limiter
wait and queue, reconcile duration by kind, objects by kind and readiness, and per listing kind the
age of its last successful listing and its failed listings by reason.

Prometheus' conventions hold (a test parses a scrape and checks them): every name starts with
``barrack_``; counters end in ``_total``; durations are in seconds and say so; every label has a
bounded set of values (a route of the route table, an HTTP status or ``error``, a kind, a reason
word; never an object's name or a Barrack id)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from barrack_operator.inventory import Inventory

BARRACK_CALLS = Counter("barrack_api_calls_total", "Calls to the Barrack API.", ["route", "code"])
BARRACK_CALL_SECONDS = Histogram("barrack_api_call_seconds", "Duration of Barrack API calls.", ["route"])
RECONCILE_SECONDS = Histogram("barrack_reconcile_seconds", "Duration of one reconcile.", ["kind"])
RATE_LIMIT_QUEUE = Gauge("barrack_rate_limiter_queued", "Calls waiting for the rate limiter now.")
OBJECTS = Gauge("barrack_objects", "Watched objects by kind and Ready condition.", ["kind", "ready"])


def observe_barrack_call(route: str, code: str, seconds: float) -> None:
    BARRACK_CALLS.labels(route, code).inc()
    BARRACK_CALL_SECONDS.labels(route).observe(seconds)


class InventoryCollector(Collector):
    """``barrack_inventory_age_seconds{kind}`` (since the last successful listing; +Inf before the
    first, so an alert on it fires) and ``barrack_inventory_errors_total{kind,reason}``."""

    def __init__(self, inventory: Inventory) -> None:
        self._inventory = inventory

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        age = GaugeMetricFamily(
            "barrack_inventory_age_seconds",
            "Seconds since the last successful listing of the kind.",
            labels=["kind"],
        )
        for kind in self._inventory.KINDS:
            seconds = self._inventory.age(kind)
            age.add_metric([kind], float("inf") if seconds is None else seconds)
        yield age
        errors = CounterMetricFamily(
            "barrack_inventory_errors",
            "Failed inventory listings by kind and reason.",
            labels=["kind", "reason"],
        )
        for (kind, reason), count in sorted(self._inventory.error_counts.items()):
            errors.add_metric([kind, reason], count)
        yield errors


class RateLimiterCollector(Collector):
    """``barrack_rate_limiter_wait_seconds_total``: seconds callers waited for the rate limiter,
    summed (a counter: rate() of it is the share of time spent waiting)."""

    def __init__(self, waited: Callable[[], float]) -> None:
        self._waited = waited

    def collect(self) -> Iterator[CounterMetricFamily]:
        yield CounterMetricFamily(
            "barrack_rate_limiter_wait_seconds",
            "Seconds callers waited for the rate limiter, summed over calls.",
            value=self._waited(),
        )


def watch_inventory(inventory: Inventory) -> None:
    REGISTRY.register(InventoryCollector(inventory))
    limiter = inventory.client.limiter
    REGISTRY.register(RateLimiterCollector(lambda: limiter.total_wait_seconds))
    RATE_LIMIT_QUEUE.set_function(lambda: limiter.waiting)


def watch_objects(kinds: Iterable[str], readiness: Callable[[], Iterable[tuple[str, bool]]]) -> None:
    """Count the watched objects by kind and readiness each time the metrics are scraped;
    ``readiness`` yields (kind, ready) for every watched object."""

    def counter(kind: str, ready: bool) -> Callable[[], float]:
        return lambda: float(sum(1 for k, r in readiness() if k == kind and r == ready))

    for kind in kinds:
        for ready in (True, False):
            OBJECTS.labels(kind, str(ready).lower()).set_function(counter(kind, ready))
