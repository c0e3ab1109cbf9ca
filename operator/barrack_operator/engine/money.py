"""The money of every account, watched: its balance, hourly burn and runway, and its
BarrackAccount's status (Ready, CreditsLow, a Warning event when credit turns low). Balances are
read each idle poll interval, and each fast one while an account's credit is low (then its
instances are listed at that interval too: when the balance runs out Barrack hibernates every
instance). When instances come, go or change power, each account's burn is judged again from the
inventory, with no call of its own. Kopf-free."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from typing import Any

from barrack_operator.accounts import AccountRuntime, account_conditions
from barrack_operator.barrack import BarrackError
from barrack_operator.barrack.clock import BarrackClock
from barrack_operator.barrack.credentials import MissingApiKey
from barrack_operator.conditions import BUDGET_FORECAST, CREDITS_LOW, Condition, merge_conditions
from barrack_operator.kube import StatusWriter, event_body
from barrack_operator.leadership import LeadershipLost
from barrack_operator.listings import LISTING_OF
from barrack_operator.month import Month, forecast
from barrack_operator.resources.kinds import ACCOUNT
from barrack_operator.resources.model import ObjectView, Outcome
from barrack_operator.resources.specs import GROUP, VERSION
from barrack_operator.settings import Settings
from barrack_operator.waiting import wait_event

log = logging.getLogger(__name__)


class MoneyWatcher:
    def __init__(
        self,
        settings: Settings,
        *,
        accounts: Callable[[], dict[str, AccountRuntime]],
        declared: Callable[[str], bool],
        writer: Callable[[], StatusWriter | None],
        leading: Callable[[], bool],
        clock: BarrackClock,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._months: dict[str, Month] = {}
        """Each account's month so far (see :mod:`barrack_operator.month`)."""
        self._recorded: dict[str, dict[str, Any]] = {}
        """Each BarrackAccount's status as first seen: its month goes on from there."""
        self._accounts = accounts
        self._declared = declared
        """Whether a BarrackAccount object of this name exists (the default account may have none)."""
        self._writer = writer
        self._leading = leading
        self._conditions: dict[str, list[dict[str, Any]]] = {}
        self._status: dict[str, dict[str, Any]] = {}
        self._written_at: dict[str, float] = {}
        self._now = asyncio.Event()
        self._burn_moved = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._watch_money(), name="barrack-money"),
            asyncio.create_task(self._watch_burn(), name="barrack-burn"),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    def seen(self, name: str, body: dict[str, Any]) -> None:
        """A BarrackAccount's event: its conditions as written before (kept across restarts)."""
        self._conditions.setdefault(name, list((body.get("status") or {}).get("conditions", [])))
        self._recorded.setdefault(name, dict(body.get("status") or {}))

    def now(self) -> None:
        """Read every account's money at once (an account changed)."""
        self._now.set()

    def burn_moved(self) -> None:
        """Instances came, went or changed power: each month is counted up to now at the burn before,
        and the burns are judged again."""
        for account in list(self._accounts().values()):
            self._count(account)
        self._burn_moved.set()

    def clock_jumped(self) -> None:
        """Barrack's clock jumped: each month is counted up to it at the burn before, then the money
        is read again."""
        for account in list(self._accounts().values()):
            self._count(account)
        self._now.set()

    def _count(self, account: AccountRuntime) -> Month | None:
        """The account's month counted up to now at its burn and saving so far; None while its
        burn is not known, or its BarrackAccount's recorded month not read yet."""
        name = account.name
        if account.burn is None or (self._declared(name) and name not in self._recorded):
            return None
        now = self._clock.now()
        month = self._months.get(name) or Month.from_status(self._recorded.get(name, {}), now)
        month = month.count(now, account.burn, account.saving_per_hour())
        self._months[name] = account.month = month
        return month

    def month_status(self, account: AccountRuntime) -> tuple[dict[str, Any], list[Condition]]:
        """The month's status fields and BudgetForecast (counted up to now first)."""
        month = self._count(account)
        if month is None or account.burn is None:
            return {}, []
        budget = account.config.monthly_budget
        condition = forecast(month, account.burn, budget, account.prices.currency)
        return month.status(account.burn, budget), [] if condition is None else [condition]

    async def _watch_money(self) -> None:
        """Each idle poll interval (and at once when an account changes): every account's balance
        and hourly burn, and its BarrackAccount's status (a Warning event when credits turn low).
        While an account's credit is low, each fast poll interval, and its instances are listed
        at that interval too: when the balance runs out Barrack hibernates every instance, and a
        Ready instance must not read Ready for long after (nor be restored into refusals)."""
        while True:
            self._now.clear()
            low = False
            for account in list(self._accounts().values()):
                try:
                    self._count(account)  # up to now at the burn before this read
                    await account.refresh_money()
                    month, forecast_now = self.month_status(account)  # every account's, written or not
                    if self._declared(account.name):
                        fields, conditions = account_conditions(account)
                        await self.write_account(account.name, {**fields, **month}, conditions + forecast_now)
                except LeadershipLost:
                    return
                except Exception:
                    log.exception("Reading the money of account %s failed", account.name)
                account.inventory.watch_closely("instances", account.credits_low())
                low = low or account.credits_low()
            interval = self._settings.poll_interval if low else self._settings.idle_poll_interval
            await wait_event(self._now, interval)

    async def _watch_burn(self) -> None:
        """When instances come, go or change power, each account's burn is judged again from the
        inventory at the prices known (no call of its own): an account whose credit turns low by
        it is watched closely at once, not at the next idle balance read. A burst of changes is
        one judgement per fast poll interval."""
        while True:
            await self._burn_moved.wait()
            await asyncio.sleep(self._settings.poll_interval)
            self._burn_moved.clear()
            for account in list(self._accounts().values()):
                if not account.inventory.closely("instances") and await account.rejudge_burn():
                    account.inventory.watch_closely("instances", True)
                    self._now.set()  # the balance read each fast poll from now on

    async def write_account(self, name: str, fields: dict[str, Any], conditions: list[Condition]) -> None:
        """Write a BarrackAccount's status when it changed (while only the balance drains, once
        per idle interval), and a Warning event when its credit turns low or its month's
        projection passes its budget. BudgetForecast goes when the budget does."""
        writer = self._writer()
        if writer is None or not self._leading():
            return
        previous = self._conditions.get(name, [])
        if "monthlyBudget" not in fields:
            previous = [c for c in previous if c["type"] != BUDGET_FORECAST]
        merged = merge_conditions(previous, conditions, None)
        status = {**fields, "conditions": merged}
        last = self._status.get(name)
        if last == status:
            return
        if last is not None and last.get("conditions") == merged:
            written = self._written_at.get(name, -math.inf)
            if time.monotonic() - written < self._settings.idle_poll_interval:
                return  # the balance drains between looks: written each idle interval, not each look
        try:
            await writer.patch_status(ACCOUNT.plural, "", name, status)
        except Exception as exc:
            log.warning("Status write of BarrackAccount %s failed: %s", name, exc)
            return
        self._conditions[name], self._status[name] = merged, status
        self._written_at[name] = time.monotonic()
        for turned in turned_bad(previous, conditions):
            await self._warn(writer, name, turned)

    @staticmethod
    async def _warn(writer: StatusWriter, name: str, condition: Condition) -> None:
        involved = {"apiVersion": f"{GROUP}/{VERSION}", "kind": ACCOUNT.kind, "name": name, "namespace": ""}
        body = event_body(involved, "Warning", condition.reason, "Observe", condition.message)
        body["metadata"]["namespace"] = "default"  # where Kubernetes keeps a cluster-scoped object's events
        try:
            await writer.post_event(body)
        except Exception as exc:
            log.warning("Posting the event %s of BarrackAccount %s failed: %s", condition.reason, name, exc)


