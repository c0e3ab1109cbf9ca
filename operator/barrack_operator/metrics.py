"""Prometheus metrics, served on the metrics port: Barrack calls by route and status, rate-limiter
wait and queue, reconcile duration by kind, the reconcile queue, objects by kind and readiness,
and per listing kind the age of its last successful listing and its failed listings by reason.

Prometheus' conventions hold (a test parses a scrape and checks them): every name starts with
``barrack_``; counters end in ``_total``; durations are in seconds and say so; every label has a
bounded set of values (a route of the route table, an HTTP status or ``error``, a kind, a reason
word; never an object's name or a Barrack id)."""

from __future__ import annotations

from collections import Counter as CountOf
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from barrack_operator.barrack import BarrackClient
from barrack_operator.barrack import models as m
from barrack_operator.inventory import Inventory
from barrack_operator.month import Month


class AccountRuntime(Protocol):
    """What the metrics read of an account (the accounts module's runtime; metrics never import
    it, so the two do not import each other)."""

    @property
    def inventory(self) -> Inventory: ...

    @property
    def client(self) -> BarrackClient: ...

    @property
    def balance(self) -> m.BalanceResponse | None: ...

    @property
    def burn(self) -> float | None: ...

    def runway(self) -> float | None: ...

    @property
    def month(self) -> Month | None: ...

    @property
    def config(self) -> Any: ...

    def credits_low(self) -> bool: ...


BARRACK_CALLS = Counter("barrack_api_calls_total", "Calls to the Barrack API.", ["route", "code"])
BARRACK_CALL_SECONDS = Histogram("barrack_api_call_seconds", "Duration of Barrack API calls.", ["route"])
RECONCILE_SECONDS = Histogram("barrack_reconcile_seconds", "Duration of one reconcile.", ["kind"])
RECONCILES = Gauge(
    "barrack_reconcile_queue",
    "Objects in the reconcile queue: running a reconcile now, or waiting.",
    ["state"],
)


def observe_barrack_call(route: str, code: str, seconds: float) -> None:
    BARRACK_CALLS.labels(route, code).inc()
    BARRACK_CALL_SECONDS.labels(route).observe(seconds)


class AccountsCollector(Collector):
    """Per account (a label with one value per BarrackAccount): each listing kind's age
    (``barrack_inventory_age_seconds``, +Inf before the first success, so an alert on it fires)
    and failed listings by reason; the rate limiter's queue and summed wait; the balance, the
    hourly burn and the runway once Barrack has told the balance."""

    def __init__(self, accounts: Callable[[], dict[str, AccountRuntime]]) -> None:
        self._accounts = accounts

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        accounts = sorted(self._accounts().items())
        yield from _listing_families(accounts)
        yield from _money_families(accounts)


def _listing_families(
    accounts: list[tuple[str, AccountRuntime]],
) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """Each account's listings (age, errors, look reads) and its rate limiter."""
    age = GaugeMetricFamily(
        "barrack_inventory_age_seconds",
        "Seconds since the last successful listing of the kind.",
        labels=["account", "kind"],
    )
    errors = CounterMetricFamily(
        "barrack_inventory_errors",
        "Failed inventory listings by kind and reason.",
        labels=["account", "kind", "reason"],
    )
    looks = CounterMetricFamily(
        "barrack_inventory_look_reads",
        "Pages read by looks at moving resources between whole listings, by kind (one request each).",
        labels=["account", "kind"],
    )
    queued = GaugeMetricFamily(
        "barrack_rate_limiter_queued", "Calls waiting for the rate limiter now.", labels=["account"]
    )
    waited = CounterMetricFamily(
        "barrack_rate_limiter_wait_seconds", "Seconds callers waited for the rate limiter, summed over calls.",
        labels=["account"],
    )  # fmt: skip
    for name, account in accounts:
        inventory = account.inventory
        for kind in inventory.kinds:
            seconds = inventory.age(kind)
            age.add_metric([name, kind], float("inf") if seconds is None else seconds)
        for (kind, reason), count in sorted(inventory.error_counts.items()):
            errors.add_metric([name, kind, reason], count)
        for kind, pages in inventory.look_pages.items():
            if pages:
                looks.add_metric([name, kind], pages)
        limiter = account.client.limiter
        queued.add_metric([name], limiter.waiting)
        waited.add_metric([name], limiter.total_wait_seconds)
    yield from (age, errors, looks, queued, waited)


