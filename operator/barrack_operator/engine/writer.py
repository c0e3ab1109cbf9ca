"""The object writer: everything the engine writes on an object. Its status (only what changed,
never over a newer write the watch has not shown yet), its events (a Warning only when new), the
create mark and the finalizer (one write for both), and the connection Secret of an instance."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from barrack_operator.accounts import AccountRuntime
from barrack_operator.conditions import SYNCED, Reason, kstatus_conditions, merge_conditions
from barrack_operator.connection import connection_data, secret_manifest
from barrack_operator.engine.objects import (
    CREATE_REQUESTED_ANNOTATION,
    FINALIZER,
    involved_ref,
    object_ref,
)
from barrack_operator.kube import ObjectGone, SecretConflict, StatusWriter, event_body
from barrack_operator.leadership import LeadershipLost
from barrack_operator.resources.common import blocked
from barrack_operator.resources.kinds import BY_KIND, SCHEDULE, SNAPSHOT, Kind
from barrack_operator.resources.model import (
    Event,
    MarkNotWritten,
    Memory,
    ObjectDeleting,
    ObjectView,
    Outcome,
    Timing,
)
from barrack_operator.resources.ownership import never_on_barrack
from barrack_operator.resources.specs import GROUP, VERSION

log = logging.getLogger(__name__)


class ObjectWriter:
    """Writes on objects for the leader only: a process that may not lead writes nothing."""

    def __init__(
        self,
        kube: Callable[[], StatusWriter | None],
        leading: Callable[[], bool],
        memory: Memory,
        timing: Timing,
    ) -> None:
        self._kube = kube
        self.leading = leading
        self.memory = memory
        self.timing = timing
        self._written: dict[str, dict[str, Any]] = {}
        """Per object, the status fields last written, until the watched body shows them."""
        self._finalizer_added: set[str] = set()
        """Objects whose finalizer this process wrote (their body may not show it yet)."""
        self._last_warning: dict[str, str] = {}
        self._connections: dict[tuple[str, str], dict[str, str]] = {}
        self._background: set[asyncio.Task[None]] = set()
        """Events posted from a watch event (kept until they end)."""

    @property
    def kube(self) -> StatusWriter | None:
        return self._kube()

    # The create mark and the finalizer --------------------------------------------------------------

    async def mark_create(self, obj: ObjectView, spec_defaults: dict[str, Any]) -> None:
        """Write on the object that a create of its Barrack name is about to be sent (see
        ``ensure_exists``), and in the same write the spec values the create applies to fields the
        spec leaves out (late initialization, one write early); a failed write stops the create."""
        patch: dict[str, Any] = {"metadata": {"annotations": {CREATE_REQUESTED_ANNOTATION: obj.barrack_name}}}
        if spec_defaults:
            patch["spec"] = spec_defaults
        await self._write_with_finalizer(obj, patch, "mark the object before creating")

    async def ensure_finalizer(self, obj: ObjectView) -> None:
        """Before a reconcile: an object that names a Barrack resource already (an adoptId, an
        id recorded or known) gets the finalizer now; one that has asked Barrack for nothing gets
        it with its create mark (:meth:`mark_create`), or never. An observed object needs none
        (its deletion calls nothing on Barrack)."""
        if not (obj.observe_only or self._has_finalizer(obj) or never_on_barrack(obj, self.memory)):
            await self._write_with_finalizer(obj, {}, "add the finalizer")

    def _has_finalizer(self, obj: ObjectView) -> bool:
        return FINALIZER in obj.finalizers or obj.uid in self._finalizer_added

    async def _write_with_finalizer(self, obj: ObjectView, patch: dict[str, Any], what: str) -> None:
        """Merge-patch the object, adding the finalizer in the same write when it lacks it;
        :class:`MarkNotWritten` unless written (no create follows), :class:`ObjectDeleting` when
        the object went or its deletion began."""
        kube = self.kube
        assert kube is not None
        if not self.leading():
            raise LeadershipLost("the Lease is lost: this process writes nothing more")
        plural = BY_KIND[obj.kind].plural
        try:
            if self._has_finalizer(obj):
                await kube.patch_object(plural, obj.namespace, obj.name, patch)
                return
            seen = (list(obj.finalizers), obj.resource_version)
            await kube.patch_adding_finalizer(plural, obj.namespace, obj.name, FINALIZER, seen, patch)
            self._finalizer_added.add(obj.uid)
        except ObjectGone as exc:
            raise ObjectDeleting() from exc
        except Exception as exc:
            raise MarkNotWritten(f"could not {what} ({exc})") from exc

    async def release(self, kind: Kind, obj: ObjectView) -> bool:
        """Remove the operator's finalizer (the Barrack side is settled); False when that failed
        or this process may not write (the next pass, or the next leader, tries again)."""
        kube = self.kube
        assert kube is not None
        if not self.leading():
            return False
        try:
            await kube.remove_finalizer(kind.plural, obj.namespace, obj.name, FINALIZER, list(obj.finalizers))
        except Exception as exc:  # the Barrack side is settled: only the finalizer is left
            log.warning(
                "Removing the finalizer failed (%s); the operator retries", exc, extra=object_ref(obj)
            )
            return False
        return True

    # Status and events ---------------------------------------------------------------------------

    async def post_event(self, obj: ObjectView, event: Event, finalizing: bool) -> None:
        """Post an Event about the object as ``barrack-operator`` from this pod; a failure is
        logged, never raised (events help, but are not the record: status is)."""
        kube = self.kube
        if kube is None:
            return
        body = event_body(
            involved_ref(obj), event.type, event.reason, event.action(finalizing), event.message
        )
        try:
            await kube.post_event(body)
        except Exception as exc:
            log.warning("Posting the event %s failed: %s", event.reason, exc, extra=object_ref(obj))

    def post_in_background(self, obj: ObjectView, event: Event) -> None:
        """Post an event from a watch callback, which must not wait for it."""
        task = asyncio.create_task(self.post_event(obj, event, finalizing=True))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

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
        for event in outcome.events:
            if event.type == "Warning":
                if self._last_warning.get(obj.uid) == event.message:
                    continue
                self._last_warning[obj.uid] = event.message
            await self.post_event(obj, event, finalizing)
        kube = self.kube
        if kube is None:
            return True
        changed = self._changed_status(obj, outcome)
        if changed:
            try:
                await kube.patch_status(kind.plural, obj.namespace, obj.name, changed)
            except Exception as exc:  # the next pass writes again; ids are also held in memory
                log.warning("Status write failed: %s", exc, extra=object_ref(obj))
                return False
            self._written[obj.uid] = {**self._written.get(obj.uid, {}), **changed}
        patch: dict[str, Any] = {}
        if outcome.clear_annotations:  # after the new id is in status: a crash between leaves the ask
            patch["metadata"] = {"annotations": dict.fromkeys(outcome.clear_annotations)}
        if outcome.spec_patch:
            patch["spec"] = outcome.spec_patch
        if patch:
            try:
                await kube.patch_object(kind.plural, obj.namespace, obj.name, patch)
            except Exception as exc:
                log.warning("Write of the object failed: %s", exc, extra=object_ref(obj))
                return False
        if outcome.delete_object:
            try:
                await kube.delete_object(kind.plural, obj.namespace, obj.name)
            except Exception as exc:  # the next pass asks again
                log.warning("Deleting the object failed: %s", exc, extra=object_ref(obj))
                return False
        return True

    def _changed_status(self, obj: ObjectView, outcome: Outcome) -> dict[str, Any]:
        """The status fields the outcome changes (conditions merged, kstatus' added)."""
        previous = self._status_known(obj)
        conditions = merge_conditions(previous.get("conditions", []), outcome.conditions, obj.generation)
        conditions = merge_conditions(conditions, kstatus_conditions(conditions), obj.generation)
        status = {**outcome.status, "conditions": conditions, "observedGeneration": obj.generation}
        if obj.reconcile_requested_at is not None:
            status["lastHandledReconcileAt"] = obj.reconcile_requested_at
        if outcome.defer_status and not obj.recorded_id:
            return {}  # superseded within one poll; the create mark covers a crash meanwhile
        return {k: v for k, v in status.items() if previous.get(k) != v}

    def _status_known(self, obj: ObjectView) -> dict[str, Any]:
        """The object's status as last written: the watched body lags a write by one event, and
        a pass in between must not take the older status for the current one (it would write
        again what was just written)."""
        written = self._written.get(obj.uid)
        if written is None:
            return dict(obj.status)
        if all(obj.status.get(k) == v for k, v in written.items()):
            del self._written[obj.uid]  # the body caught up
            return dict(obj.status)
        return {**obj.status, **written}

    async def outlive_schedule(self, obj: ObjectView, body: Mapping[str, Any]) -> None:
        """A snapshot an earlier release made with an ownerReference to its schedule loses it on
        its first pass (a schedule's deletion keeps its backups); a failure is tried next pass."""
        references = list(body.get("metadata", {}).get("ownerReferences") or ())
        kube = self.kube
        if kube is None or not self.leading() or not any(r.get("kind") == SCHEDULE.kind for r in references):
            return
        try:
            await kube.drop_owner_references(
                SNAPSHOT.plural, obj.namespace, obj.name, SCHEDULE.kind, references
            )
            log.info(
                "Released from its schedule's ownerReference (backups outlive it)", extra=object_ref(obj)
            )
        except Exception as exc:
            log.warning("Dropping the schedule's ownerReference failed: %s", exc, extra=object_ref(obj))

    # The connection Secret ----------------------------------------------------------------------

    async def write_connection(self, account: AccountRuntime, obj: ObjectView, outcome: Outcome) -> None:
        """Keep the Secret spec.writeConnectionSecretToRef names current with how to reach the
        instance; written only when what it holds changes (a new IP after a hibernation)."""
        ref = obj.spec.get("writeConnectionSecretToRef")
        item = account.inventory.instances.items.get(outcome.status.get("id") or "")
        kube = self.kube
        if not ref or item is None or kube is None or not self.leading():
            return
        data = connection_data(item, await account.image_name(item))
        key = (obj.uid, ref["name"])
        if self._connections.get(key) == data:
            return
        owner = {"apiVersion": f"{GROUP}/{VERSION}", "kind": obj.kind, "name": obj.name, "uid": obj.uid}
        try:
            await kube.write_secret(secret_manifest(obj.namespace, ref["name"], owner, data))
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

    def forget(self, uid: str) -> None:
        self._last_warning.pop(uid, None)
        self._written.pop(uid, None)
        self._finalizer_added.discard(uid)
        for key in [k for k in self._connections if k[0] == uid]:
            del self._connections[key]
