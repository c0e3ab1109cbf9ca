"""Seeing a pass's own calls: after a pass changed something on Barrack, its next pass waits for a
read that shows the change, so it never plans from the view before it; and a reconcile asked for
with the annotation waits for reads asked for now."""

from __future__ import annotations

import contextlib
import time

from barrack_operator.accounts import AccountRuntime
from barrack_operator.barrack import BarrackError
from barrack_operator.barrack.credentials import MissingApiKey
from barrack_operator.listings import LISTING_OF, PLAN_READS, ListingFailed, kind_addressed
from barrack_operator.resources.model import Memory, ObjectView, Outcome


class MutationWaits:
    def __init__(self, memory: Memory) -> None:
        self.memory = memory
        self._mutated: dict[str, tuple[float, set[str], set[str]]] = {}
        """Per object: when its last pass ended, and the kinds and ids its calls changed."""

    def remember(
        self,
        obj: ObjectView,
        account: AccountRuntime | Outcome,
        outcome: Outcome,
        sent: list[tuple[str, str | None]],
    ) -> None:
        """The pass just ended, every reply in: its next pass waits until Barrack has shown, in a read
        asked for after now, the object's own resource (what its calls did shows there: a volume
        attaching, a firewall's rules), or, while it has none, the resources its calls named. Not
        after the pass began: a call waits for the rate limiter behind listings, and a page read
        meanwhile shows the resource as it was before the call (a volume still unattached, attached
        a second time and refused 409). An attach's instance is not waited for: nothing the
        volume's next plan reads changes on it, and reading its page after every attach cost a
        page of instances for every few volumes in a burst."""
        if not sent:
            return
        own = outcome.status.get("id") or obj.recorded_id or self.memory.known_ids.get(obj.uid)
        if own:
            kinds, ids = {LISTING_OF[obj.kind]}, {own}
        else:
            kinds = {LISTING_OF[obj.kind]} | {kind_addressed(route) for route, _ in sent}
            ids = {target for _, target in sent if target}
        self._mutated[obj.uid] = (time.monotonic(), kinds, ids)
        if isinstance(account, AccountRuntime):
            account.inventory.expect(ids)

    async def see_own(self, uid: str, account: AccountRuntime | Outcome) -> None:
        """After this object's last reconcile changed something on Barrack, wait for a read that shows
        what it changed, so the next plan is not made from the view before it: a look at the pages
        of those resources, or a listing of their kinds (a kind none of them is known in waits for
        its listing)."""
        mutated = self._mutated.pop(uid, None)
        if mutated is not None and isinstance(account, AccountRuntime):
            since, kinds, ids = mutated
            wait = 10 * max(account.inventory.fast_gap(kind) for kind in kinds)
            with contextlib.suppress(BarrackError, MissingApiKey, ListingFailed):
                await account.inventory.wait_fresh(since, timeout=wait, kinds=kinds, ids=ids)

    async def read_afresh_if_asked(self, obj: ObjectView, account: AccountRuntime | Outcome) -> None:
        """A new ``barrack.ai/reconcile-requested-at`` asks for a pass over Barrack as it is now:
        wait for reads asked for now of what the plan reads (a look at the object's own resource,
        listings of the kinds it depends on), so a change made behind the operator's back (a
        rule removed) is seen and undone within seconds, not at the next idle listing. The pass
        that used them writes lastHandledReconcileAt. A paused object reads nothing."""
        asked = obj.reconcile_requested_at
        if not asked or asked == obj.status.get("lastHandledReconcileAt") or obj.paused:
            return
        if not isinstance(account, AccountRuntime):
            return
        own = obj.recorded_id or self.memory.known_ids.get(obj.uid)
        inventory = account.inventory
        with contextlib.suppress(BarrackError, MissingApiKey, ListingFailed):  # the pass says what failed
            await inventory.wait_fresh(
                time.monotonic(),
                timeout=10 * max(inventory.fast_gap(k) for k in PLAN_READS[obj.kind]),
                kinds=PLAN_READS[obj.kind],
                ids=[own] if own else [],
            )

    def forget(self, uid: str) -> None:
        self._mutated.pop(uid, None)
