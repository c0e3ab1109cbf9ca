"""Fault injection: a rate limit, a share of 5xx replies, a share of "commit then fail" replies
(the mutation happens, the reply is a 500), added latency (everywhere, or per route), malformed
replies on chosen routes, and listings whose ``total_pages`` is missing or understated. Seeded,
so a failing run replays."""

from __future__ import annotations

import math
import random
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Malformation = Literal["json", "shape"]
PaginationFault = Literal["", "omit_total_pages", "understate_total_pages"]


@dataclass
class FaultConfig:
    rate_limit_rps: float = 0.0
    """Requests accepted in any one second on the Barrack routes; 0 is no limit. Past it: 429 + Retry-After."""
    error_rate: float = 0.0
    """Share of Barrack requests answered 500 without acting."""
    commit_then_fail_rate: float = 0.0
    """Share of mutations that act and are then answered 500."""
    latency_seconds: float = 0.0
    """Added to every Barrack reply."""
    route_latency: dict[str, float] = field(default_factory=dict)
    """Seconds added to the replies of these routes (by route name), e.g. a slow ``create_volume``;
    a mutation acts after the wait, as a slow Barrack would."""
    malformed: dict[str, Malformation] = field(default_factory=dict)
    """Routes (by name) whose successful replies are broken: ``json`` (not JSON) or ``shape``
    (JSON that does not fit the contract)."""
    pagination: PaginationFault = ""
    """Listings that omit ``total_pages``, or state it as 1 whatever the count."""
    refuse: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Routes (by name) answered with a refusal instead of acting: ``{"status": 409, "error_code":
    "...", "message": "...", "retry_after": 3}`` (the last for a 429), so a test can meet each of
    Barrack's refusals end to end (a 409 on a resize, a 400 on a create, a 429 that says when)."""

    def update(self, values: dict[str, Any]) -> None:
        for key, value in values.items():
            if key not in self.__dataclass_fields__:
                raise ValueError(f"unknown fault setting {key!r}")
            if key == "route_latency":
                self.route_latency = {str(k): float(v) for k, v in dict(value).items()}
            elif key == "malformed":
                if not all(v in ("json", "shape") for v in dict(value).values()):
                    raise ValueError("malformed takes route names to 'json' or 'shape'")
                self.malformed = dict(value)
            elif key == "refuse":
                refusals = {str(k): dict(v) for k, v in dict(value).items()}
                if not all(int(v.get("status", 0)) >= 400 for v in refusals.values()):
                    raise ValueError("refuse takes route names to a refusal with a status of 400 or more")
                self.refuse = refusals
            elif key == "pagination":
                if value not in ("", "omit_total_pages", "understate_total_pages"):
                    raise ValueError("pagination is '', 'omit_total_pages' or 'understate_total_pages'")
                self.pagination = value
            else:
                setattr(self, key, float(value))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class FaultInjector:
    config: FaultConfig = field(default_factory=FaultConfig)
    seed: int = 0
    injected: dict[str, int] = field(
        default_factory=lambda: {"429": 0, "500": 0, "commit_then_500": 0, "malformed": 0}
    )

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._admitted: deque[float] = deque()

    def reseed(self, seed: int) -> None:
        self.seed = seed
        self._rng = random.Random(seed)

    def retry_after(self, now: float) -> float | None:
        """None when the request may pass the rate limit, else the seconds until it would.

        The limit is a sliding window: at most ``rate`` requests in any one second (for rates below
        one a second, one request per ``1 / rate`` seconds), as "R requests per second" reads."""
        rate = self.config.rate_limit_rps
        if rate <= 0:
            return None
        window = 1.0 if rate >= 1 else 1.0 / rate
        allowed = max(1, math.floor(rate * window))
        while self._admitted and self._admitted[0] <= now - window:
            self._admitted.popleft()
        if len(self._admitted) < allowed:
            self._admitted.append(now)
            return None
        self.injected["429"] += 1
        return self._admitted[0] + window - now

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
