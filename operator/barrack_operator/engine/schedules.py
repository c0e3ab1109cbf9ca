"""BarrackSnapshotSchedules on the work queue, like every other kind: a pass reads what the
registry knows (the schedule's snapshots, its instances), asks
:func:`~barrack_operator.resources.schedule.plan_run` what to do, creates and deletes the
BarrackSnapshot objects it decided, and writes the status
:func:`~barrack_operator.resources.schedule.report` builds. A schedule owns nothing on Barrack:
its deletion waits for nothing."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from barrack_operator.engine.objects import FINALIZER, KOPF_FINALIZER, object_ref, view
from barrack_operator.engine.references import Registry
from barrack_operator.engine.writer import ObjectWriter
from barrack_operator.kube import StatusWriter
from barrack_operator.resources import specs
from barrack_operator.resources.kinds import SCHEDULE, SNAPSHOT
from barrack_operator.resources.model import ObjectView, Timing, ref_key
from barrack_operator.resources.schedule import (
    INSTANCE_LABEL,
    SCHEDULE_LABEL,
    SLOT_LABEL,
    Cadence,
    Child,
    InvalidSchedule,
    Observation,
    RunDone,
    RunPlan,
    Target,
    invalid,
    label_value,
    plan_run,
    report,
    snapshot_manifest,
)
from barrack_operator.resources.times import parse_time

log = logging.getLogger(__name__)
API_VERSION = f"{specs.GROUP}/{specs.VERSION}"


class ScheduleRunner:
    """The work of the queue for snapshot schedules (see ``Runtime.serve_work``)."""

    LEGACY_FINALIZERS = (FINALIZER, KOPF_FINALIZER)
    """Finalizers earlier releases put on schedules (for their kopf daemon): taken off, or they
    would hold a schedule's deletion for ever."""

    def __init__(self, registry: Registry, writer: ObjectWriter, timing: Timing) -> None:
        self.registry = registry
        self.writer = writer
        self.timing = timing
        self._deleting: dict[str, set[str]] = {}
        """Per schedule, the snapshots asked to go, until the registry no longer lists them."""

    async def work(self, body: dict[str, Any]) -> float | None:
        """One pass over the schedule; the seconds until the next (None once it is being deleted)."""
        obj = view(SCHEDULE, body)
        meta = body.get("metadata", {})
        await self._drop_legacy_finalizers(obj)
        if meta.get("deletionTimestamp"):
            self.forget(obj.uid)
            return None
        created = parse_time(meta.get("creationTimestamp")) or datetime.now(UTC)
        try:
            spec = specs.BarrackSnapshotScheduleSpec.model_validate(obj.spec)
            cadence = Cadence.parse(spec.schedule, spec.timeZone, created)
        except (InvalidSchedule, ValidationError) as exc:
            out = invalid(exc)
            await self.writer.write(SCHEDULE, body, obj, out)
            return out.requeue_after
        seen = self.observe(obj, spec, created)
        plan = plan_run(spec, cadence, seen)
        done = await self._carry_out(obj, body, plan)
        out = report(spec, cadence, seen, plan, done, soon=self.timing.blocked_requeue)
        self.registry.watch(obj.uid, {ref_key(SNAPSHOT.kind, obj.namespace, c.name) for c in seen.children})
        await self.writer.write(SCHEDULE, body, obj, out)
        return out.requeue_after

    def forget(self, uid: str) -> None:
        self._deleting.pop(uid, None)

    def observe(
        self, obj: ObjectView, spec: specs.BarrackSnapshotScheduleSpec, created: datetime
    ) -> Observation:
        children = self.children(obj)
        asked = self._deleting.setdefault(obj.uid, set())
        asked &= {c.name for c in children}
        targets, why_none = self.targets(obj, spec)
        return Observation(
            now=datetime.now(UTC),
            created=created,
            last=parse_time(obj.status.get("lastScheduleTime")),
            last_successful=obj.status.get("lastSuccessfulSnapshot"),
            children=tuple(children),
            targets=tuple(targets),
            why_none=why_none,
            deleting=frozenset(asked),
        )

    def children(self, obj: ObjectView) -> list[Child]:
        label = label_value(obj.name)
        return [
            Child(
                name=name,
                instance=info.labels.get(INSTANCE_LABEL, ""),
                slot=info.labels.get(SLOT_LABEL, ""),
                ready=info.ready,
                failed=info.state == "ERROR",
            )
            for name, info in self.registry.of_kind(SNAPSHOT.kind, obj.namespace)
            if info.labels.get(SCHEDULE_LABEL) == label
        ]

    def targets(self, obj: ObjectView, spec: specs.BarrackSnapshotScheduleSpec) -> tuple[list[Target], str]:
        """The instances to snapshot, and when there are none, why."""
        found, why_none = self.registry.selected_instances(
            obj.namespace, spec.instanceRef, spec.instanceSelector
        )
        return [Target(name, info.account) for name, info in found], why_none

    async def _carry_out(self, obj: ObjectView, body: dict[str, Any], plan: RunPlan) -> RunDone:
        """Create the run's snapshots (an existing name is the same slot tried before) and ask
        the snapshots retention lets go to go (their finalizers delete them on Barrack)."""
        done = RunDone()
        writer = self._writer()
        if plan.slot is not None:
            try:
                for target in plan.create:
                    manifest = snapshot_manifest(body, target, plan.slot, API_VERSION)
                    made = await writer.create_object(SNAPSHOT.plural, manifest)
                    (done.created if made else done.existing).append(manifest["metadata"]["name"])
            except Exception as exc:  # the apiserver refused or is away: the slot is tried again
                log.warning("Schedule run failed: %s", exc, extra=object_ref(obj))
                done.error = str(exc)
        asked = self._deleting.setdefault(obj.uid, set())
        for name in plan.prune:
            try:
                await writer.delete_object(SNAPSHOT.plural, obj.namespace, name)
            except Exception as exc:  # the next pass tries again
                log.warning("Deleting BarrackSnapshot %s failed: %s", name, exc, extra=object_ref(obj))
                continue
            asked.add(name)
            done.pruned.append(name)
        return done

    async def _drop_legacy_finalizers(self, obj: ObjectView) -> None:
        held = [f for f in obj.finalizers if f in self.LEGACY_FINALIZERS]
        finalizers = list(obj.finalizers)
        for finalizer in held:
            try:
                await self._writer().remove_finalizer(
                    SCHEDULE.plural, obj.namespace, obj.name, finalizer, finalizers
                )
            except Exception as exc:  # the next pass tries again
                log.warning("Removing an earlier release's finalizer failed: %s", exc, extra=object_ref(obj))
                return
            finalizers.remove(finalizer)

    def _writer(self) -> StatusWriter:
        kube = self.writer.kube
        assert kube is not None, "schedules run once the operator runs"
        return kube
