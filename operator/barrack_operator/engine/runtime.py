"""The engine's runtime, free of kopf: what the operator holds for its life (the accounts with their
clients, inventories and supervised pollers, the health endpoints, the Lease, the registry of
objects) and the work queue's work: one reconcile or finalizer pass of an object and the write of
its outcome. Kopf's glue (``handlers/``) hands it each watch event and nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import socket
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from barrack_operator import metrics
from barrack_operator.accounts import (
    AccountConfig,
    AccountRuntime,
    InvalidAccount,
    SecretKeySource,
)
from barrack_operator.barrack import ApiKeySource, BarrackError
from barrack_operator.barrack.client import MUTATIONS
from barrack_operator.barrack.credentials import MissingApiKey
from barrack_operator.barrack.errors import Unauthorized
from barrack_operator.barrack.routes import ROUTES
from barrack_operator.conditions import (
    READY,
    SYNCED,
    Condition,
    Reason,
    kstatus_conditions,
    merge_conditions,
)
from barrack_operator.connection import connection_data, secret_manifest
from barrack_operator.engine.health import HealthServer
from barrack_operator.engine.money import MoneyWatcher
from barrack_operator.engine.references import Registry
from barrack_operator.inventory import (
    LISTING_OF,
    PLAN_READS,
    Inventory,
    InventoryClosed,
    ListingFailed,
    kind_addressed,
    kinds_touched,
)
from barrack_operator.kube import ObjectGone, SecretConflict, StatusWriter, event_body
from barrack_operator.leadership import LeaderElector, LeadershipLost, LeaseSettings
from barrack_operator.resources.common import (
    blocked,
    complete_status,
    failed,
    failure_reason,
    progressing,
    with_next_try,
)
from barrack_operator.resources.kinds import ALL_KINDS, BY_KIND, KINDS, SCHEDULE, SNAPSHOT, Kind
from barrack_operator.resources.model import (
    PAUSED_ANNOTATION,
    RECONCILE_REQUESTED_ANNOTATION,
    RECREATE_ANNOTATION,
    Context,
    Event,
    MarkNotWritten,
    Memory,
    ObjectDeleting,
    ObjectView,
    Outcome,
    Timing,
    id_key,
    ref_key,
)
from barrack_operator.resources.ownership import RELEASED, owned_id, released_without_call
from barrack_operator.resources.specs import DEFAULT_ACCOUNT, GROUP, VERSION, account_name
from barrack_operator.settings import Settings
from barrack_operator.workqueue import WorkQueue

log = logging.getLogger(__name__)
CREATE_REQUESTED_ANNOTATION = f"{GROUP}/create-requested"
"""On an object: the Barrack name the operator asked Barrack to create a resource under."""
FINALIZER = f"{GROUP}/finalizer"
"""The operator's finalizer. An object gets it in the write that marks its first create (one write
for both), or, when it names a Barrack resource already (an adoptId, a recorded id), before its
first reconcile; an object that never asked Barrack for anything has none and goes at once when
deleted. The finalizer pass removes it once the Barrack side is settled."""
KOPF_FINALIZER = f"{GROUP}/kopf-finalizer"
"""Kopf's own finalizer, on the kinds it runs a daemon for (snapshot schedules). It must differ
from :data:`FINALIZER`: kopf removes its finalizer from any object none of its handlers needs it
for, and it has no handler for the kinds the work queue serves (the queue finalizes them too)."""
STOP_GRACE = 30.0
"""Seconds a reconcile under way may take to end when kopf stops."""
STARTUP_GRACE = 30.0
"""Seconds after a start during which a reference missing from the registry may only be unlisted yet."""
Reconciler = Callable[[Context, ObjectView], Awaitable[Outcome]]


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
        self.accounts: dict[str, AccountRuntime] = {}
        """The accounts in use by name; ``default`` is the operator's own key until a
        BarrackAccount of that name exists."""
        self.account_specs: dict[str, AccountConfig] = {}
        """Accounts declared by BarrackAccount objects."""
        self._account_problems: dict[str, str] = {}
        self.money = MoneyWatcher(
            settings,
            accounts=lambda: dict(self.accounts),
            declared=lambda name: name in self.account_specs,
            writer=lambda: self.status_writer,
            leading=self.leading,
        )
        """Each account's balance, burn and runway, and its BarrackAccount's status."""
        self.status_writer: StatusWriter | None = None
        self.elector: LeaderElector | None = None
        self._keeper: asyncio.Task[None] | None = None
        self.health = HealthServer(
            self.inventories, self.poller_alive, settings.readiness_max_listing_age, leading=self.leading
        )
        self._mutated: dict[str, tuple[float, set[str], set[str]]] = {}
        self._paused: dict[str, bool] = {}
        self._last_warning: dict[str, str] = {}
        self._connections: dict[tuple[str, str], dict[str, str]] = {}
        self._started = time.monotonic()
        self._written: dict[str, dict[str, Any]] = {}
        """Per object, the status fields last written, until kopf's body shows them."""
        self._background: set[asyncio.Task[None]] = set()
        """Events posted from a watch event (kept until they end)."""
        self._finalizer_added: set[str] = set()
        """Objects whose finalizer this process wrote (their body may not show it yet)."""
        self._reconcilers: dict[str, tuple[Reconciler, Reconciler]] = {}
        self._objects: dict[str, tuple[Kind, dict[str, Any]]] = {}
        """Per object served, its kind and latest body (kopf's, as its watch delivered it)."""
        self.queue = WorkQueue(self._reconcile_key, name="barrack-reconcile")
        self.registry.queue = self.queue
        self._use_account(AccountConfig.from_settings(settings))

    @property
    def default(self) -> AccountRuntime:
        return self.accounts[DEFAULT_ACCOUNT]

    def inventories(self) -> dict[str, Inventory]:
        """The inventories that /readyz judges: every account's but those whose key is missing or
        refused (a configuration problem the account's status shows, not the pod's)."""
        return {
            name: account.inventory
            for name, account in self.accounts.items()
            if not isinstance(account.balance_error, Unauthorized | MissingApiKey)
        }

    def _use_account(self, config: AccountConfig) -> AccountRuntime:
        """Build (not start) the runtime of an account; it replaces one of the same name."""
        if config.secret is not None:
            assert self.status_writer is not None, "accounts from Secrets are read once the operator runs"
            key_source: ApiKeySource | SecretKeySource = SecretKeySource(
                self.status_writer, operator_namespace(self.settings), *config.secret
            )
        else:
            key_source = ApiKeySource(key_file=config.key_file)
        account = AccountRuntime(
            config,
            self.settings,
            key_source=key_source,
            refs=self.registry,
            memory=self.memory,
            timing=self.timing,
            mark_create=self._mark_create,
            observe=self._observe_call,
            fence=self._fence,
            on_change=self._on_inventory_change,
        )
        self.accounts[config.name] = account
        return account

    async def start(self) -> None:
        """Serve health, take the Lease (a standby waits here: kopf watches nothing until it
        returns), then poll Barrack."""
        self.status_writer = StatusWriter()
        if self.settings.liveness_port:
            await self.health.start(self.settings.listen_address, self.settings.liveness_port)
        if self.settings.leader_election:
            self.elector = LeaderElector(
                self.status_writer.lease, lease_settings(self.settings), on_lost=_stop_process
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

    # Accounts --------------------------------------------------------------------------------------

    async def on_account_event(self, body: dict[str, Any], event_type: str | None) -> None:
        """A BarrackAccount appeared, changed or went: use it from the next call on."""
        name = body.get("metadata", {}).get("name", "")
        if event_type == "DELETED":
            await self._forget_account(name)
            return
        self.money.seen(name, body)
        try:
            config = AccountConfig.from_spec(name, dict(body.get("spec") or {}))
        except InvalidAccount as exc:
            problem = f"BarrackAccount {name} is invalid ({exc}); no Barrack call is made for its objects"
            self._account_problems[name] = problem
            self.account_specs.pop(name, None)
            await self._drop_account(name)
            await self.money.write_account(name, {}, [Condition(READY, False, Reason.INVALID_SPEC, problem)])
            return
        self._account_problems.pop(name, None)
        self.account_specs[name] = config
        current = self.accounts.get(name)
        if current is not None and current.config.connection() == config.connection():
            current.config = config  # budget, namespaces, thresholds: no new client needed
            return
        log.info("Account %s: using %s (rate %g/s)", name, config.api_url, config.requests_per_second)
        account = self._use_account(config)
        account.start()
        if current is not None:
            await current.stop()
        self.money.now()

    async def _forget_account(self, name: str) -> None:
        self.account_specs.pop(name, None)
        self._account_problems.pop(name, None)
        await self._drop_account(name)

    async def _drop_account(self, name: str) -> None:
        """Stop using an account; ``default`` falls back to the operator's own key."""
        current = self.accounts.pop(name, None)
        if name == DEFAULT_ACCOUNT:
            self._use_account(AccountConfig.from_settings(self.settings)).start()
        if current is not None:
            await current.stop()

    def leading(self) -> bool:
        """This process reconciles: leader election is off, or it holds the Lease."""
        return self.elector is None or self.elector.valid()

    def _fence(self) -> None:
        if self.elector is not None:
            self.elector.fence()

    def poller_alive(self) -> bool:
        return all(account.poller_alive() for account in self.accounts.values())

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

    async def _mark_create(self, obj: ObjectView, spec_defaults: dict[str, Any]) -> None:
        """Write on the object that a create of its Barrack name is about to be sent (see
        ``ensure_exists``), and in the same write the spec values the create applies to fields the
        spec leaves out (late initialization, one write early); a failed write stops the create."""
        patch: dict[str, Any] = {"metadata": {"annotations": {CREATE_REQUESTED_ANNOTATION: obj.barrack_name}}}
        if spec_defaults:
            patch["spec"] = spec_defaults
        await self._write_with_finalizer(obj, patch, "mark the object before creating")

    async def _ensure_finalizer(self, obj: ObjectView) -> None:
        """Before a reconcile: an object that names a Barrack resource already (an adoptId, an
        id recorded or known) gets the finalizer now; one that has asked Barrack for nothing gets
        it with its create mark (:meth:`_mark_create`), or never. An observed object needs none
        (its deletion calls nothing on Barrack)."""
        if not (obj.observe_only or self._has_finalizer(obj) or self._never_on_barrack(obj)):
            await self._write_with_finalizer(obj, {}, "add the finalizer")

    def _has_finalizer(self, obj: ObjectView) -> bool:
        return FINALIZER in obj.finalizers or obj.uid in self._finalizer_added

    async def _write_with_finalizer(self, obj: ObjectView, patch: dict[str, Any], what: str) -> None:
        """Merge-patch the object, adding the finalizer in the same write when it lacks it;
        :class:`MarkNotWritten` unless written (no create follows), :class:`ObjectDeleting` when
        the object went or its deletion began."""
        assert self.status_writer is not None
        if not self.leading():
            raise LeadershipLost("the Lease is lost: this process writes nothing more")
        plural = BY_KIND[obj.kind].plural
        try:
            if self._has_finalizer(obj):
                await self.status_writer.patch_object(plural, obj.namespace, obj.name, patch)
                return
            seen = (list(obj.finalizers), obj.resource_version)
            await self.status_writer.patch_adding_finalizer(
                plural, obj.namespace, obj.name, FINALIZER, seen, patch
            )
            self._finalizer_added.add(obj.uid)
        except ObjectGone as exc:
            raise ObjectDeleting() from exc
        except Exception as exc:
            raise MarkNotWritten(f"could not {what} ({exc})") from exc

    def _observe_call(self, account: AccountRuntime, route: str, code: str, seconds: float) -> None:
        metrics.observe_barrack_call(route, code, seconds)
        if not ROUTES[route].is_read:
            account.inventory.touched(kinds_touched(route))

    def _on_inventory_change(self, ids: set[str]) -> None:
        for barrack_id in ids:
            self.registry.wake(id_key(barrack_id))
        if any(i in account.inventory.instances.items for account in self.accounts.values() for i in ids):
            self.money.burn_moved()  # an instance came, went or changed power: the burn (and runway) moved

    # kopf events -----------------------------------------------------------------------------------

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
                self._gone_without_finalizer(kind, body)
            self._objects.pop(uid, None)
            self.queue.discard(uid)
            self._forget(uid)
            return
        self._objects[uid] = (kind, body)
        if meta.get("deletionTimestamp"):
            if FINALIZER in (meta.get("finalizers") or ()):
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
        if (
            status.get("observedGeneration") != meta.get("generation")
            or (requested is not None and requested != status.get("lastHandledReconcileAt"))
            or self._paused.get(uid, paused) != paused
        ):
            self.queue.wake(uid)

    # The work queue ---------------------------------------------------------------------------------

    def serve_kind(self, kind: Kind, reconcile: Reconciler, finalize: Reconciler) -> None:
        """Reconcile the objects of a kind with ``reconcile`` and settle a deleted one's Barrack
        side with ``finalize`` (the glue calls it once per kind)."""
        self._reconcilers[kind.kind] = (reconcile, finalize)

    async def _reconcile_key(self, uid: str) -> float | None:
        """The work queue's work: one reconcile, or one finalizer pass, of the object over its
        latest body; the seconds until its next run (None: only when woken)."""
        held = self._objects.get(uid)
        if held is None:
            return None
        kind, body = held
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
            await self._outlive_schedule(obj, body)
        account = self._account_of(obj)
        await self._see_own_mutations(obj.uid, account)
        await self._read_afresh_if_asked(obj, account)
        started = time.monotonic()
        sent: list[tuple[str, str | None]] = []
        MUTATIONS.set(sent)
        outcome = await self._reconcile_guarded(reconcile, obj, account, finalizing=False)
        _raise_if_closed(account)
        if isinstance(account, AccountRuntime):
            await self._add_cost(account, obj, outcome)
            await self._write_connection(account, obj, outcome)
        self._remember_mutations(obj, account, outcome, sent)
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
        if not await self.write(kind, body, obj, outcome):  # look again soon, not at the drift interval
            outcome.requeue_after = min(outcome.requeue_after or math.inf, self.settings.poll_interval)
        return outcome

    async def _outlive_schedule(self, obj: ObjectView, body: Mapping[str, Any]) -> None:
        """A snapshot an earlier release made with an ownerReference to its schedule loses it on
        its first pass (a schedule's deletion keeps its backups); a failure is tried next pass."""
        references = list(body.get("metadata", {}).get("ownerReferences") or ())
        if self.status_writer is None or not self.leading():
            return
        if not any(r.get("kind") == SCHEDULE.kind for r in references):
            return
        try:
            await self.status_writer.drop_owner_references(
                SNAPSHOT.plural, obj.namespace, obj.name, SCHEDULE.kind, references
            )
            log.info(
                "Released from its schedule's ownerReference (backups outlive it)", extra=object_ref(obj)
            )
        except Exception as exc:
            log.warning("Dropping the schedule's ownerReference failed: %s", exc, extra=object_ref(obj))

    def _settling_after_start(self, obj: ObjectView, outcome: Outcome) -> bool:
        """Just after a start, kopf lists the kinds one after another: an object reconciled before
        may find a reference missing only because its object is not listed yet. That outcome is
        neither written nor posted (a status flap and an event per object on every restart); the
        object looks again in a second."""
        if not obj.recorded_id or time.monotonic() - self._started > STARTUP_GRACE:
            return False
        return any(c.reason == Reason.REFERENCE_NOT_READY for c in outcome.conditions)

    def _account_of(self, obj: ObjectView) -> AccountRuntime | Outcome:
        """The account the object uses, or why it cannot use one: no such BarrackAccount (or an
        invalid one), or one its namespace may not use. Either way no Barrack call is made."""
        name = account_name(obj.spec)
        account = self.accounts.get(name)
        if account is None:
            reason, message = (
                Reason.ACCOUNT_NOT_FOUND,
                self._account_problems.get(name)
                or (
                    f"there is no BarrackAccount named {name}: create it, or set spec.accountRef to an existing "
                    "one; no Barrack call is made meanwhile"
                ),
            )
        elif not account.config.allows(obj.namespace):
            reason = Reason.ACCOUNT_NOT_ALLOWED
            message = (
                f"namespace {obj.namespace} may not use BarrackAccount {name} (its allowedNamespaces: "
                f"{', '.join(account.config.allowed_namespaces)}); no Barrack call is made: use another "
                "account in spec.accountRef, or add the namespace to the account"
            )
        else:
            return account
        return blocked(Outcome(), reason, message, self.timing, ready=True)

    async def _write_connection(self, account: AccountRuntime, obj: ObjectView, outcome: Outcome) -> None:
        """Keep the Secret spec.writeConnectionSecretToRef names current with how to reach the
        instance; written only when what it holds changes (a new IP after a hibernation)."""
        ref = obj.spec.get("writeConnectionSecretToRef")
        item = account.inventory.instances.items.get(outcome.status.get("id") or "")
        if not ref or item is None or self.status_writer is None or not self.leading():
            return
        data = connection_data(item, await account.image_name(item))
        key = (obj.uid, ref["name"])
        if self._connections.get(key) == data:
            return
        owner = {"apiVersion": f"{GROUP}/{VERSION}", "kind": obj.kind, "name": obj.name, "uid": obj.uid}
        try:
            await self.status_writer.write_secret(secret_manifest(obj.namespace, ref["name"], owner, data))
        except SecretConflict as exc:  # someone else's Secret: never written, and said so
            outcome.conditions = [c for c in outcome.conditions if c.type != SYNCED]
            blocked(outcome, Reason.SECRET_CONFLICT, str(exc), self.timing, ready=True)
            return
        except Exception as exc:  # the next pass writes again
            log.warning(
                "Writing the connection Secret %s failed: %s", ref["name"], exc, extra=object_ref(obj)
            )
            return
        self._connections[key] = data

    def _never_on_barrack(self, obj: ObjectView) -> bool:
        """No Barrack resource can be this object's: it has no id, never asked for a create and
        adopts nothing."""
        return not (
            obj.recorded_id
            or obj.create_requested_name
            or obj.spec.get("adoptId")
            or self.memory.known_ids.get(obj.uid)
            or obj.uid in self.memory.creating
        )

    async def _add_cost(self, account: AccountRuntime, obj: ObjectView, outcome: Outcome) -> None:
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
            log.debug("Cost of %s: %s", item.id, exc, extra=object_ref(obj))
            return
        if hourly is not None:
            outcome.status["cost"] = {"hourly": round(hourly, 6), "currency": account.prices.currency}
            if accrued is not None:
                outcome.status["cost"]["accrued"] = round(accrued, 6)

    def _remember_mutations(
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

    async def _see_own_mutations(self, uid: str, account: AccountRuntime | Outcome) -> None:
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

    async def _read_afresh_if_asked(self, obj: ObjectView, account: AccountRuntime | Outcome) -> None:
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

    def _listing_trouble(self, account: AccountRuntime, obj: ObjectView) -> Outcome | None:
        """An outcome for an object whose kind Barrack cannot list now: before its first listing,
        or after ``stale_after_failed_polls`` failures in a row (its status may be out of date)."""
        listing = LISTING_OF[obj.kind]
        inventory = account.inventory
        error = inventory.listing_error(listing)
        if error is None:
            return None
        never_listed = not getattr(inventory, listing).ok
        failures = inventory.failing_for(listing)
        if never_listed:
            return failed(Outcome(), error, self.timing)
        if failures < self.settings.stale_after_failed_polls:
            return None
        reason, message = failure_reason(error)
        out = Outcome(requeue_after=inventory.retry_gap(listing))
        out.conditions.append(
            Condition(
                SYNCED,
                False,
                reason,
                f"Barrack's {listing.replace('_', ' ')} listing failed {failures} times in a row, so this "
                f"status may be out of date: {message}",
            )
        )
        out.warn(reason, out.conditions[0].message.split(":")[0])
        return out

    async def _paused_outcome(
        self, reconcile: Reconciler, obj: ObjectView, account: AccountRuntime | Outcome, finalizing: bool
    ) -> Outcome:
        """Synced=False ReconcilePaused; outside a deletion, Ready as the frame's read-only pass
        finds it (the spec compared with the inventory, no call)."""
        out = Outcome()
        if (
            not finalizing
            and isinstance(account, AccountRuntime)
            and account.inventory.listing_error(LISTING_OF[obj.kind]) is None
        ):
            out = complete_status(account.context, obj, await reconcile(account.context, obj))
        out.requeue_after = self.timing.blocked_requeue
        message = (
            f"reconciling is paused by the annotation {PAUSED_ANNOTATION}: no Barrack call is made for this "
            "object, deletion included; remove the annotation to resume"
        )
        out.conditions.append(Condition(SYNCED, False, Reason.RECONCILE_PAUSED, message))
        return out

    async def _reconcile_guarded(
        self, reconcile: Reconciler, obj: ObjectView, account: AccountRuntime | Outcome, *, finalizing: bool
    ) -> Outcome:
        self._paused[obj.uid] = obj.paused
        if obj.paused:
            return await self._paused_outcome(reconcile, obj, account, finalizing)
        if not isinstance(account, AccountRuntime):
            if finalizing and self._never_on_barrack(obj):
                return Outcome(done=True)  # nothing was ever asked of Barrack for it: nothing to delete
            return account
        context = account.context
        await account.inventory.listed_once(LISTING_OF[obj.kind])
        retained = finalizing and (obj.spec.get("deletionPolicy") == "Retain" or obj.observe_only)
        trouble = None if retained else self._listing_trouble(account, obj)
        if trouble is not None:
            return trouble
        try:
            if not finalizing:
                await self._ensure_finalizer(obj)
            return complete_status(context, obj, await reconcile(context, obj))
        except ObjectDeleting:
            return progressing(Outcome(), self.timing, "deleting this object: nothing is created")
        except LeadershipLost as exc:  # the process is stopping; a fenced process writes nothing
            log.warning("%s", exc, extra=object_ref(obj))
            return Outcome(requeue_after=self.timing.blocked_requeue)
        except MarkNotWritten as exc:  # Kubernetes is away or refused: no create was sent
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

    async def post_event(self, obj: ObjectView, event: Event, finalizing: bool) -> None:
        """Post an Event about the object as ``barrack-operator`` from this pod; a failure is
        logged, never raised (events help, but are not the record: status is)."""
        if self.status_writer is None:
            return
        body = event_body(
            involved_ref(obj), event.type, event.reason, event.action(finalizing), event.message
        )
        try:
            await self.status_writer.post_event(body)
        except Exception as exc:
            log.warning("Posting the event %s failed: %s", event.reason, exc, extra=object_ref(obj))

    async def write(
        self,
        kind: Kind,
        body: Mapping[str, Any],
        obj: ObjectView,
        outcome: Outcome,
        *,
        finalizing: bool = False,
    ) -> bool:
        """Write the outcome to status (only when it changed) and post its events (Warnings only when
        the Synced condition's reason or message is new, so a blocked object does not flood). False
        when the status write failed (a conflict, the apiserver away): the caller retries soon."""
        if not self.leading():
            return True  # fenced: a process that may not be the leader writes nothing
        previous = self._status_known(obj)
        conditions = merge_conditions(previous.get("conditions", []), outcome.conditions, obj.generation)
        conditions = merge_conditions(conditions, kstatus_conditions(conditions), obj.generation)
        status = {**outcome.status, "conditions": conditions, "observedGeneration": obj.generation}
        if obj.reconcile_requested_at is not None:
            status["lastHandledReconcileAt"] = obj.reconcile_requested_at
        changed = {k: v for k, v in status.items() if previous.get(k) != v}
        if outcome.defer_status and not obj.recorded_id:
            changed = {}  # superseded within one poll; the create mark covers a crash meanwhile
        for event in outcome.events:
            if event.type == "Warning":
                if self._last_warning.get(obj.uid) == event.message:
                    continue
                self._last_warning[obj.uid] = event.message
            await self.post_event(obj, event, finalizing)
        if changed and self.status_writer is not None:
            try:
                await self.status_writer.patch_status(kind.plural, obj.namespace, obj.name, changed)
            except Exception as exc:  # the next pass writes again; ids are also held in memory
                log.warning("Status write failed: %s", exc, extra=object_ref(obj))
                return False
            self._written[obj.uid] = {**self._written.get(obj.uid, {}), **changed}
        patch: dict[str, Any] = {}
        if outcome.clear_annotations:  # after the new id is in status: a crash between leaves the ask
            patch["metadata"] = {"annotations": dict.fromkeys(outcome.clear_annotations)}
        if outcome.spec_patch:
            patch["spec"] = outcome.spec_patch
        if patch and self.status_writer is not None:
            try:
                await self.status_writer.patch_object(kind.plural, obj.namespace, obj.name, patch)
            except Exception as exc:
                log.warning("Write of the object failed: %s", exc, extra=object_ref(obj))
                return False
        return True

    def _status_known(self, obj: ObjectView) -> dict[str, Any]:
        """The object's status as last written: kopf's body lags a write by one watch event, and
        a pass in between must not take the older status for the current one (it would write
        again what was just written)."""
        written = self._written.get(obj.uid)
        if written is None:
            return dict(obj.status)
        if all(obj.status.get(k) == v for k, v in written.items()):
            del self._written[obj.uid]  # the body caught up
            return dict(obj.status)
        return {**obj.status, **written}

    async def finalize(self, kind: Kind, finalizer: Reconciler, body: Mapping[str, Any]) -> float | None:
        """One finalizer pass of an object being deleted (run by the work queue, so never beside a
        reconcile of it): settle its Barrack side, then remove the finalizer (None); while that
        waits, the seconds until the next pass."""
        obj = view(kind, body)
        account = self._account_of(obj)
        await self._see_own_mutations(obj.uid, account)
        sent: list[tuple[str, str | None]] = []
        MUTATIONS.set(sent)
        outcome = self._unowned_outcome(obj) or await self._uninstall_outcome(kind, obj)
        if outcome is None:
            outcome = await self._reconcile_guarded(finalizer, obj, account, finalizing=True)
            _raise_if_closed(account)
        self._remember_mutations(obj, account, outcome, sent)
        self._back_off(obj.uid, outcome)
        await self.write(kind, body, obj, outcome, finalizing=True)
        if not outcome.done:
            delay = outcome.requeue_after or self.timing.transition_requeue
            log.info(
                "The deletion waits: %s; next look in %.0fs", waits_for(outcome), delay, extra=object_ref(obj)
            )
            return delay
        assert self.status_writer is not None
        if not self.leading():
            return self.timing.blocked_requeue  # fenced: the process stops; the next leader releases it
        try:
            await self.status_writer.remove_finalizer(
                kind.plural, obj.namespace, obj.name, FINALIZER, list(obj.finalizers)
            )
        except Exception as exc:  # the Barrack side is settled: only the finalizer is left
            log.warning(
                "Removing the finalizer failed (%s); the operator retries", exc, extra=object_ref(obj)
            )
            return self.timing.transition_requeue
        self._forget(obj.uid)
        return None

    def _unowned_outcome(self, obj: ObjectView) -> Outcome | None:
        """A deleted object that owns nothing on Barrack goes without any call, whatever its
        deletionPolicy, paused or not; a Normal event says why (see :mod:`ownership`)."""
        why = released_without_call(obj, self.memory, self.registry)
        if why is None:
            return None
        outcome = Outcome(done=True)
        outcome.note(RELEASED, why)
        log.info("Released without a Barrack call: %s", why, extra=object_ref(obj))
        return outcome

    def _gone_without_finalizer(self, kind: Kind, body: dict[str, Any]) -> None:
        """An object deleted while it held no finalizer of the operator's (it never asked Barrack
        for anything, or it is observed only): say so in a Normal event, as a finalizer pass would."""
        obj = view(kind, body)
        if obj.observe_only or not kind.barrack_resource or not self.leading():
            return
        why = released_without_call(obj, self.memory, self.registry)
        if why is not None:
            task = asyncio.create_task(self.post_event(obj, Event("Normal", RELEASED, why), finalizing=True))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    def _forget(self, uid: str) -> None:
        """Drop what the process keeps about an object that is gone (or whose finalizer pass ended)."""
        known = self.memory.known_ids.get(uid)
        if known is not None:
            self.registry.unclaim(known, uid)
        self.memory.forget(uid, time.monotonic())
        self._paused.pop(uid, None)
        self.registry.forget(uid)
        self._mutated.pop(uid, None)
        self._last_warning.pop(uid, None)
        self._written.pop(uid, None)
        self._finalizer_added.discard(uid)
        for key in [k for k in self._connections if k[0] == uid]:
            del self._connections[key]

    async def release_uninstalled(self, plural: str, namespaces: list[str]) -> None:
        """Release every object of a kind whose CRD is being deleted, as its finalizer would (a
        Retained event, no Barrack call), for the objects kopf no longer serves."""
        assert self.status_writer is not None
        kind = next(k for k in ALL_KINDS if k.plural == plural)
        paths = [f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{plural}" for ns in namespaces] or [
            f"/apis/{GROUP}/{VERSION}/{plural}"
        ]
        for path in paths:
            status, listing = await self.status_writer.request_json("GET", path)
            if status != 200:
                continue
            for body in listing.get("items", []):
                finalizers = body.get("metadata", {}).get("finalizers") or []
                if FINALIZER not in finalizers or not body["metadata"].get("deletionTimestamp"):
                    continue
                obj = view(kind, body)
                if kind.barrack_resource:
                    outcome = await self._uninstall_outcome(kind, obj)
                    if outcome is not None and not outcome.done:
                        continue
                    for event in outcome.events if outcome is not None else ():
                        await self.post_event(obj, event, finalizing=True)
                await self.status_writer.remove_finalizer(
                    plural, obj.namespace, obj.name, FINALIZER, finalizers
                )

    async def _uninstall_outcome(self, kind: Kind, obj: ObjectView) -> Outcome | None:
        """When the kind's CRD is being deleted (an uninstall cascading to every object), the object
        goes without any Barrack call, whatever its deletionPolicy: an uninstall never deletes a
        Barrack resource. None when the CRD stands (a deletion as usual). When the CRD cannot be
        read, nothing is decided and no call is made: the finalizer stays and is tried again."""
        if obj.spec.get("deletionPolicy") == "Retain" or obj.observe_only:
            return None  # released without a Barrack call anyway
        assert self.status_writer is not None
        crd = f"{kind.plural}.{GROUP}"
        try:
            status, body = await self.status_writer.request_json(
                "GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}"
            )
        except Exception as exc:
            status, body = 0, {"message": str(exc)}
        if status == 200 and not body.get("metadata", {}).get("deletionTimestamp"):
            return None
        if status not in (200, 404):
            message = (
                f"cannot tell a deletion from an uninstall: reading the CRD {crd} answered "
                f"{status or 'nothing'} {body.get('message', '')}".rstrip()
                + "; the operator needs get on it (the chart grants it) and retries; nothing is deleted meanwhile"
            )
            out = Outcome(requeue_after=self.timing.blocked_requeue, backoff=True)
            out.conditions.append(Condition(SYNCED, False, Reason.KUBERNETES_UNAVAILABLE, message))
            return out
        barrack_id = owned_id(obj, self.memory)
        what = f"{kind.kind.removeprefix('Barrack').lower()} {barrack_id}" if barrack_id else "resource"
        out = Outcome(done=True)
        out.note(
            "Retained",
            f"The CRD {crd} is being deleted (an uninstall): this object goes without a Barrack call, "
            f"and the Barrack {what} is kept"
            + (
                f"; to manage it again, install the CRDs and apply an object with adoptId: {barrack_id}"
                if barrack_id
                else ""
            ),
        )
        log.info("Uninstall: released without a Barrack call (%s kept)", what, extra=object_ref(obj))
        return out


def _raise_if_closed(account: AccountRuntime | Outcome) -> None:
    """A pass made over an account that closed under it (a call failed as its client closed, a
    listing it read was its last) writes nothing: it runs again on the account in use."""
    if isinstance(account, AccountRuntime) and account.inventory.closed:
        raise InventoryClosed("the account closed mid-pass")


def waits_for(outcome: Outcome) -> str:
    """What a deletion that is not done waits for, in words: what blocks it (Synced=False), else
    the state it waits out (Ready=False, a transition such as DELETING)."""
    for type_ in (SYNCED, READY):
        found = next((c for c in outcome.conditions if c.type == type_ and not c.status), None)
        if found is not None:
            return f"{found.message.rstrip('.')} ({found.reason})"
    return "Barrack to answer for this object's resource (no condition says more)"


def lease_settings(settings: Settings) -> LeaseSettings:
    """The Lease: in the configured namespace, else the pod's, else ``default``; held under the pod's
    name (a restarted container keeps its pod's leadership), else the host name."""
    namespace = settings.leader_election_namespace or os.environ.get("POD_NAMESPACE", "")
    if not namespace and SERVICE_ACCOUNT_NAMESPACE.is_file():
        namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip()
    return LeaseSettings(
        namespace=namespace or "default",
        identity=os.environ.get("POD_NAME") or socket.gethostname(),
        lease_duration=settings.lease_duration,
        renew_deadline=settings.renew_deadline,
        retry_period=settings.retry_period,
    )


SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def _stop_process() -> None:
    """Leadership lost: stop as on SIGTERM (kopf stops cleanly); the kubelet starts it again as a
    standby."""
    os.kill(os.getpid(), signal.SIGTERM)


def view(kind: Kind, body: Mapping[str, Any]) -> ObjectView:
    meta = body.get("metadata", {})
    return ObjectView(
        kind=kind.kind,
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation", 0)),
        spec=dict(body.get("spec", {})),
        status=dict(body.get("status") or {}),
        create_requested_name=(meta.get("annotations") or {}).get(CREATE_REQUESTED_ANNOTATION),
        recreate_requested=(meta.get("annotations") or {}).get(RECREATE_ANNOTATION) == "true",
        paused=(meta.get("annotations") or {}).get(PAUSED_ANNOTATION) == "true",
        reconcile_requested_at=(meta.get("annotations") or {}).get(RECONCILE_REQUESTED_ANNOTATION),
        finalizers=tuple(meta.get("finalizers") or ()),
        resource_version=str(meta.get("resourceVersion", "")),
    )


def object_ref(obj: ObjectView) -> dict[str, Any]:
    """``extra`` for a log line about an object: kopf's formatters print the reference (the JSON
    format as ``object``, the plain one as a ``[namespace/name]`` prefix)."""
    return {"k8s_ref": involved_ref(obj)}


def involved_ref(obj: ObjectView) -> dict[str, str]:
    """The object as an event's involvedObject (and a log line's reference) names it."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": obj.kind,
        "namespace": obj.namespace,
        "name": obj.name,
        "uid": obj.uid,
    }


def operator_namespace(settings: Settings) -> str:
    """The operator's own namespace (where its Lease is and the only one it reads Secrets in):
    the leader-election namespace if set, else the pod's, else the service account's, else default."""
    return lease_settings(settings).namespace
