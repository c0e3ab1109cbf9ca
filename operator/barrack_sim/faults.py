"""Fault injection: a rate limit, a share of 5xx replies, a share of "commit then fail" replies
(the mutation happens, the reply is a 500), and added latency. Seeded, so a failing run replays."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FaultConfig:
    rate_limit_rps: float = 0.0
    """Requests per second accepted on the Barrack routes; 0 is no limit. Past it: 429 + Retry-After."""
    error_rate: float = 0.0
    """Share of Barrack requests answered 500 without acting."""
    commit_then_fail_rate: float = 0.0
    """Share of mutations that act and are then answered 500."""
    latency_seconds: float = 0.0
    """Added to every Barrack reply."""

    def update(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if key not in self.__dataclass_fields__:
                raise ValueError(f"unknown fault setting {key!r}")
            setattr(self, key, float(value))

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class FaultInjector:
    config: FaultConfig = field(default_factory=FaultConfig)
    seed: int = 0
    injected: dict[str, int] = field(default_factory=lambda: {"429": 0, "500": 0, "commit_then_500": 0})

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._tokens = 0.0
        self._updated: float | None = None

    def reseed(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)

    def retry_after(self, now: float) -> float | None:
        """None when the request may pass the rate limit, else the seconds to wait."""
        rate = self.config.rate_limit_rps
        if rate <= 0:
            return None
        if self._updated is None:
            self._updated, self._tokens = now, 1.0
        self._tokens = min(1.0, self._tokens + (now - self._updated) * rate)
        self._updated = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return None
        self.injected["429"] += 1
        return (1.0 - self._tokens) / rate

    def fail_before(self) -> bool:
        hit = self._rng.random() < self.config.error_rate
        if hit:
            self.injected["500"] += 1
        return hit

    def fail_after_commit(self) -> bool:
        hit = self._rng.random() < self.config.commit_then_fail_rate
        if hit:
            self.injected["commit_then_500"] += 1
        return hit
