"""BarrackSnapshotSchedule: when to snapshot which instances, and which snapshots to let go. Pure
functions of the spec, the clock and what the registry knows: :func:`plan_run` decides a pass and
:func:`report` builds its status and conditions; the engine
(:mod:`barrack_operator.engine.schedules`) carries out what they decide, on the work queue.

A run at a time slot creates one BarrackSnapshot per selected instance, named
``<schedule>-<instance>-<slot UTC>``, owned by the schedule and labelled with it, the instance and
the slot; a repeated run (after a crash) creates nothing twice, the names being the same. An
instance whose last snapshot is not Ready yet is skipped (Barrack makes one at a time per instance,
and a stopped instance would otherwise pile up waiting snapshots). Slots missed while the operator
was down run once, at the latest missed slot. Retention: once ``keep`` snapshots of an instance are
Ready, every older one is deleted (its object, and with it the snapshot on Barrack).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from barrack_operator.conditions import READY, SYNCED, Condition, Reason
from barrack_operator.resources import specs
from barrack_operator.resources.model import Outcome
from barrack_operator.resources.times import stamp

SCHEDULE_LABEL = "barrack.ai/schedule"
INSTANCE_LABEL = "barrack.ai/instance"
SLOT_LABEL = "barrack.ai/slot"
SLOT_FORMAT = "%Y%m%dT%H%M%SZ"
MIN_EVERY = timedelta(seconds=10)
_EVERY = re.compile(r"^@every (?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


class InvalidSchedule(ValueError):
    """The spec's schedule or time zone cannot be read; the message names the field."""


