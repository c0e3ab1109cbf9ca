"""The one rate limiter every Barrack call passes through.

A token bucket (``rate`` requests per second, ``burst`` at once after a quiet spell) that honours
``Retry-After``: when Barrack answers 429, nobody sends again until the given moment. Two rules
make it both safe and fast on a busy event loop:

- **A hard cap per second, wherever the request is on its way.** Whatever the bucket allows, a
  slot is granted only while fewer than ``floor(rate + burst)`` requests are granted and not sent
  yet, on their way, or answered within the last second. A request reaches Barrack after its slot
  is granted and before its answer comes back, so however long it takes on the way (a loop that
  stalls, a process starved of CPU, a slow network), Barrack never sees more than that many in any
  second (a sliding window, as Barrack counts). Set ``rate + burst`` to Barrack's limit and no
  request is refused for the rate. (A fixed margin was not enough: with 30 ms, then 50 ms, a
  loaded machine still let 21 in a second through now and then.)
- **Catch-up while busy.** A loop that wakes the limiter late would otherwise lose the tokens it
  slept through (a bucket of one is full by then): while callers queue without a break, one token
  more may be held, so lateness is made up for by the next grant, under the cap.

Waiters are served in arrival order within three lanes, each before the next: urgent (the reads
that let everyone see their results, the inventory's listings), follow-up (work on resources that
exist: an attach, a rule, a power change) and new (creates). A burst of thousands of queued
creates is delayed, not failed; the listings are not stuck behind it, and neither is the attach
that makes an already created volume Ready: what was begun is finished first.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable

_EPSILON = 1e-9


class LimiterClosed(RuntimeError):
    """The limiter's client was closed (its account replaced or gone): no slot will come. A call
    waiting for one, or asking after, gets this at once instead of waiting for ever."""


WINDOW = 1.0
"""Seconds of Barrack's sliding window: an answered request counts in it for this long."""


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
        """At most this many requests granted and not answered yet, or answered within WINDOW s."""
        self._tokens = float(self.burst)
        self._updated = clock()
        self._answered: deque[float] = deque()
        """When requests were answered (or callers of :meth:`acquire` resumed), the last WINDOW s."""
        self._unsent = 0
        """Slots granted whose callers have not resumed yet."""
        self._on_the_way = 0
        """Requests sent through :meth:`slot` and not answered yet."""
        self._freed = asyncio.Event()
        self._capacity = float(self.burst)
        self._paused_until = 0.0
        self._lanes: tuple[deque[asyncio.Future[None]], ...] = (deque(), deque(), deque())
        """Urgent, follow-up and new, served in that order."""
        self._dispatcher: asyncio.Task[None] | None = None
        self.total_wait_seconds = 0.0
        self.closed = False

    @property
    def waiting(self) -> int:
        """Callers queued for a slot now (counts them all: for metrics, not for a hot path)."""
        return sum(1 for lane in self._lanes for f in lane if not f.done())

    @property
    def busy(self) -> bool:
        """Someone is queued for a slot now (amortized constant time)."""
        return self._next() is not None

    @property
    def saturated(self) -> bool:
        """At least a second's worth of requests is queued (cancelled waits still counted until
        they reach the front): the rate limit, not the work, sets the pace now."""
        return sum(len(lane) for lane in self._lanes) >= self.rate

    def pause_for(self, seconds: float) -> None:
        """Honour a Retry-After: nobody sends before ``seconds`` from now."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)
        self._tokens = 0.0

    @contextlib.asynccontextmanager
    async def slot(self, *, urgent: bool = False, follow_up: bool = False) -> AsyncIterator[None]:
        """Wait for a slot, then send the request inside the block: it counts against the cap
        until its answer (or error) and for a second after."""
        await self._granted(urgent, follow_up)
        self._on_the_way += 1
        try:
            yield
        finally:
            self._on_the_way -= 1
            self._answered.append(self._clock())
            self._freed.set()

    async def acquire(self, *, urgent: bool = False, follow_up: bool = False) -> float:
        """Wait for a slot (``urgent`` before ``follow_up`` before the rest) for a request that
        counts as answered at once; returns the seconds waited. A cancelled wait gives its place up."""
        waited = await self._granted(urgent, follow_up)
        self._answered.append(self._clock())
        return waited

    async def _granted(self, urgent: bool, follow_up: bool) -> float:
        if self.closed:
            raise LimiterClosed("the Barrack client is closed: no call is sent")
        started = self._clock()
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._lanes[0 if urgent else 1 if follow_up else 2].append(slot)
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = asyncio.create_task(self._dispatch(), name="barrack-rate-limiter")
        try:
            await slot
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled():  # granted, then this caller was cancelled
                self._unsent -= 1
                self._answered.append(self._clock())
            raise
        self._unsent -= 1
        waited = self._clock() - started
        self.total_wait_seconds += waited
        return waited

    async def close(self) -> None:
        """No slot is granted from now on: every caller waiting for one gets :class:`LimiterClosed`."""
        self.closed = True
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        for lane in self._lanes:
            while lane:
                waiter = lane.popleft()
                if not waiter.done():
                    waiter.set_exception(
                        LimiterClosed("the Barrack client closed while this call waited to be sent")
                    )

    def _next(self) -> deque[asyncio.Future[None]] | None:
        """The first lane with a caller waiting."""
        for lane in self._lanes:
            while lane and lane[0].done():  # cancelled while waiting
                lane.popleft()
            if lane:
                return lane
        return None

    async def _dispatch(self) -> None:
        """Hand out one slot per token, urgent lane first, until nobody waits."""
        self._refill(self._clock())  # what a quiet spell earned: at most ``burst``
        self._capacity = self.burst + 1.0  # from here on, callers queue without a break
        try:
            while self._next() is not None:
                await self._take_token()
                lane = self._next()  # chosen after the wait: an urgent caller may have come meanwhile
                if lane is None:
                    self._tokens += 1.0
                    return
                slot = lane.popleft()
                self._unsent += 1
                slot.set_result(None)
        finally:
            self._capacity = float(self.burst)
            self._tokens = min(self._tokens, self._capacity)

    async def _until_freed(self, now: float) -> None:
        """The cap is full: wait until a granted caller resumes, a request on its way is answered,
        or the oldest answer leaves the window."""
        if self._unsent:
            await asyncio.sleep(0)  # granted callers resume on the next turn of the loop
            return
        leaves = self._answered[0] + WINDOW - now if self._answered else None
        if not self._on_the_way:
            assert leaves is not None
            await self._sleep(leaves)
            return
        self._freed.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(leaves):
                await self._freed.wait()

    def _refill(self, now: float) -> None:
        self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now

    async def _take_token(self) -> None:
        while True:
            now = self._clock()
            if now < self._paused_until:
                await self._sleep(self._paused_until - now)
                continue
            while self._answered and self._answered[0] <= now - WINDOW:
                self._answered.popleft()
            if len(self._answered) + self._unsent + self._on_the_way >= self.cap:
                await self._until_freed(now)
                continue
            self._refill(now)
            if self._tokens >= 1.0 - _EPSILON:  # float sums of rate*dt fall a hair short of 1
                self._tokens = max(0.0, self._tokens - 1.0)
                return
            await self._sleep((1.0 - self._tokens) / self.rate)
