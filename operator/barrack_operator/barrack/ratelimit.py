"""The one rate limiter every Barrack call passes through.

A token bucket (``rate`` requests per second, ``burst`` at once; a burst of two or three also makes
up for a busy event loop waking the limiter late) that honours ``Retry-After``: when Barrack answers
429, nobody sends again until the given moment. In any one second at most ``rate + burst`` requests
go out. Waiters are served in arrival
order within two lanes, and the urgent lane goes first: a burst of thousands of queued creates is
delayed, not failed, and the few reads that let everyone see their results (the inventory's
listings) are not stuck behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable

_EPSILON = 1e-9


class RateLimiter:
    def __init__(
        self,
        rate: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(self.burst)
        self._updated = clock()
        self._paused_until = 0.0
        self._urgent: deque[asyncio.Future[None]] = deque()
        self._normal: deque[asyncio.Future[None]] = deque()
        self._dispatcher: asyncio.Task[None] | None = None
        self.total_wait_seconds = 0.0

    @property
    def waiting(self) -> int:
        """Callers queued for a slot now."""
        return sum(1 for f in (*self._urgent, *self._normal) if not f.done())

    def pause_for(self, seconds: float) -> None:
        """Honour a Retry-After: nobody sends before ``seconds`` from now."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self._tokens = 0.0

    async def acquire(self, *, urgent: bool = False) -> float:
        """Wait for a slot; returns the seconds waited. A cancelled wait gives its place up."""
        started = self._clock()
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        (self._urgent if urgent else self._normal).append(slot)
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch(), name="barrack-rate-limiter")
        await slot
        waited = self._clock() - started
        self.total_wait_seconds += waited
        return waited

    async def close(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher

    def _next(self) -> asyncio.Future[None] | None:
        for lane in (self._urgent, self._normal):
            while lane and lane[0].done():  # cancelled while waiting
                lane.popleft()
            if lane:
                return lane[0]
        return None

    async def _dispatch(self) -> None:
        """Hand out one slot per token, urgent lane first, until nobody waits."""
        while self._next() is not None:
            await self._take_token()
            slot = self._next()  # chosen after the wait: an urgent caller may have come meanwhile
            if slot is None:
                self._tokens = min(self.burst, self._tokens + 1.0)
                return
            (self._urgent if self._urgent and self._urgent[0] is slot else self._normal).popleft()
            slot.set_result(None)

    async def _take_token(self) -> None:
        while True:
            now = self._clock()
            if now < self._paused_until:
                await self._sleep(self._paused_until - now)
                continue
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens >= 1.0 - _EPSILON:  # float sums of rate*dt fall a hair short of 1
                self._tokens = max(0.0, self._tokens - 1.0)
                return
            await self._sleep((1.0 - self._tokens) / self.rate)
