"""What the kopf glue holds for the life of the operator: the Barrack client, the inventory and
its supervised poller, the health endpoints, the reconcile context, the registry of objects (for
references and wake-ups), and the per-object loop that runs reconcile and writes its outcome."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import socket
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf

from barrack_operator import metrics
from barrack_operator.barrack import ApiKeySource, BarrackClient, BarrackError
from barrack_operator.barrack.client import MUTATIONS
from barrack_operator.barrack.credentials import MissingApiKey
from barrack_operator.barrack.routes import ROUTES
from barrack_operator.conditions import READY, SYNCED, Condition, Reason, kstatus_conditions, merge_conditions
from barrack_operator.costs import Accruals, PriceBook
from barrack_operator.handlers.health import HealthServer
from barrack_operator.inventory import LISTING_OF, Inventory, ListingFailed, kinds_touched
from barrack_operator.kube import StatusWriter, event_body
from barrack_operator.leadership import LeaderElector, LeadershipLost, LeaseSettings
from barrack_operator.resources.common import (
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
    RefInfo,
    Timing,
    complete_status,
    failed,
    failure_reason,
    id_key,
    progressing,
    ref_key,
    with_next_try,
)
from barrack_operator.resources.kinds import BY_KIND, KINDS, Kind
from barrack_operator.resources.specs import GROUP, VERSION
from barrack_operator.settings import Settings

log = logging.getLogger(__name__)
CREATE_REQUESTED_ANNOTATION = f"{GROUP}/create-requested"
"""On an object: the Barrack name the operator asked Barrack to create a resource under."""
Reconciler = Callable[[Context, ObjectView], Awaitable[Outcome]]


@dataclass
class Registry:
    """Every watched object's last-seen Barrack id and readiness, who claims which Barrack id, and
    which objects want waking when a referent or a Barrack resource changes."""

    objects: dict[tuple[str, str, str], RefInfo] = field(default_factory=dict)
    owners: dict[str, str] = field(default_factory=dict)
    dependents: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    wakers: dict[str, asyncio.Event] = field(default_factory=dict)
    watching: dict[str, set[str]] = field(default_factory=dict)

    def get(self, kind: str, namespace: str, name: str) -> RefInfo | None:
        return self.objects.get((kind, namespace, name))

    def claimed_by_other(self, barrack_id: str, uid: str) -> bool:
        owner = self.owners.get(barrack_id)
        return owner is not None and owner != uid

    def manager_of(self, barrack_id: str, uid: str) -> str | None:
        """``Kind namespace/name`` of another object that manages the Barrack id, if any."""
        owner = self.owners.get(barrack_id)
        if owner is None or owner == uid:
            return None
        for (kind, namespace, name), info in self.objects.items():
            if info.uid == owner:
                return f"{kind} {namespace}/{name}"
        return "another object"

    def name_of(self, kind: str, namespace: str, barrack_id: str) -> str | None:
        for (k, ns, name), info in self.objects.items():
            if k == kind and ns == namespace and info.id == barrack_id:
                return name
        return None

    def observe(self, kind: str, body: dict[str, Any], deleted: bool) -> bool:
        """Record an object's latest state; True when its id or readiness changed."""
        meta, status = body.get("metadata", {}), body.get("status") or {}
        key = (kind, meta.get("namespace", ""), meta.get("name", ""))
        if deleted:
            info = self.objects.pop(key, None)
            if info and info.id and self.owners.get(info.id) == info.uid:
                del self.owners[info.id]
            return info is not None
        ready = any(
            c.get("type") == READY and c.get("status") == "True" for c in status.get("conditions", [])
        )
        info = RefInfo(uid=meta.get("uid", ""), id=status.get("id"), ready=ready, state=status.get("state"))
        previous = self.objects.get(key)
        self.objects[key] = info
        observer = (body.get("spec") or {}).get("managementPolicy") == "Observe"
        if info.id and not observer:  # an observer never owns: it changes nothing
            self.owners.setdefault(info.id, info.uid)
        return previous is None or (previous.id, previous.ready, previous.state) != (
            info.id,
            info.ready,
            info.state,
        )

    def watch(self, uid: str, keys: set[str]) -> None:
        self._unwatch(uid)
        self.watching[uid] = set(keys)
        for key in keys:
            self.dependents[key].add(uid)

    def _unwatch(self, uid: str) -> None:
        for key in self.watching.pop(uid, ()):
            waiting = self.dependents.get(key)
            if waiting is not None:
                waiting.discard(uid)
                if not waiting:
                    del self.dependents[key]

    def waker(self, uid: str) -> asyncio.Event:
        return self.wakers.setdefault(uid, asyncio.Event())

    def wake(self, key: str) -> None:
        for uid in self.dependents.get(key, ()):
            self.waker(uid).set()

    def forget(self, uid: str) -> None:
        self.wakers.pop(uid, None)
        self._unwatch(uid)


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        key_source = ApiKeySource(key_file=settings.api_key_file)
        self.client = BarrackClient(
            settings.api_url,
            key_source,
            auth=settings.auth,
            requests_per_second=settings.requests_per_second,
            burst=settings.burst,
            observer=self._observe_call,
            mutation_guard=self._fence,
        )
        self.prices = PriceBook(self.client)
        self.accruals = Accruals(self.client, interval=settings.billing_interval)
        self.registry = Registry()
        self.inventory = Inventory(
            self.client,
            fast_interval=settings.poll_interval,
            slow_interval=settings.idle_poll_interval,
            on_change=self._on_inventory_change,
        )
        self.context = Context(
            client=self.client,
            inventory=self.inventory,
            refs=self.registry,
            memory=Memory(),
            timing=Timing(
                transition_requeue=settings.poll_interval,
                blocked_requeue=settings.blocked_requeue,
                drift_interval=settings.drift_interval,
            ),
            mark_create=self._mark_create,
        )
        self.status_writer: StatusWriter | None = None
        self._poller: asyncio.Task[None] | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self.elector: LeaderElector | None = None
        self._keeper: asyncio.Task[None] | None = None
        self.health = HealthServer(
            self.inventory, self.poller_alive, settings.readiness_max_listing_age, leading=self.leading
        )
        self._mutated: dict[str, tuple[float, set[str]]] = {}
        self._paused: dict[str, bool] = {}
        self._last_warning: dict[str, str] = {}

    async def start(self) -> None:
        """Serve health, take the Lease (a standby waits here: kopf watches nothing until it
        returns), then poll Barrack."""
        self.status_writer = StatusWriter()
        if self.settings.liveness_port:
            await self.health.start(self.settings.listen_address, self.settings.liveness_port)
        if self.settings.leader_election:
            self.elector = LeaderElector(
                self.status_writer, lease_settings(self.settings), on_lost=_stop_process
            )
            await self.elector.acquire()
            self._keeper = asyncio.create_task(self.elector.keep(), name="barrack-lease")
        self._supervisor = asyncio.create_task(self._supervise_poller(), name="barrack-inventory-supervisor")
        metrics.watch_inventory(self.inventory)
        metrics.watch_objects(
            [kind.kind for kind in KINDS],
            lambda: [(kind, info.ready) for (kind, _, _), info in list(self.registry.objects.items())],
        )

    def leading(self) -> bool:
        """This process reconciles: leader election is off, or it holds the Lease."""
        return self.elector is None or self.elector.valid()

    def _fence(self) -> None:
        if self.elector is not None:
            self.elector.fence()

    def poller_alive(self) -> bool:
        return self._poller is not None and not self._poller.done()

    async def _supervise_poller(self) -> None:
        """Run the inventory poller, and start it again should it ever end (it is built not to):
        without it no object is looked at again."""
        restarts = 0
        while True:
            self._poller = asyncio.create_task(self.inventory.run(), name="barrack-inventory")
            try:
                await self._poller
                log.error("The Barrack inventory poller ended; starting it again")
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():  # the operator stops
                    raise
                log.error("The Barrack inventory poller was cancelled; starting it again")
            except Exception:
                log.exception("The Barrack inventory poller failed; starting it again")
            restarts += 1
            await asyncio.sleep(min(30.0, self.settings.poll_interval * 2 ** min(restarts, 5)))

    async def stop(self) -> None:
        for task in (self._supervisor, self._poller, self._keeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self.elector is not None:
            with contextlib.suppress(Exception):  # best effort: the Lease expires anyway
                await self.elector.release()
        await self.health.stop()
        await self.client.aclose()
        if self.status_writer is not None:
            await self.status_writer.aclose()

    async def _mark_create(self, obj: ObjectView) -> None:
        """Write on the object that a create of its Barrack name is about to be sent (see
        ``ensure_exists``); a failed write stops the create."""
        assert self.status_writer is not None
        try:
            await self.status_writer.annotate(
                BY_KIND[obj.kind].plural,
                obj.namespace,
                obj.name,
                {CREATE_REQUESTED_ANNOTATION: obj.barrack_name},
            )
        except Exception as exc:
            raise MarkNotWritten(f"could not mark the object before creating ({exc})") from exc

    def _observe_call(self, route: str, code: str, seconds: float) -> None:
        metrics.observe_barrack_call(route, code, seconds)
        if not ROUTES[route].is_read:
            self.inventory.nudge(kinds_touched(route))

    def _on_inventory_change(self, ids: set[str]) -> None:
        for barrack_id in ids:
            self.registry.wake(id_key(barrack_id))

    # kopf events -----------------------------------------------------------------------------------

    def on_event(self, kind: Kind, body: dict[str, Any], event_type: str | None) -> None:
        meta = body.get("metadata", {})
        deleted = event_type == "DELETED"
        if self.registry.observe(kind.kind, body, deleted):
            self.registry.wake(ref_key(kind.kind, meta.get("namespace", ""), meta.get("name", "")))
        status = body.get("status") or {}
        annotations = meta.get("annotations") or {}
        uid = meta.get("uid", "")
        paused = annotations.get(PAUSED_ANNOTATION) == "true"
        requested = annotations.get(RECONCILE_REQUESTED_ANNOTATION)
        if deleted:
            return
        if (
            status.get("observedGeneration") != meta.get("generation")
            or (requested is not None and requested != status.get("lastHandledReconcileAt"))
            or self._paused.get(uid, paused) != paused
        ):
            self.registry.waker(uid).set()

    # The per-object loop ---------------------------------------------------------------------------

    async def run_object(
        self, kind: Kind, reconcile: Reconciler, body: kopf.Body, stopped: kopf.DaemonStopped
    ) -> None:
        uid = body.metadata.uid or ""
        wake = self.registry.waker(uid)
        stop_watch = asyncio.ensure_future(stopped.wait())
        stop_watch.add_done_callback(lambda _: wake.set())
        try:
            while not stopped and not body.metadata.get("deletionTimestamp"):
                wake.clear()
                outcome = await self.reconcile_once(kind, reconcile, body)
                if stopped:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), outcome.requeue_after or self.settings.drift_interval)
        finally:
            stop_watch.cancel()

    async def reconcile_once(self, kind: Kind, reconcile: Reconciler, body: kopf.Body) -> Outcome:
        obj = view(kind, body)
        await self._see_own_mutations(obj.uid)
        started = time.monotonic()
        sent: list[str] = []
        MUTATIONS.set(sent)
        outcome = await self._reconcile_guarded(reconcile, obj, finalizing=False)
        await self._add_cost(obj, outcome)
        self._remember_mutations(obj.uid, started, sent)
        self._back_off(obj.uid, outcome)
        metrics.RECONCILE_SECONDS.labels(kind.kind).observe(time.monotonic() - started)
        self.registry.watch(obj.uid, outcome.watch)
        if outcome.status.get("id") and not obj.observe_only:
            self.registry.owners.setdefault(outcome.status["id"], obj.uid)
        if not await self.write(kind, body, obj, outcome):  # look again soon, not at the drift interval
            outcome.requeue_after = min(outcome.requeue_after or math.inf, self.settings.poll_interval)
        return outcome

    async def _add_cost(self, obj: ObjectView, outcome: Outcome) -> None:
        """status.cost of a billed resource the inventory lists: its hourly price in its state
        now and what it has cost so far. A price not known yet leaves cost out (it comes later)."""
        listing = LISTING_OF[obj.kind]
        if listing not in ("instances", "volumes") or not outcome.status.get("id"):
            return
        item = getattr(self.inventory, listing).items.get(outcome.status["id"])
        if item is None:
            return
        try:
            hourly = await self.prices.hourly(item)
            accrued = await self.accruals.accrued(item)
        except (BarrackError, MissingApiKey, LeadershipLost) as exc:
            log.debug("Cost of %s: %s", item.id, exc, extra=object_ref(obj))
            return
        if hourly is not None:
            outcome.status["cost"] = {"hourly": round(hourly, 6), "currency": self.prices.currency}
            if accrued is not None:
                outcome.status["cost"]["accrued"] = round(accrued, 6)

    def _remember_mutations(self, uid: str, started: float, routes: list[str]) -> None:
        if routes:
            self._mutated[uid] = (started, set().union(*(kinds_touched(r) for r in routes)))

    async def _see_own_mutations(self, uid: str) -> None:
        """After this object's last reconcile changed something on Barrack, wait for a listing of
        what it changed that shows the change, so the next plan is not made from the view before it."""
        mutated = self._mutated.pop(uid, None)
        if mutated is not None:
            since, kinds = mutated
            wait = 10 * max(self.inventory.fast_gap(kind) for kind in kinds)
            with contextlib.suppress(BarrackError, MissingApiKey, ListingFailed):
                await self.inventory.wait_fresh(since, timeout=wait, kinds=kinds)

    def _back_off(self, uid: str, outcome: Outcome) -> None:
        """A refused or failed call is tried again after blocked_requeue, doubling with each
        failure in a row up to max_backoff; the condition message says when."""
        if not outcome.backoff:
            self.context.memory.failures.pop(uid, None)
            return
        failures = self.context.memory.failures.get(uid, 0) + 1
        self.context.memory.failures[uid] = failures
        delay = min(self.settings.max_backoff, self.settings.blocked_requeue * 2 ** min(failures - 1, 30))
        outcome.requeue_after = max(outcome.requeue_after or 0.0, delay)
        with_next_try(outcome, delay, failures)

    def _listing_trouble(self, obj: ObjectView) -> Outcome | None:
        """An outcome for an object whose kind Barrack cannot list now: before its first listing,
        or after ``stale_after_failed_polls`` failures in a row (its status may be out of date)."""
        listing = LISTING_OF[obj.kind]
        error = self.inventory.listing_error(listing)
        if error is None:
            return None
        never_listed = not getattr(self.inventory, listing).ok
        failures = self.inventory.failing_for(listing)
        if never_listed:
            return failed(Outcome(), error, self.context.timing)
        if failures < self.settings.stale_after_failed_polls:
            return None
        reason, message = failure_reason(error)
        out = Outcome(requeue_after=self.inventory.retry_gap(listing))
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

    def _paused_outcome(self) -> Outcome:
        out = Outcome(requeue_after=self.context.timing.blocked_requeue)
        message = (
            f"reconciling is paused by the annotation {PAUSED_ANNOTATION}: no Barrack call is made for this "
            "object, deletion included; remove the annotation to resume"
        )
        out.conditions.append(Condition(SYNCED, False, Reason.RECONCILE_PAUSED, message))
        return out

    async def _reconcile_guarded(
        self, reconcile: Reconciler, obj: ObjectView, *, finalizing: bool
    ) -> Outcome:
        self._paused[obj.uid] = obj.paused
        if obj.paused:
            return self._paused_outcome()
        await self.inventory.polled_once.wait()
        retained = finalizing and (obj.spec.get("deletionPolicy") == "Retain" or obj.observe_only)
        trouble = None if retained else self._listing_trouble(obj)
        if trouble is not None:
            return trouble
        try:
            return complete_status(self.context, obj, await reconcile(self.context, obj))
        except ObjectDeleting:
            return progressing(Outcome(), self.context.timing, "deleting this object: nothing is created")
        except LeadershipLost as exc:  # the process is stopping; a fenced process writes nothing
            log.warning("%s", exc, extra=object_ref(obj))
            return Outcome(requeue_after=self.context.timing.blocked_requeue)
        except MarkNotWritten as exc:  # Kubernetes is away or refused: no create was sent
            log.warning("%s; the operator retries", exc, extra=object_ref(obj))
            out = Outcome(requeue_after=self.context.timing.transition_requeue)
            out.conditions.append(
                Condition(SYNCED, False, Reason.KUBERNETES_UNAVAILABLE, f"{exc}; the operator retries")
            )
            return complete_status(self.context, obj, out)
        except Exception as exc:  # one object's bug must not stop the others
            log.exception(
                "Reconcile of %s %s/%s failed unexpectedly",
                obj.kind,
                obj.namespace,
                obj.name,
                extra=object_ref(obj),
            )
            out = Outcome(requeue_after=self.context.timing.blocked_requeue, backoff=True)
            message = f"unexpected {type(exc).__name__} in the operator; it retries (see the operator log)"
            out.conditions.append(Condition(SYNCED, False, Reason.OPERATOR_ERROR, message))
            return complete_status(self.context, obj, out)

    async def post_event(self, obj: ObjectView, event: Event, finalizing: bool) -> None:
        """Post an Event about the object as ``barrack-operator`` from this pod; a failure is
        logged, never raised (events help, but are not the record: status is)."""
        if self.status_writer is None:
            return
        involved = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": obj.kind,
            "namespace": obj.namespace,
            "name": obj.name,
            "uid": obj.uid,
        }
        body = event_body(involved, event.type, event.reason, event.action(finalizing), event.message)
        try:
            await self.status_writer.post_event(body)
        except Exception as exc:
            log.warning("Posting the event %s failed: %s", event.reason, exc, extra=object_ref(obj))

    async def write(
        self, kind: Kind, body: kopf.Body, obj: ObjectView, outcome: Outcome, *, finalizing: bool = False
    ) -> bool:
        """Write the outcome to status (only when it changed) and post its events (Warnings only when
        the Synced condition's reason or message is new, so a blocked object does not flood). False
        when the status write failed (a conflict, the apiserver away): the caller retries soon."""
        if not self.leading():
            return True  # fenced: a process that may not be the leader writes nothing
        previous = dict(obj.status)
        conditions = merge_conditions(previous.get("conditions", []), outcome.conditions, obj.generation)
        conditions = merge_conditions(conditions, kstatus_conditions(conditions), obj.generation)
        status = {**outcome.status, "conditions": conditions, "observedGeneration": obj.generation}
        if obj.reconcile_requested_at is not None:
            status["lastHandledReconcileAt"] = obj.reconcile_requested_at
        changed = {k: v for k, v in status.items() if previous.get(k) != v}
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

    async def finalize(self, kind: Kind, finalizer: Reconciler, body: kopf.Body) -> None:
        obj = view(kind, body)
        await self._see_own_mutations(obj.uid)
        sent: list[str] = []
        MUTATIONS.set(sent)
        started = time.monotonic()
        outcome = await self._uninstall_outcome(kind, obj)
        if outcome is None:
            outcome = await self._reconcile_guarded(finalizer, obj, finalizing=True)
        self._remember_mutations(obj.uid, started, sent)
        self._back_off(obj.uid, outcome)
        await self.write(kind, body, obj, outcome, finalizing=True)
        if not outcome.done:
            message = next(
                (c.message for c in outcome.conditions if c.type == SYNCED and not c.status), "waiting"
            )
            raise kopf.TemporaryError(
                message, delay=outcome.requeue_after or self.context.timing.transition_requeue
            )
        self.context.memory.forget(obj.uid, self.context.clock())
        self._paused.pop(obj.uid, None)
        self.registry.forget(obj.uid)
        self._mutated.pop(obj.uid, None)
        self._last_warning.pop(obj.uid, None)

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
            out = Outcome(requeue_after=self.context.timing.blocked_requeue, backoff=True)
            out.conditions.append(Condition(SYNCED, False, Reason.KUBERNETES_UNAVAILABLE, message))
            return complete_status(self.context, obj, out)
        barrack_id = obj.recorded_id or self.context.memory.known_ids.get(obj.uid)
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


def view(kind: Kind, body: kopf.Body) -> ObjectView:
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
    )


def object_ref(obj: ObjectView) -> dict[str, Any]:
    """``extra`` for a log line about an object: kopf's formatters print the reference (the JSON
    format as ``object``, the plain one as a ``[namespace/name]`` prefix)."""
    return {
        "k8s_ref": {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": obj.kind,
            "namespace": obj.namespace,
            "name": obj.name,
            "uid": obj.uid,
        }
    }