@dataclass(frozen=True)
class Cadence:
    """The time slots of a schedule: every ``every`` from ``anchor``, or a cron expression in a
    time zone."""

    cron: str | None = None
    zone: ZoneInfo | None = None
    every: timedelta | None = None
    anchor: datetime = datetime(1970, 1, 1, tzinfo=UTC)

    @classmethod
    def parse(cls, schedule: str, time_zone: str | None, anchor: datetime) -> Cadence:
        text = schedule.strip()
        if text.startswith("@every"):
            match = _EVERY.match(text)
            if not match or not any(match.groups()):
                raise InvalidSchedule(
                    f"spec.schedule {schedule!r}: @every takes a duration such as 30m or 1h30m"
                )
            hours, minutes, seconds = (int(g or 0) for g in match.groups())
            every = timedelta(hours=hours, minutes=minutes, seconds=seconds)
            if every < MIN_EVERY:
                raise InvalidSchedule(f"spec.schedule {schedule!r}: @every is at least {MIN_EVERY.seconds}s")
            return cls(every=every, anchor=anchor)
        if (len(text.split()) != 5 and not text.startswith("@")) or not croniter.is_valid(text):
            raise InvalidSchedule(
                f"spec.schedule {schedule!r} is not a cron expression (five fields, e.g. '0 3 * * *', or @hourly, "
                "@daily, @weekly, @monthly) nor '@every <duration>'"
            )
        try:
            zone = ZoneInfo(time_zone) if time_zone else ZoneInfo("UTC")
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidSchedule(
                f"spec.timeZone {time_zone!r} is not an IANA time zone, e.g. Europe/Berlin"
            ) from None
        return cls(cron=text, zone=zone)

    def next_after(self, moment: datetime) -> datetime:
        """The first slot strictly after ``moment``."""
        if self.every is not None:
            steps = (moment - self.anchor) // self.every
            return self.anchor + (steps + 1) * self.every
        assert self.cron is not None and self.zone is not None
        nxt: datetime = croniter(self.cron, moment.astimezone(self.zone)).get_next(datetime)
        return nxt.astimezone(UTC)

    def latest_until(self, moment: datetime) -> datetime:
        """The last slot at or before ``moment``."""
        if self.every is not None:
            return self.anchor + ((moment - self.anchor) // self.every) * self.every
        assert self.cron is not None and self.zone is not None
        probe = moment.astimezone(self.zone) + timedelta(seconds=1)  # get_prev is strictly before
        prev: datetime = croniter(self.cron, probe).get_prev(datetime)
        return prev.astimezone(UTC)


def due_slot(cadence: Cadence, last: datetime | None, created: datetime, now: datetime) -> datetime | None:
    """The slot to run now, or None: the latest slot not after ``now`` that comes after the last run
    (or after the schedule was created). Slots missed meanwhile run once, as this one."""
    if cadence.next_after(last or created) > now:
        return None
    return cadence.latest_until(now)


def matches(selector: specs.LabelSelector, labels: Mapping[str, str]) -> bool:
    """Kubernetes' label selector semantics (matchLabels and matchExpressions, all must hold)."""
    if any(labels.get(key) != value for key, value in selector.matchLabels.items()):
        return False
    for requirement in selector.matchExpressions:
        present, value = requirement.key in labels, labels.get(requirement.key)
        ok = {
            "In": present and value in requirement.values,
            "NotIn": not present or value not in requirement.values,
            "Exists": present,
            "DoesNotExist": not present,
        }[requirement.operator]
        if not ok:
            return False
    return True


def _digest(*parts: str, length: int = 6) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def _fit(name: str, limit: int, *parts: str) -> str:
    """``name`` if it fits in ``limit`` characters, else cut and suffixed with a digest of ``parts``."""
    if len(name) <= limit:
        return name
    return f"{name[: limit - 7].rstrip('-.')}-{_digest(*parts)}"


def label_value(name: str) -> str:
    """An object's name as a label value (at most 63 characters)."""
    return _fit(name, 63, name)


def snapshot_object_name(schedule: str, instance: str, slot: datetime) -> str:
    stamp = slot.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    return _fit(f"{schedule}-{instance}-{stamp}", 253, schedule, instance, stamp)


def barrack_snapshot_name(namespace: str, schedule: str, instance: str, slot: datetime) -> str:
    """The snapshot's name on Barrack: at most 50 characters, unique in the account (a digest of
    namespace, schedule and instance tells apart two schedules of the same names)."""
    stamp = slot.astimezone(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{instance[:20].rstrip('-.')}-{stamp}-{_digest(namespace, schedule, instance)}"


@dataclass(frozen=True)
class Target:
    """An instance the schedule snapshots: its object name and the account it uses."""

    name: str
    account: str | None = None


@dataclass(frozen=True)
class Child:
    """One of the schedule's BarrackSnapshot objects, as the registry knows it."""

    name: str
    instance: str
    """The instance label."""
    slot: str
    ready: bool
    failed: bool = False

    @property
    def pending(self) -> bool:
        return not self.ready and not self.failed


def snapshot_manifest(
    schedule: dict[str, Any], target: Target, slot: datetime, api_version: str
) -> dict[str, Any]:
    """The BarrackSnapshot a run creates for ``target``: the schedule's labels, and no
    ownerReference, so that deleting the schedule keeps its backups (as Velero's backups and AWS
    DLM's snapshots outlive their schedules); ``kubectl delete bsnap -l barrack.ai/schedule=NAME``
    removes them on purpose."""
    meta = schedule["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    spec: dict[str, Any] = {
        "instanceRef": {"name": target.name},
        "name": barrack_snapshot_name(namespace, name, target.name, slot),
        "description": f"BarrackSnapshotSchedule {namespace}/{name}, slot {slot.astimezone(UTC).isoformat()}",
    }
    if target.account:
        spec["accountRef"] = {"name": target.account}
    return {
        "apiVersion": api_version,
        "kind": "BarrackSnapshot",
        "metadata": {
            "name": snapshot_object_name(name, target.name, slot),
            "namespace": namespace,
            "labels": {
                SCHEDULE_LABEL: label_value(name),
                INSTANCE_LABEL: label_value(target.name),
                SLOT_LABEL: slot.astimezone(UTC).strftime(SLOT_FORMAT),
            },
        },
        "spec": spec,
    }


def beyond_keep(children: list[Child], keep: int) -> list[str]:
    """The snapshots to let go: per instance, once ``keep`` are Ready, every one older than the
    oldest of the newest ``keep`` Ready ones."""
    by_instance: dict[str, list[Child]] = {}
    for child in children:
        by_instance.setdefault(child.instance, []).append(child)
    doomed: list[str] = []
    for group in by_instance.values():
        ready = sorted((c for c in group if c.ready), key=lambda c: c.slot, reverse=True)
        if len(ready) < keep:
            continue
        cutoff = ready[keep - 1].slot
        doomed += sorted(c.name for c in group if c.slot < cutoff)
    return doomed


@dataclass
class Run:
    """What one run did: snapshots created, instances skipped and why, problems."""

    slot: datetime
    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)

    def message(self) -> str:
        parts = []
        if self.created or self.existing:
            parts.append(f"took {', '.join(self.created + self.existing)}")
        if self.skipped:
            parts.append(f"skipped {'; '.join(self.skipped)}")
        if not self.targets:
            parts.append("no BarrackInstance matched")
        return f"Run of {self.slot.astimezone(UTC).isoformat()}: " + "; ".join(parts)


IDLE_RECHECK = 300.0
"""Seconds between two passes over a schedule with nothing pending (a spec change or a snapshot
of its changing wakes it sooner)."""


@dataclass(frozen=True)
class Observation:
    """What a pass over a schedule sees: the clock, its own record, its snapshots and targets."""

    now: datetime
    created: datetime
    """The schedule's creationTimestamp: @every slots count from it; no slot before it runs."""
    last: datetime | None
    """status.lastScheduleTime: the last slot run."""
    last_successful: str | None
    children: tuple[Child, ...]
    targets: tuple[Target, ...]
    why_none: str = ""
    """Why there are no targets (a missing instance, a selector matching none)."""
    deleting: frozenset[str] = frozenset()
    """Snapshots an earlier pass asked to go that are still listed."""


@dataclass
class RunPlan:
    """What a pass does: the slot it runs (None: none is due), the instances it snapshots and
    those it skips while their last snapshot is not Ready, and the snapshots retention lets go."""

    slot: datetime | None
    create: list[Target] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    prune: list[str] = field(default_factory=list)
    suspended: bool = False


@dataclass
class RunDone:
    """What carrying out a plan did: the snapshots created now or found made by an earlier try of
    the slot, the deletions asked for, and why the creates failed (None: they did not)."""

    created: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    error: str | None = None


def plan_run(spec: specs.BarrackSnapshotScheduleSpec, cadence: Cadence, seen: Observation) -> RunPlan:
    """The pass's decisions: the due slot (missed slots run once, at the latest; none while
    suspended), one snapshot per target whose last one is settled, the others skipped naming the
    snapshot they wait for, and the snapshots beyond ``keep`` not yet asked to go."""
    slot = None if spec.suspend else due_slot(cadence, seen.last, seen.created, seen.now)
    plan = RunPlan(slot=slot, suspended=spec.suspend)
    if slot is not None:
        for target in seen.targets:
            label = label_value(target.name)
            waiting = [c for c in seen.children if c.instance == label and c.pending]
            if waiting:
                plan.skipped.append(f"{target.name} (its snapshot {waiting[0].name} is not Ready yet)")
            else:
                plan.create.append(target)
    plan.prune = [name for name in beyond_keep(list(seen.children), spec.keep) if name not in seen.deleting]
    return plan


def report(
    spec: specs.BarrackSnapshotScheduleSpec,
    cadence: Cadence,
    seen: Observation,
    plan: RunPlan,
    done: RunDone,
    soon: float = 10.0,
) -> Outcome:
    """The schedule's status, conditions and events after a pass, and when to pass again: within
    ``soon`` seconds while a run failed, ran, pruned or waits for a snapshot; else at the next
    slot (at most :data:`IDLE_RECHECK` away)."""
    out = Outcome()
    last = plan.slot if plan.slot is not None and done.error is None else seen.last
    upcoming = None if spec.suspend else cadence.next_after(last or seen.created)
    ready = sorted((c for c in seen.children if c.ready), key=lambda c: c.slot)
    out.status.update(
        lastScheduleTime=stamp(last),
        nextScheduleTime=stamp(upcoming),
        lastSuccessfulSnapshot=ready[-1].name if ready else seen.last_successful,
    )
    if spec.suspend:
        out.conditions.append(
            Condition(READY, True, Reason.SUSPENDED, "spec.suspend is true: no snapshot is taken.")
        )
    else:
        message = f"Next run at {stamp(upcoming)}; keeps {spec.keep} per instance."
        out.conditions.append(Condition(READY, True, Reason.SCHEDULED, message))
    out.conditions.append(_synced(seen, plan, done, out))
    if done.pruned:
        out.note(
            "SnapshotsPruned", f"Deleted {', '.join(done.pruned)}: older than the newest {spec.keep} Ready"
        )
    delay = IDLE_RECHECK if upcoming is None else (upcoming - seen.now).total_seconds()
    busy = plan.slot is not None or done.pruned or any(c.pending for c in seen.children)
    if busy or out.conditions[-1].status is False:
        delay = min(delay, soon)
    out.requeue_after = max(0.5, min(delay, IDLE_RECHECK))
    return out


def _synced(seen: Observation, plan: RunPlan, done: RunDone, out: Outcome) -> Condition:
    if done.error is not None:
        message = f"creating the run's BarrackSnapshots failed ({done.error}); the operator retries"
        return Condition(SYNCED, False, Reason.KUBERNETES_UNAVAILABLE, message)
    if plan.slot is not None:
        run = Run(plan.slot, created=done.created, existing=done.existing, skipped=plan.skipped)
        run.targets = [t.name for t in seen.targets]
        out.status["instances"] = run.targets
        out.note("ScheduledRun", run.message())
    if not seen.targets:
        out.warn(Reason.NO_INSTANCES, seen.why_none)
        return Condition(SYNCED, False, Reason.NO_INSTANCES, f"{seen.why_none}; the next run looks again")
    return Condition(SYNCED, True, Reason.RECONCILED, "The last run took its snapshots.")


def invalid(exc: Exception) -> Outcome:
    """The status of a schedule whose spec cannot be read: InvalidSpec naming the field, no run."""
    message = f"{exc}; no snapshot is taken until the spec is fixed"
    out = Outcome(status={"nextScheduleTime": None}, requeue_after=IDLE_RECHECK, backoff=False)
    out.conditions += [
        Condition(SYNCED, False, Reason.INVALID_SPEC, message),
        Condition(READY, False, Reason.INVALID_SPEC, message),
    ]
    out.warn(Reason.INVALID_SPEC, message)
    return out
