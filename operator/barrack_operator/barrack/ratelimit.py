"""The one rate limiter every Barrack call passes through.

A token bucket (``rate`` requests per second, ``burst`` at once) that also honours ``Retry-After``:
when Barrack answers 429, every caller waits until the given moment before the next request.
Waits are queued in arrival order, so a burst of thousands of reconciles is delayed, not failed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

_EPSILON = 1e-9


class RateLimiter:
    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock
        self._tokens = float(self.burst)
        self._updated = clock()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self.total_wait_seconds = 0.0

    def pause_for(self, seconds: float) -> None:
        """Honour a Retry-After: nobody sends before ``seconds`` from now."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self._tokens = 0.0

    async def acquire(self) -> float:
        """Wait for a slot; returns the seconds waited."""
        started = self._clock()
        async with self._lock:  # FIFO: asyncio.Lock wakes waiters in order
            while True:
                now = self._clock()
                if now < self._paused_until:
                    await asyncio.sleep(self._paused_until - now)
                    continue
                self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1.0 - _EPSILON:  # float sums of rate*dt fall a hair short of 1
                    self._tokens = max(0.0, self._tokens - 1.0)
                    break
                await asyncio.sleep((1.0 - self._tokens) / self.rate)
        waited = self._clock() - started
        self.total_wait_seconds += waited
        return waited
