"""The one rate limiter every Barrack call passes through.

A token bucket (``rate`` requests per second, ``burst`` at once after a quiet spell) that honours
``Retry-After``: when Barrack answers 429, nobody sends again until the given moment. Two rules
make it both safe and fast on a busy event loop:

- **A hard cap per second.** Whatever the bucket allows, at most ``floor(rate + burst)`` requests
  go out in any window of ``WINDOW`` seconds (a sliding window, as Barrack counts, with a little
  margin for the time a request takes from here to Barrack). A request counts from when its caller
  actually resumes to send it, and a slot granted to a caller that has not resumed yet counts as
  sent now: a loop that stalls (CPU starvation, a long pause) cannot release a bunch of grants at
  once. Set ``rate + burst`` to Barrack's limit and no request is refused for the rate.
- **Catch-up while busy.** A loop that wakes the limiter late would otherwise lose the tokens it
  slept through (a bucket of one is full by then): while callers queue without a break, one token
  more may be held, so lateness is made up for by the next grant, under the cap.

Waiters are served in arrival order within two lanes, and the urgent lane goes first: a burst of
thousands of queued creates is delayed, not failed, and the few reads that let everyone see their
results (the inventory's listings) are not stuck behind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

_EPSILON = 1e-9
WINDOW = 1.05
"""Seconds of the sliding window the per-second cap counts in: Barrack's second, plus a margin for
requests that reach Barrack up to 50 ms apart from when they left (30 ms was measured too little:
one 429 in 2,000 creates on a loaded machine)."""


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
        self.cap = max(1, math.floor(rate + self.burst + _EPSILON))
        """At most this many grants in any WINDOW seconds."""
        self._tokens = float(self.burst)
        self._updated = clock()
        self._sent: deque[float] = deque()
        """When callers resumed with their slot, within the last WINDOW seconds."""
        self._unsent = 0
        """Slots granted whose callers have not resumed yet."""
        self._capacity = float(self.burst)
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
        try:
            await slot
        finally:
            if slot.done() and not slot.cancelled():  # granted (even if this caller was cancelled since)
                self._unsent -= 1
                self._sent.append(self._clock())
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
        self._refill(self._clock())  # what a quiet spell earned: at most ``burst``
        self._capacity = self.burst + 1.0  # from here on, callers queue without a break
        try:
            while self._next() is not None:
                await self._take_token()
                slot = self._next()  # chosen after the wait: an urgent caller may have come meanwhile
                if slot is None:
                    self._tokens += 1.0
                    return
                (self._urgent if self._urgent and self._urgent[0] is slot else self._normal).popleft()
                self._unsent += 1
                slot.set_result(None)
        finally:
            self._capacity = float(self.burst)
            self._tokens = min(self._tokens, self._capacity)

    def _refill(self, now: float) -> None:
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def _take_token(self) -> None:
        while True:
            now = self._clock()
            if now < self._paused_until:
                await self._sleep(self._paused_until - now)
                continue
            while self._sent and self._sent[0] <= now - WINDOW:
                self._sent.popleft()
            if len(self._sent) + self._unsent >= self.cap:
                # Full: until the oldest send leaves the window, or a granted caller resumes.
                await self._sleep(self._sent[0] + WINDOW - now if self._sent else 0.001)
                continue
            self._refill(now)
            if self._tokens >= 1.0 - _EPSILON:  # float sums of rate*dt fall a hair short of 1
                self._tokens = max(0.0, self._tokens - 1.0)
                return
            await self._sleep((1.0 - self._tokens) / self.rate)