def _money_families(accounts: list[tuple[str, AccountRuntime]]) -> Iterator[GaugeMetricFamily]:
    """Each account's balance, burn, runway and whether its credit is low."""
    balance = GaugeMetricFamily(
        "barrack_account_balance", "Credit left on the account.", labels=["account", "currency"]
    )
    burn = GaugeMetricFamily(
        "barrack_account_burn_per_hour",
        "What the account's resources cost per hour now.",
        labels=["account", "currency"],
    )
    runway = GaugeMetricFamily(
        "barrack_account_runway_hours",
        "Hours until the account's credit runs out at the burn now.",
        labels=["account"],
    )
    low = GaugeMetricFamily(
        "barrack_account_credits_low",
        "1 while the runway is shorter than the account's creditsLowHours.",
        labels=["account"],
    )
    for name, account in accounts:
        if account.balance is None:
            continue
        currency = account.balance.currency
        balance.add_metric([name, currency], account.balance.balance)
        if account.burn is not None:
            burn.add_metric([name, currency], account.burn)
            hours = account.runway()
            runway.add_metric([name], float("inf") if hours is None else hours)
            low.add_metric([name], float(account.credits_low()))
    yield from (balance, burn, runway, low)
    yield from _month_families(accounts)


def _month_families(accounts: list[tuple[str, AccountRuntime]]) -> Iterator[GaugeMetricFamily]:
    """Each account's calendar month: accrued, projected, saved, and its monthly budget."""
    labels = ["account", "currency"]
    to_date = GaugeMetricFamily(
        "barrack_account_month_to_date", "What the account accrued this calendar month.", labels=labels
    )
    projected = GaugeMetricFamily(
        "barrack_account_projected_month_end",
        "Accrued this month plus the burn now over the hours left in it.",
        labels=labels,
    )
    saved = GaugeMetricFamily(
        "barrack_account_saved_this_month",
        "The full-price hours power schedules and lifetimes avoided this month.",
        labels=labels,
    )
    budget = GaugeMetricFamily(
        "barrack_account_monthly_budget", "The account's spec.monthlyBudget.", labels=labels
    )
    for name, account in accounts:
        month = account.month
        if month is None or account.burn is None or account.balance is None:
            continue
        currency = account.balance.currency
        to_date.add_metric([name, currency], month.to_date)
        projected.add_metric([name, currency], month.projected_end(account.burn))
        saved.add_metric([name, currency], month.saved)
        if account.config.monthly_budget is not None:
            budget.add_metric([name, currency], account.config.monthly_budget)
    yield from (to_date, projected, saved, budget)


def watch_accounts(accounts: Callable[[], dict[str, AccountRuntime]]) -> None:
    REGISTRY.register(AccountsCollector(accounts))


def watch_queue(running: Callable[[], int], members: Callable[[], int]) -> None:
    """Count the reconcile queue's objects running a reconcile and waiting for their next."""
    RECONCILES.labels("running").set_function(lambda: float(running()))
    RECONCILES.labels("waiting").set_function(lambda: float(members() - running()))


class ObjectsCollector(Collector):
    """``barrack_objects``: the watched objects by kind and readiness, counted in one pass over
    them per scrape. (A gauge per kind and readiness, each counting every object, made a scrape
    twelve passes: about a second at 10,000 objects, in the metrics server's thread, holding the
    GIL from the event loop while the rate limiter's grants waited.)"""

    def __init__(self) -> None:
        self.kinds: list[str] = []
        self.readiness: Callable[[], Iterable[tuple[str, bool]]] = list

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = CountOf(self.readiness())
        family = self._family()
        for kind in self.kinds:
            for ready in (True, False):
                family.add_metric([kind, str(ready).lower()], counts[(kind, ready)])
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "barrack_objects", "Watched objects by kind and Ready condition.", labels=["kind", "ready"]
        )


OBJECTS = ObjectsCollector()
REGISTRY.register(OBJECTS)


def watch_objects(kinds: Iterable[str], readiness: Callable[[], Iterable[tuple[str, bool]]]) -> None:
    """Count the watched objects by kind and readiness each time the metrics are scraped;
    ``readiness`` yields (kind, ready) for every watched object."""
    OBJECTS.kinds, OBJECTS.readiness = list(kinds), readiness
