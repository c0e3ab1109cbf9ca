"""BarrackPowerSchedules on the work queue: a pass reads the schedule's instances from the registry,
asks :func:`~barrack_operator.resources.power.plan_power` whether they are on now and when that
changes, records what it says for each instance (the instance's pass reads it: the schedule never
writes an instance's spec), wakes the instances whose state it changed, and writes its status. An
instance selected by two schedules is powered by the older one; the other says so."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from barrack_operator.conditions import READY, SYNCED, Condition, Reason
from barrack_operator.engine.objects import view
from barrack_operator.engine.references import Registry
from barrack_operator.engine.writer import ObjectWriter
from barrack_operator.resources.kinds import INSTANCE, POWER_SCHEDULE
from barrack_operator.resources.model import ObjectView, Outcome, Timing, ref_key
from barrack_operator.resources.power import InvalidPowerSchedule, PowerOverride, plan_power
from barrack_operator.resources.power_spec import BarrackPowerScheduleSpec
from barrack_operator.resources.times import stamp

IDLE_RECHECK = 300.0
Key = tuple[str, str]
"""(namespace, instance name)."""


class PowerRunner:
    def __init__(
        self,
        registry: Registry,
        writer: ObjectWriter,
        timing: Timing,
        wake: Callable[[str], None],
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.now = now
        """Barrack's time: windows open and close on it."""
        self.registry = registry
        self.writer = writer
        self.timing = timing
        self.wake = wake
        self.overrides: dict[Key, PowerOverride] = {}
        """What the schedule that powers each instance says of it now."""
        self._claims: dict[Key, tuple[str, str, str]] = {}
        """Per instance, the schedule that powers it: (creationTimestamp, name, uid)."""
        self._held: dict[str, set[Key]] = {}
        """Per schedule uid, the instances it powers."""
        self._namespaces: dict[str, str] = {}
        """Per schedule uid, its namespace."""

    def override_for(self, namespace: str, name: str) -> PowerOverride | None:
        return self.overrides.get((namespace, name))

    async def work(self, body: dict[str, Any]) -> float | None:
        obj = view(POWER_SCHEDULE, body)
        meta = body.get("metadata", {})
        if meta.get("deletionTimestamp"):
            self.forget(obj.uid)
            return None
        self._namespaces[obj.uid] = obj.namespace
        out = Outcome()
        try:
            spec = BarrackPowerScheduleSpec.model_validate(obj.spec)
            now = self.now()
            plan = plan_power(spec, now)
        except (InvalidPowerSchedule, ValidationError) as exc:
            self.forget(obj.uid)
            message = f"{exc}; no instance is powered by this schedule until the spec is fixed"
            out.conditions += [Condition(SYNCED, False, Reason.INVALID_SPEC, message),
                               Condition(READY, False, Reason.INVALID_SPEC, message)]  # fmt: skip
            out.warn(Reason.INVALID_SPEC, message)
            await self.writer.write(POWER_SCHEDULE, body, obj, out)
            return IDLE_RECHECK
        found, why_none = self.registry.selected_instances(
            obj.namespace, spec.instanceRef, spec.instanceSelector
        )
        targets = [name for name, _ in found]
        me = (str(meta.get("creationTimestamp") or ""), obj.name, obj.uid)
        powered, taken = self._claim(obj, targets, me)
        override = PowerOverride(obj.name, not plan.on, spec.offState, plan.next_change)
        self._apply(obj, powered, override)
        out.status = {
            "state": "On" if plan.on else "Off",
            "nextChange": stamp(plan.next_change),
            "instances": powered,
        }
        out.conditions.append(self._ready(spec, plan.on, plan.next_change))
        out.conditions.append(self._synced(obj, targets, why_none, taken))
        self.registry.watch(obj.uid, {ref_key(INSTANCE.kind, obj.namespace, name) for name in targets})
        await self.writer.write(POWER_SCHEDULE, body, obj, out)
        if plan.next_change is None:
            return IDLE_RECHECK
        return max(0.5, min(IDLE_RECHECK, (plan.next_change - now).total_seconds() + 0.2))

    def instance_seen(self, namespace: str) -> None:
        """A BarrackInstance appeared: the namespace's schedules look again (a selector may match it)."""
        for uid in [u for u, ns in self._namespaces.items() if ns == namespace]:
            self.wake(uid)

    def clock_jumped(self) -> None:
        """Barrack's clock jumped: every schedule looks again (a window may have opened or closed)."""
        for uid in list(self._namespaces):
            self.wake(uid)

    def forget(self, uid: str) -> None:
        """The schedule went (or cannot be read): its instances follow their own spec again."""
        self._namespaces.pop(uid, None)
        for key in self._held.pop(uid, set()):
            self._release(key)

    def _claim(
        self, obj: ObjectView, targets: list[str], me: tuple[str, str, str]
    ) -> tuple[list[str], dict[str, str]]:
        """The targets this schedule powers, and those an older schedule powers (by name)."""
        powered, taken = [], {}
        for name in targets:
            key = (obj.namespace, name)
            holder = self._claims.get(key)
            if holder is not None and holder[2] != me[2] and holder[:2] < me[:2]:
                taken[name] = holder[1]
                continue
            if holder is not None and holder[2] != me[2]:  # a younger one held it: this one takes it
                self._held.get(holder[2], set()).discard(key)
                self.wake(holder[2])  # its status says so at once
            self._claims[key] = me
            powered.append(name)
        for key in self._held.get(obj.uid, set()) - {(obj.namespace, n) for n in powered}:
            self._release(key)
        self._held[obj.uid] = {(obj.namespace, n) for n in powered}
        return powered, taken

    def _apply(self, obj: ObjectView, powered: list[str], override: PowerOverride) -> None:
        for name in powered:
            key = (obj.namespace, name)
            before = self.overrides.get(key)
            self.overrides[key] = override
            if before is None or before.off != override.off or before.off_state != override.off_state:
                self._wake(key)

    def _release(self, key: Key) -> None:
        self._claims.pop(key, None)
        if self.overrides.pop(key, None) is not None:
            self._wake(key)

    def _wake(self, key: Key) -> None:
        info = self.registry.get(INSTANCE.kind, *key)
        if info is not None:
            self.wake(info.uid)

    @staticmethod
    def _ready(spec: BarrackPowerScheduleSpec, on: bool, next_change: datetime | None) -> Condition:
        if spec.suspend:
            return Condition(
                READY, True, Reason.SUSPENDED, "spec.suspend is true: the schedule keeps nothing off."
            )
        now = (
            "inside a window: each instance's own powerState rules"
            if on
            else f"off-hours: instances are kept {spec.offState}"
        )
        return Condition(
            READY, True, Reason.SCHEDULED, f"Now {now}; next change at {stamp(next_change) or 'never'}."
        )

    @staticmethod
    def _synced(obj: ObjectView, targets: list[str], why_none: str, taken: dict[str, str]) -> Condition:
        if not targets:
            return Condition(SYNCED, False, Reason.NO_INSTANCES, f"{why_none}; the schedule looks again")
        if taken:
            named = ", ".join(
                f"{name} (by BarrackPowerSchedule {other})" for name, other in sorted(taken.items())
            )
            return Condition(
                SYNCED,
                False,
                Reason.SCHEDULE_CONFLICT,
                f"already powered by an older schedule, and not by this one: {named}; select each instance with one "
                "schedule",
            )
        return Condition(SYNCED, True, Reason.RECONCILED, f"Powers {', '.join(targets)}.")
