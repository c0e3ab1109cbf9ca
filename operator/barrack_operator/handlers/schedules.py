"""BarrackSnapshotSchedule in kopf: one daemon per schedule runs it at its slots, keeps its
snapshots within ``keep``, and writes its status. What to do is decided by
:mod:`barrack_operator.resources.schedule`; this module reads the registry and writes Kubernetes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime

import kopf
from pydantic import ValidationError

from barrack_operator.conditions import READY, SYNCED, Condition, Reason
from barrack_operator.engine.runtime import Runtime, object_ref, view
from barrack_operator.kube import StatusWriter
from barrack_operator.resources import specs
from barrack_operator.resources.common import blocked
from barrack_operator.resources.kinds import SCHEDULE, SNAPSHOT
from barrack_operator.resources.model import ObjectView, Outcome, ref_key
from barrack_operator.resources.schedule import (
    INSTANCE_LABEL,
    SCHEDULE_LABEL,
    SLOT_LABEL,
    Cadence,
    Child,
    InvalidSchedule,
    Run,
    Target,
    beyond_keep,
    due_slot,
    label_value,
    matches,
    snapshot_manifest,
)

log = logging.getLogger(__name__)
API_VERSION = f"{specs.GROUP}/{specs.VERSION}"
IDLE_RECHECK = 300.0
"""Seconds between two looks at a schedule with nothing pending (a spec change wakes it sooner)."""


def _time(value: object) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _stamp(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ScheduleRunner:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self._deleting: dict[str, set[str]] = {}
        """Per schedule, the snapshots asked to go, until the registry no longer lists them."""

    async def run(self, body: kopf.Body, stopped: kopf.DaemonStopped) -> None:
        uid = body.metadata.uid or ""
        wake = self.runtime.registry.waker(uid)
        stop_watch = asyncio.ensure_future(stopped.wait())
        stop_watch.add_done_callback(lambda _: wake.set())
        try:
            while not stopped and not body.metadata.get("deletionTimestamp"):
                wake.clear()
                delay = await self.tick(body)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), delay)
        finally:
            stop_watch.cancel()
            self.runtime.registry.forget(uid)
            self._deleting.pop(uid, None)

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
            for name, info in self.runtime.registry.of_kind(SNAPSHOT.kind, obj.namespace)
            if info.labels.get(SCHEDULE_LABEL) == label
        ]

    def targets(self, obj: ObjectView, spec: specs.BarrackSnapshotScheduleSpec) -> tuple[list[Target], str]:
        """The instances to snapshot, and when there are none, why."""
        registry = self.runtime.registry
        if spec.instanceRef is not None:
            info = registry.get("BarrackInstance", obj.namespace, spec.instanceRef.name)
            if info is None:
                return [], f"BarrackInstance {spec.instanceRef.name} does not exist in {obj.namespace}"
            return [Target(spec.instanceRef.name, info.account)], ""
        assert spec.instanceSelector is not None
        found = [
            Target(name, info.account)
            for name, info in sorted(registry.of_kind("BarrackInstance", obj.namespace))
            if matches(spec.instanceSelector, info.labels)
        ]
        return found, "" if found else f"no BarrackInstance in {obj.namespace} matches spec.instanceSelector"

    async def tick(self, body: kopf.Body) -> float:
        """One look at the schedule: run it if a slot is due, let go of snapshots beyond keep,
        write status; returns the seconds until the next look."""
        obj = view(SCHEDULE, body)
        out = Outcome()
        created = _time(body.metadata.get("creationTimestamp")) or datetime.now(UTC)
        try:
            spec = specs.BarrackSnapshotScheduleSpec.model_validate(obj.spec)
            cadence = Cadence.parse(spec.schedule, spec.timeZone, created)
        except (InvalidSchedule, ValidationError) as exc:
            message = f"{exc}; no snapshot is taken until the spec is fixed"
            blocked(out, Reason.INVALID_SPEC, message, self.runtime.timing)
            out.status = {"nextScheduleTime": None}
            await self.runtime.write(SCHEDULE, body, obj, out)
            return IDLE_RECHECK
        last = _time(obj.status.get("lastScheduleTime"))
        children = self.children(obj)
        slot = None if spec.suspend else due_slot(cadence, last, created, datetime.now(UTC))
        synced = await self._run_due(obj, body, spec, slot, children, out)
        if synced.status and slot is not None:
            last = slot
        doomed = await self._prune(obj, children, spec.keep, out)
        upcoming = None if spec.suspend else cadence.next_after(last or created)
        ready = sorted((c for c in children if c.ready), key=lambda c: c.slot)
        out.status.update(
            lastScheduleTime=_stamp(last),
            nextScheduleTime=_stamp(upcoming),
            lastSuccessfulSnapshot=ready[-1].name if ready else obj.status.get("lastSuccessfulSnapshot"),
        )
        if spec.suspend:
            state = Condition(READY, True, Reason.SUSPENDED, "spec.suspend is true: no snapshot is taken.")
        else:
            message = f"Next run at {_stamp(upcoming)}; keeps {spec.keep} per instance."
            state = Condition(READY, True, Reason.SCHEDULED, message)
        out.conditions += [state, synced]
        self.runtime.registry.watch(
            obj.uid, {ref_key(SNAPSHOT.kind, obj.namespace, c.name) for c in children}
        )
        await self.runtime.write(SCHEDULE, body, obj, out)
        delay = IDLE_RECHECK if upcoming is None else (upcoming - datetime.now(UTC)).total_seconds()
        if not synced.status or slot is not None or doomed or any(c.pending for c in children):
            delay = min(delay, self.runtime.timing.blocked_requeue)
        return max(0.5, min(delay, IDLE_RECHECK))

    async def _run_due(
        self,
        obj: ObjectView,
        body: kopf.Body,
        spec: specs.BarrackSnapshotScheduleSpec,
        slot: datetime | None,
        children: list[Child],
        out: Outcome,
    ) -> Condition:
        """Run the due slot, if any; the Synced condition of the look."""
        synced = Condition(SYNCED, True, Reason.RECONCILED, "The last run took its snapshots.")
        if slot is not None:
            try:
                run = await self._run(obj, body, spec, slot, children)
            except Exception as exc:  # the apiserver refused or is away: the slot is tried again
                log.warning("Schedule run failed: %s", exc, extra=object_ref(obj))
                message = f"creating the run's BarrackSnapshots failed ({exc}); the operator retries"
                return Condition(SYNCED, False, Reason.KUBERNETES_UNAVAILABLE, message)
            out.status["instances"] = run.targets
            out.note("ScheduledRun", run.message())
        targets, why_none = self.targets(obj, spec)
        if not targets:
            out.warn(Reason.NO_INSTANCES, why_none)
            return Condition(SYNCED, False, Reason.NO_INSTANCES, f"{why_none}; the next run looks again")
        return synced

    async def _prune(self, obj: ObjectView, children: list[Child], keep: int, out: Outcome) -> list[str]:
        """Delete the snapshots beyond keep (their finalizers delete them on Barrack)."""
        asked = self._deleting.setdefault(obj.uid, set())
        asked &= {c.name for c in children}
        doomed = [name for name in beyond_keep(children, keep) if name not in asked]
        for name in doomed:
            asked.add(name)
            try:
                await self._writer().delete_object(SNAPSHOT.plural, obj.namespace, name)
            except Exception as exc:  # the next look tries again
                log.warning("Deleting BarrackSnapshot %s failed: %s", name, exc, extra=object_ref(obj))
                asked.discard(name)
        if doomed:
            out.note("SnapshotsPruned", f"Deleted {', '.join(doomed)}: older than the newest {keep} Ready")
        return doomed

    async def _run(
        self,
        obj: ObjectView,
        body: kopf.Body,
        spec: specs.BarrackSnapshotScheduleSpec,
        slot: datetime,
        children: list[Child],
    ) -> Run:
        run = Run(slot)
        targets, _ = self.targets(obj, spec)
        for target in targets:
            run.targets.append(target.name)
            waiting = [c for c in children if c.instance == label_value(target.name) and c.pending]
            if waiting:
                run.skipped.append(f"{target.name} (its snapshot {waiting[0].name} is not Ready yet)")
                continue
            manifest = snapshot_manifest(dict(body), target, slot, API_VERSION)
            name = manifest["metadata"]["name"]
            if await self._writer().create_object(SNAPSHOT.plural, manifest):
                run.created.append(name)
            else:
                run.existing.append(name)
        return run

    def _writer(self) -> StatusWriter:
        assert self.runtime.status_writer is not None
        return self.runtime.status_writer
