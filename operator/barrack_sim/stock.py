"""The simulator's GPU shelf (contract section 8): GPUs available per region and model. A create
or a restore from hibernation takes them, a deletion or a hibernation gives them back, and the
shelf also moves on its own on the simulator's clock, as other customers come and go: levels set
for a later moment (``steps``), and ``churn`` that takes a model's stock away and brings it back
every so often. Set through ``POST /admin/stock``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from barrack_sim.errors import Conflict

Key = tuple[str, str]
"""(region, GPU model)."""


@dataclass(frozen=True)
class Step:
    at: float
    """Simulator clock seconds at which the level is set."""
    key: Key
    available: int


@dataclass(frozen=True)
class Churn:
    """Between ``low`` and ``high`` GPUs, changing every ``period`` seconds (high first)."""

    key: Key
    low: int
    high: int
    period: float
    since: float

    def level_at(self, now: float) -> tuple[int, int]:
        """(the phase number, the level of that phase) at ``now``."""
        phase = int((now - self.since) // self.period)
        return phase, self.high if phase % 2 == 0 else self.low


@dataclass
class Shelf:
    available: dict[Key, int]
    steps: list[Step] = field(default_factory=list)
    churn: dict[Key, Churn] = field(default_factory=dict)
    phantom: dict[Key, int] = field(default_factory=dict)
    """GPUs the listing shows that a create cannot have: other customers took them between a
    listing and a create (Barrack then refuses the create as out of stock)."""
    refusals: list[tuple[str, str, float]] = field(default_factory=list)
    """(instance name, region, wall time) of every create refused as out of stock."""
    _phase: dict[Key, int] = field(default_factory=dict)

    def take(self, region: str, gpu_model: str, count: int) -> None:
        """Take ``count`` GPUs, or Barrack's 409 ``out_of_stock``."""
        if self.available.get((region, gpu_model), 0) < count:
            raise Conflict(f"{gpu_model} x{count} is out of stock in {region}", "out_of_stock")
        self.available[(region, gpu_model)] -= count

    def give(self, region: str, gpu_model: str, count: int) -> None:
        self.available[(region, gpu_model)] = self.available.get((region, gpu_model), 0) + count

    def move(self, now: float) -> None:
        """Apply the steps that are due and the churn's phase changes (on the simulator's clock)."""
        due = [s for s in self.steps if s.at <= now]
        self.steps = [s for s in self.steps if s.at > now]
        for step in sorted(due, key=lambda s: s.at):
            self.available[step.key] = step.available
        for key, churn in self.churn.items():
            phase, level = churn.level_at(now)
            if self._phase.get(key) != phase:
                self._phase[key] = phase
                self.available[key] = level

    def configure(self, values: dict[str, Any], now: float) -> None:
        """``{"stock": [{region, gpu_model, available}], "steps": [{after, region, gpu_model,
        available}], "churn": [{region, gpu_model, low, high, period}], "phantom": [{region,
        gpu_model, available}]}``: levels now, levels ``after`` seconds from now, churn (a period
        of 0 stops it), and GPUs listed that no create can have (0 clears)."""
        for entry in _entries(values, "stock"):
            self.available[_key(entry)] = int(entry["available"])
        for entry in _entries(values, "steps"):
            self.steps.append(Step(now + float(entry["after"]), _key(entry), int(entry["available"])))
        for entry in _entries(values, "phantom"):
            self.phantom[_key(entry)] = int(entry["available"])
        for entry in _entries(values, "churn"):
            key, period = _key(entry), float(entry.get("period", 0))
            self._phase.pop(key, None)
            if period <= 0:
                self.churn.pop(key, None)
                continue
            self.churn[key] = Churn(key, int(entry["low"]), int(entry["high"]), period, now)
        self.move(now)

    def listing(self) -> list[dict[str, object]]:
        keys = sorted(self.available.keys() | self.phantom.keys())
        return [
            {
                "region": r,
                "gpu_model": g,
                "available": self.available.get((r, g), 0) + self.phantom.get((r, g), 0),
            }
            for r, g in keys
        ]


def _entries(values: dict[str, Any], name: str) -> list[dict[str, Any]]:
    entries = values.get(name) or []
    if not isinstance(entries, list):
        raise ValueError(f"{name} is a list")
    return entries


def _key(entry: dict[str, Any]) -> Key:
    return (str(entry["region"]), str(entry["gpu_model"]))
