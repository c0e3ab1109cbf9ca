"""The engine's runtime, free of kopf: what the operator holds for its life (the accounts, the
health endpoints, the Lease, the registry of objects, the object writer) and the work queue's
work: one reconcile or finalizer pass of an object. Kopf's glue (``handlers/``) hands it each
watch event and nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from barrack_operator import metrics
from barrack_operator.accounts import AccountRuntime
from barrack_operator.barrack.client import MUTATIONS
from barrack_operator.barrack.clock import BarrackClock
from barrack_operator.barrack.routes import ROUTES
from barrack_operator.conditions import SYNCED, Condition, Reason
from barrack_operator.engine.account_set import AccountSet
from barrack_operator.engine.health import HealthServer
from barrack_operator.engine.lease import lease_settings, stop_process
from barrack_operator.engine.listing import listing_trouble
from barrack_operator.engine.money import MoneyWatcher, add_cost
from barrack_operator.engine.mutations import MutationWaits
from barrack_operator.engine.objects import (
    FINALIZER,
    KOPF_FINALIZER,
    Reconciler,
    object_ref,
    paused_outcome,
    view,
    waits_for,
)
from barrack_operator.engine.power import PowerRunner
from barrack_operator.engine.references import Registry
from barrack_operator.engine.releases import Releases
from barrack_operator.engine.uninstall import Uninstall
from barrack_operator.engine.writer import ObjectWriter
from barrack_operator.inventory import Inventory
from barrack_operator.kube import ConfigMapReader, StatusWriter
from barrack_operator.leadership import LeaderElector, LeadershipLost
from barrack_operator.listings import LISTING_OF, InventoryClosed, kinds_touched
from barrack_operator.resources.common import (
    complete_status,
    progressing,
    with_next_try,
)
from barrack_operator.resources.kinds import INSTANCE, KINDS, SNAPSHOT, Kind
from barrack_operator.resources.lifetime import EXTEND_ANNOTATION
from barrack_operator.resources.model import (
    PAUSED_ANNOTATION,
    RECONCILE_REQUESTED_ANNOTATION,
    KubernetesRefused,
    MarkNotWritten,
    Memory,
    ObjectDeleting,
    ObjectView,
    Outcome,
    Timing,
    id_key,
    ref_key,
)
from barrack_operator.resources.ownership import never_on_barrack
from barrack_operator.settings import Settings
from barrack_operator.workqueue import WorkQueue

log = logging.getLogger(__name__)
STOP_GRACE = 30.0
"""Seconds a reconcile under way may take to end when kopf stops."""
STARTUP_GRACE = 30.0
"""Seconds after a start during which a reference missing from the registry may only be unlisted yet."""
Work = Callable[[dict[str, Any]], Awaitable[float | None]]
"""A kind's own work on the queue (snapshot schedules): one pass over the latest body; the
seconds until the next (None: only when woken)."""


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = Registry()
        self.memory = Memory()
        self.timing = Timing(
            transition_requeue=settings.poll_interval,
            blocked_requeue=settings.blocked_requeue,
            drift_interval=settings.drift_interval,
            create_quiet=settings.create_quiet,
        )
        self.status_writer: StatusWriter | None = None
        self.elector: LeaderElector | None = None
        self._keeper: asyncio.Task[None] | None = None
        self.queue = WorkQueue(self._reconcile_key, name="barrack-reconcile")
        self.registry.queue = self.queue
        self.writer = ObjectWriter(lambda: self.status_writer, self.leading, self.memory, self.timing)
        """Everything written on objects: status, events, the create mark and the finalizer."""
        self.clock = BarrackClock()
        """Barrack's time, from its replies: schedules, lifetimes and the month's money follow it."""
        self.power = PowerRunner(self.registry, self.writer, self.timing, self.queue.wake, self.clock.now)
        """BarrackPowerSchedules: what each says of its instances now."""
        self.uninstall = Uninstall(lambda: self.status_writer, self.writer, self.memory, self.timing)
        self.mutations = MutationWaits(self.memory)
        self.releases = Releases(self.registry, self.memory, self.writer, self.leading)
        self.account_set = AccountSet(
            settings, lambda: self.status_writer, self.timing, self._account_options()
        )
        self.accounts = self.account_set.by_name
        """The accounts in use by name; ``default`` is the operator's own key until a
        BarrackAccount of that name exists."""
        self.money = MoneyWatcher(
            settings,
            accounts=lambda: dict(self.accounts),
            declared=lambda name: name in self.account_set.specs,
            writer=lambda: self.status_writer,
            leading=self.leading,
            clock=self.clock,
        )
        """Each account's balance, burn and runway, and its BarrackAccount's status."""
        self.account_set.money = self.money
        self.clock.listen(self._clock_jumped)
        self.health = HealthServer(
            self.account_set.inventories,
            self.poller_alive,
            settings.readiness_max_listing_age,
            leading=self.leading,
        )
        self._paused: dict[str, bool] = {}
        self._started = time.monotonic()
        self._reconcilers: dict[str, tuple[Reconciler, Reconciler]] = {}
        self._work: dict[str, tuple[Work, Callable[[str], None]]] = {}
        self._objects: dict[str, tuple[Kind, dict[str, Any]]] = {}
        """Per object served, its kind and latest body (kopf's, as its watch delivered it)."""

    def _account_options(self) -> dict[str, Any]:
        """What every account's runtime is built with: the shared registry and memory, and the
        callbacks into this runtime."""
        return {
            "refs": self.registry,
            "memory": self.memory,
            "timing": self.timing,
            "mark_create": self.writer.mark_create,
            "observe": self._observe_call,
            "fence": self._fence,
            "on_change": self._on_inventory_change,
            "wake": self.queue.wake,
            "power": self.power.override_for,
            "read_config_map": ConfigMapReader(lambda: self.status_writer),
            "clock": self.clock,
        }

    def _clock_jumped(self, seconds: float) -> None:
        """Barrack's clock jumped: count the month to it; schedule windows and lifetimes look again."""
        self.money.clock_jumped()
        self.power.clock_jumped()
        for uid, (kind, body) in list(self._objects.items()):
            if kind is INSTANCE and (body.get("spec") or {}).get("lifetime"):
                self.queue.wake(uid)

    @property
    def default(self) -> AccountRuntime:
        return self.account_set.default

    def inventories(self) -> dict[str, Inventory]:
        return self.account_set.inventories()

    def poller_alive(self) -> bool:
        return self.account_set.poller_alive()

    async def start(self) -> None:
        """Serve health, take the Lease (a standby waits here: kopf watches nothing until it
        returns), then poll Barrack."""
        self.status_writer = StatusWriter()
        if self.settings.liveness_port:
            await self.health.start(self.settings.listen_address, self.settings.liveness_port)
        if self.settings.leader_election:
            self.elector = LeaderElector(
                self.status_writer.lease, lease_settings(self.settings), on_lost=stop_process
            )
            await self.elector.acquire()
            self._keeper = asyncio.create_task(self.elector.keep(), name="barrack-lease")
        for account in self.accounts.values():
            account.start()
        self.money.start()
        metrics.watch_accounts(lambda: dict(self.accounts))
        metrics.watch_queue(lambda: self.queue.running, lambda: len(self.queue))
        metrics.watch_objects(
            [kind.kind for kind in KINDS],
            lambda: [(kind, info.ready) for (kind, _, _), info in list(self.registry.objects.items())],
        )

    async def on_account_event(self, body: dict[str, Any], event_type: str | None) -> None:
        """A BarrackAccount appeared, changed or went: use it from the next call on."""
        await self.account_set.on_event(body, event_type)

    def leading(self) -> bool:
        """This process reconciles: leader election is off, or it holds the Lease."""
        return self.elector is None or self.elector.valid()

    def _fence(self) -> None:
        if self.elector is not None:
            self.elector.fence()

    async def step_down(self) -> None:
        """A clean stop (SIGTERM): make no call from now on (the fence refuses each; a call waiting
        for the rate limiter is abandoned), let the passes under way end with the replies of calls
        already sent (STOP_GRACE at most), then hand the Lease over at once, before kopf's own stop:
        the standby leads within its retry period."""
        for account in self.accounts.values():
            account.stopping = True  # the pollers' end is not news
        if self.elector is None:
            return
        self.elector.step_down()
        await self.queue.close(STOP_GRACE)
        await self._stop_keeper()
        try:
            await self.elector.release()
            log.info("Stopping: the Lease is handed over")
        except Exception as exc:  # the Lease expires anyway
            log.warning("Handing the Lease over failed (it expires instead): %s", exc)

    async def _stop_keeper(self) -> None:
        """Stop renewing the Lease (before it is handed over, or as the process stops)."""
        if self._keeper is not None:
            self._keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keeper
            self._keeper = None

    async def stop(self) -> None:
        await self.stop_reconciling()
        await self.money.stop()
        await self._stop_keeper()
        for account in list(self.accounts.values()):
            await account.stop()
        if self.elector is not None:
            with contextlib.suppress(Exception):  # best effort: the Lease expires anyway
                await self.elector.release()
        await self.health.stop()
        if self.status_writer is not None:
            await self.status_writer.aclose()

    def _observe_call(self, account: AccountRuntime, route: str, code: str, seconds: float) -> None:
        metrics.observe_barrack_call(route, code, seconds)
        if not ROUTES[route].is_read:
            account.inventory.touched(kinds_touched(route))

    def _on_inventory_change(self, ids: set[str]) -> None:
        for barrack_id in ids:
            self.registry.wake(id_key(barrack_id))
        if any(i in account.inventory.instances.items for account in self.accounts.values() for i in ids):
            self.money.burn_moved()  # an instance came, went or changed power: the burn (and runway) moved

    # Watch events -----------------------------------------------------------------------------------

    def on_event(self, kind: Kind, body: dict[str, Any], event_type: str | None) -> None:
        """Every watch event of a served object: record it (references, wake-ups) and keep its body
        for the work queue. A new object joins the queue at once (its finalizer comes with its
        first create mark, see :data:`FINALIZER`); an object being deleted runs its finalizer pass
        at once, if it carries the finalizer; a deleted one leaves."""
        meta = body.get("metadata", {})
        deleted = event_type == "DELETED"
        if self.registry.observe(kind.kind, body, deleted):
            self.registry.wake(ref_key(kind.kind, meta.get("namespace", ""), meta.get("name", "")))
        uid = meta.get("uid", "")
        if deleted:
            held = self._objects.get(uid)
            if held is not None and FINALIZER not in (held[1].get("metadata", {}).get("finalizers") or ()):
                self.releases.gone_without_finalizer(kind, body)
            self._objects.pop(uid, None)
            self.queue.discard(uid)
            self._forget(uid)
            return
        self._objects[uid] = (kind, body)
        if meta.get("deletionTimestamp"):
            finalizers = meta.get("finalizers") or ()
            if FINALIZER in finalizers or (kind.kind in self._work and KOPF_FINALIZER in finalizers):
                self.queue.add(uid)
            else:
                self.queue.discard(uid)  # nothing of the operator's holds it
            return
        if uid not in self.queue:
            self.queue.add(uid)
            return
        status = body.get("status") or {}
        annotations = meta.get("annotations") or {}
        paused = annotations.get(PAUSED_ANNOTATION) == "true"
        requested = annotations.get(RECONCILE_REQUESTED_ANNOTATION)
        extend = annotations.get(EXTEND_ANNOTATION)
        if (
            status.get("observedGeneration") != meta.get("generation")
            or (requested is not None and requested != status.get("lastHandledReconcileAt"))
            or self._paused.get(uid, paused) != paused
            or (extend is not None and extend != (status.get("lifetime") or {}).get("lastExtension"))
        ):
            self.queue.wake(uid)

    # The work queue ---------------------------------------------------------------------------------

    def serve_kind(self, kind: Kind, reconcile: Reconciler, finalize: Reconciler) -> None:
        """Reconcile the objects of a kind with ``reconcile`` and settle a deleted one's Barrack
        side with ``finalize`` (the glue calls it once per kind)."""
        self._reconcilers[kind.kind] = (reconcile, finalize)

    def serve_work(self, kind: Kind, work: Work, forget: Callable[[str], None]) -> None:
        """Serve a kind that owns nothing on Barrack with work of its own (one pass per run, a
        deleted object's too); ``forget`` drops what it keeps of an object that went."""
        self._work[kind.kind] = (work, forget)

    async def _reconcile_key(self, uid: str) -> float | None:
        """The work queue's work: one reconcile, or one finalizer pass, of the object over its
        latest body; the seconds until its next run (None: only when woken)."""
        held = self._objects.get(uid)
        if held is None:
            return None
        kind, body = held
        if kind.kind in self._work:
            return await self._work[kind.kind][0](body)
        reconcile, finalize = self._reconcilers[kind.kind]
        meta = body.get("metadata", {})
        try:
            if meta.get("deletionTimestamp"):
                if FINALIZER not in (meta.get("finalizers") or ()):
                    return None
                return await self.finalize(kind, finalize, body)
            outcome = await self.reconcile_once(kind, reconcile, body)
        except InventoryClosed:  # its account changed or went mid-pass: nothing was written
            log.debug("The account of %s %s/%s changed mid-pass; passing again", kind.kind,
                      meta.get("namespace"), meta.get("name"))  # fmt: skip
            return 0.0
        return outcome.requeue_after or self.settings.drift_interval

    async def stop_reconciling(self) -> None:
        """Kopf stopped (the operator exits, or kopf starts again over other kinds): no object is
        reconciled until kopf's listings feed the queue again; runs under way get STOP_GRACE."""
        await self.queue.close(STOP_GRACE)
        self._objects.clear()

    async def reconcile_once(self, kind: Kind, reconcile: Reconciler, body: Mapping[str, Any]) -> Outcome:
        obj = view(kind, body)
        if kind is SNAPSHOT:
            await self.writer.outlive_schedule(obj, body)
        account = self.account_set.account_of(obj)
        await self.mutations.see_own(obj.uid, account)
        await self.mutations.read_afresh_if_asked(obj, account)
        started = time.monotonic()
        sent: list[tuple[str, str | None]] = []
        MUTATIONS.set(sent)
        outcome = await self._reconcile_guarded(reconcile, obj, account, finalizing=False)
        _raise_if_closed(account)
        if isinstance(account, AccountRuntime):
            await add_cost(account, obj, outcome)
            await self.writer.write_connection(account, obj, outcome)
        self.mutations.remember(obj, account, outcome, sent)
        self._back_off(obj.uid, outcome)
        elapsed = time.monotonic() - started
        metrics.RECONCILE_SECONDS.labels(kind.kind).observe(elapsed)
        if log.isEnabledFor(logging.DEBUG):  # a pass's line is built only when it is written
            conditions = ", ".join(f"{c.type}={c.status} {c.reason}" for c in outcome.conditions)
            log.debug(
                "Reconciled %s %s/%s in %.2f s: %s; again in %s s",
                kind.kind, obj.namespace, obj.name, elapsed, conditions, outcome.requeue_after,
            )  # fmt: skip
        self.registry.watch(obj.uid, outcome.watch)
        if outcome.status.get("id") and not obj.observe_only:
            self.registry.owners.setdefault(outcome.status["id"], obj.uid)
        if self._settling_after_start(obj, outcome):
            outcome.requeue_after = 1.0
            return outcome
        if not await self.writer.write(
            kind, body, obj, outcome
        ):  # look again soon, not at the drift interval
            outcome.requeue_after = min(outcome.requeue_after or math.inf, self.settings.poll_interval)
        return outcome

    def _settling_after_start(self, obj: ObjectView, outcome: Outcome) -> bool:
        """Just after a start, kopf lists the kinds one after another: an object reconciled before
        may find a reference missing only because its object is not listed yet. That outcome is
        neither written nor posted (a status flap and an event per object on every restart); the
        object looks again in a second."""
        if not obj.recorded_id or time.monotonic() - self._started > STARTUP_GRACE:
            return False
        return any(c.reason == Reason.REFERENCE_NOT_READY for c in outcome.conditions)

    def _back_off(self, uid: str, outcome: Outcome) -> None:
        """A refused or failed call is tried again after blocked_requeue, doubling with each
        failure in a row up to max_backoff; the condition message says when."""
        if not outcome.backoff:
            self.memory.failures.pop(uid, None)
            return
        failures = self.memory.failures.get(uid, 0) + 1
        self.memory.failures[uid] = failures
        delay = min(self.settings.max_backoff, self.settings.blocked_requeue * 2 ** min(failures - 1, 30))
        outcome.requeue_after = max(outcome.requeue_after or 0.0, delay)
        with_next_try(outcome, delay, failures)

    async def _reconcile_guarded(
        self, reconcile: Reconciler, obj: ObjectView, account: AccountRuntime | Outcome, *, finalizing: bool
    ) -> Outcome:
        self._paused[obj.uid] = obj.paused
        if obj.paused:
            return await paused_outcome(reconcile, obj, account, finalizing, self.timing)
        if not isinstance(account, AccountRuntime):
            if finalizing and never_on_barrack(obj, self.memory):
                return Outcome(done=True)  # nothing was ever asked of Barrack for it: nothing to delete
            return account
        context = account.context
        await account.inventory.listed_once(LISTING_OF[obj.kind])
        retained = finalizing and (obj.spec.get("deletionPolicy") == "Retain" or obj.observe_only)
        trouble = None if retained else listing_trouble(account.inventory, obj, self.settings, self.timing)
        if trouble is not None:
            return trouble
        try:
            if not finalizing:
                await self.writer.ensure_finalizer(obj)
            return complete_status(context, obj, await reconcile(context, obj))
        except ObjectDeleting:
            return progressing(Outcome(), self.timing, "deleting this object: nothing is created")
        except LeadershipLost as exc:  # the process is stopping; a fenced process writes nothing
            log.warning("%s", exc, extra=object_ref(obj))
            return Outcome(requeue_after=self.timing.blocked_requeue)
        except (MarkNotWritten, KubernetesRefused) as exc:  # Kubernetes is away or refused: nothing was sent
            log.warning("%s; the operator retries", exc, extra=object_ref(obj))
            out = Outcome(requeue_after=self.timing.transition_requeue)
            out.conditions.append(
                Condition(SYNCED, False, Reason.KUBERNETES_UNAVAILABLE, f"{exc}; the operator retries")
            )
            return complete_status(context, obj, out)
        except InventoryClosed:
            raise
        except Exception as exc:  # one object's bug must not stop the others
            if account.inventory.closed:  # its client closed under it: not a bug, pass again
                raise InventoryClosed(f"the account closed mid-pass ({type(exc).__name__})") from None
            log.exception(
                "Reconcile of %s %s/%s failed unexpectedly",
                obj.kind,
                obj.namespace,
                obj.name,
                extra=object_ref(obj),
            )
            out = Outcome(requeue_after=self.timing.blocked_requeue, backoff=True)
            message = f"unexpected {type(exc).__name__} in the operator; it retries (see the operator log)"
            out.conditions.append(Condition(SYNCED, False, Reason.OPERATOR_ERROR, message))
            return complete_status(context, obj, out)

    async def finalize(self, kind: Kind, finalizer: Reconciler, body: Mapping[str, Any]) -> float | None:
        """One finalizer pass of an object being deleted (run by the work queue, so never beside a
        reconcile of it): settle its Barrack side, then remove the finalizer (None); while that
        waits, the seconds until the next pass."""
        obj = view(kind, body)
        account = self.account_set.account_of(obj)
        await self.mutations.see_own(obj.uid, account)
        sent: list[tuple[str, str | None]] = []
        MUTATIONS.set(sent)
        outcome = self.releases.unowned_outcome(obj) or await self.uninstall.outcome(kind, obj)
        if outcome is None:
            outcome = await self._reconcile_guarded(finalizer, obj, account, finalizing=True)
            _raise_if_closed(account)
        self.mutations.remember(obj, account, outcome, sent)
        self._back_off(obj.uid, outcome)
        await self.writer.write(kind, body, obj, outcome, finalizing=True)
        if not outcome.done:
            delay = outcome.requeue_after or self.timing.transition_requeue
            log.info(
                "The deletion waits: %s; next look in %.0fs", waits_for(outcome), delay, extra=object_ref(obj)
            )
            return delay
        if not await self.writer.release(kind, obj):  # fenced, or the write failed: tried again
            return self.timing.transition_requeue if self.leading() else self.timing.blocked_requeue
        self._forget(obj.uid)
        return None

    def _forget(self, uid: str) -> None:
        """Drop what the process keeps about an object that is gone (or whose finalizer pass ended)."""
        known = self.memory.known_ids.get(uid)
        if known is not None:
            self.registry.unclaim(known, uid)
        self.memory.forget(uid, time.monotonic())
        self._paused.pop(uid, None)
        self.registry.forget(uid)
        self.mutations.forget(uid)
        self.writer.forget(uid)
        for account in self.accounts.values():
            account.capacity.forget(uid)
        for _, forget in self._work.values():
            forget(uid)


def _raise_if_closed(account: AccountRuntime | Outcome) -> None:
    """A pass made over an account that closed under it (a call failed as its client closed, a
    listing it read was its last) writes nothing: it runs again on the account in use."""
    if isinstance(account, AccountRuntime) and account.inventory.closed:
        raise InventoryClosed("the account closed mid-pass")