BAD_WHEN = {CREDITS_LOW: True, BUDGET_FORECAST: False}
"""An account's conditions that warn when they turn to this status."""


def turned_bad(previous: list[dict[str, Any]], conditions: list[Condition]) -> list[Condition]:
    """The account's conditions that turned to their bad status since ``previous``."""
    was = {c["type"]: c["status"] == "True" for c in previous}
    return [c for c in conditions if BAD_WHEN.get(c.type) is c.status and was.get(c.type) is not c.status]


async def add_cost(account: AccountRuntime, obj: ObjectView, outcome: Outcome) -> None:
    """status.cost of a billed resource the inventory lists: its hourly price in its state
    now and what it has cost so far. A price not known yet leaves cost out (it comes later)."""
    listing = LISTING_OF[obj.kind]
    if listing not in ("instances", "volumes", "snapshots") or not outcome.status.get("id"):
        return
    item = getattr(account.inventory, listing).items.get(outcome.status["id"])
    if item is None:
        return
    try:
        hourly = await account.prices.hourly(item)
        accrued = await account.accruals.accrued(item)
    except (BarrackError, MissingApiKey, LeadershipLost) as exc:
        log.debug("Cost of %s: %s", item.id, exc)
        return
    if hourly is not None:
        outcome.status["cost"] = {"hourly": round(hourly, 6), "currency": account.prices.currency}
        if accrued is not None:
            outcome.status["cost"]["accrued"] = round(accrued, 6)
