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
from barrack_operator.barrack.credentials import MissingApiKey
from barrack_operator.conditions import CREDITS_LOW, Condition, Reason, merge_conditions
from barrack_operator.kube import StatusWriter, event_body
from barrack_operator.leadership import LeadershipLost
from barrack_operator.listings import LISTING_OF
from barrack_operator.resources.kinds import ACCOUNT
from barrack_operator.resources.model import ObjectView, Outcome
from barrack_operator.resources.specs import GROUP, VERSION
from barrack_operator.settings import Settings

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
    ) -> None:
        self._settings = settings
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

    def now(self) -> None:
        """Read every account's money at once (an account changed)."""
        self._now.set()

    def burn_moved(self) -> None:
        """Instances came, went or changed power: judge the burns again."""
        self._burn_moved.set()

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
                    await account.refresh_money()
                    if self._declared(account.name):
                        await self.write_account(account.name, *account_conditions(account))
                except LeadershipLost:
                    return
                except Exception:
                    log.exception("Reading the money of account %s failed", account.name)
                account.inventory.watch_closely("instances", account.credits_low())
                low = low or account.credits_low()
            interval = self._settings.poll_interval if low else self._settings.idle_poll_interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._now.wait(), interval)

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
        per idle interval), and a Warning event when its credit turns low."""
        writer = self._writer()
        if writer is None or not self._leading():
            return
        previous = self._conditions.get(name, [])
        merged = merge_conditions(previous, conditions, None)
        status = {**fields, "conditions": merged}
        last = self._status.get(name)
        if last == status:
            return
        if last is not None and last.get("conditions") == merged:
            written = self._written_at.get(name, -math.inf)
            if time.monotonic() - written < self._settings.idle_poll_interval:
                return  # the balance drains between looks: written each idle interval, not each look
        low = next((c for c in conditions if c.type == CREDITS_LOW), None)
        was_low = next((c["status"] == "True" for c in previous if c["type"] == CREDITS_LOW), False)
        try:
            await writer.patch_status(ACCOUNT.plural, "", name, status)
        except Exception as exc:
            log.warning("Status write of BarrackAccount %s failed: %s", name, exc)
            return
        self._conditions[name], self._status[name] = merged, status
        self._written_at[name] = time.monotonic()
        if low is not None and low.status and not was_low:
            involved = {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": ACCOUNT.kind,
                "name": name,
                "namespace": "",
            }
            body = event_body(involved, "Warning", Reason.CREDITS_LOW, "Observe", low.message)
            body["metadata"]["namespace"] = (
                "default"  # where Kubernetes keeps a cluster-scoped object's events
            )
            try:
                await writer.post_event(body)
            except Exception as exc:
                log.warning("Posting the event CreditsLow of BarrackAccount %s failed: %s", name, exc)


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
