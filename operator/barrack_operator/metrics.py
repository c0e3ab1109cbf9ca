"""Prometheus metrics, served on the metrics port: Barrack calls by route and status, rate-limiter
wait, reconcile duration by kind, and the inventory's age."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from barrack_operator.inventory import Inventory

BARRACK_CALLS = Counter("barrack_api_calls_total", "Calls to the Barrack API.", ["route", "code"])
BARRACK_CALL_SECONDS = Histogram("barrack_api_call_seconds", "Duration of Barrack API calls.", ["route"])
RECONCILE_SECONDS = Histogram("barrack_reconcile_seconds", "Duration of one reconcile.", ["kind"])
INVENTORY_AGE = Gauge("barrack_inventory_age_seconds", "Seconds since the last complete inventory poll.")
RATE_LIMIT_WAIT = Gauge(
    "barrack_rate_limiter_wait_seconds_total", "Seconds callers waited for the rate limiter."
)

RATE_LIMIT_QUEUE = Gauge("barrack_rate_limiter_queued", "Calls waiting for the rate limiter now.")


def observe_barrack_call(route: str, code: str, seconds: float) -> None:
    BARRACK_CALLS.labels(route, code).inc()
    BARRACK_CALL_SECONDS.labels(route).observe(seconds)


def watch_inventory(inventory: Inventory) -> None:
    INVENTORY_AGE.set_function(lambda: inventory.age() or 0.0)
    limiter = inventory.client.limiter
    RATE_LIMIT_WAIT.set_function(lambda: limiter.total_wait_seconds)
    RATE_LIMIT_QUEUE.set_function(lambda: limiter.waiting)
