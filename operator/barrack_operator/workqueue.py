"""One work queue for every object's reconcile.

Each object's next reconcile is a time in one heap; one task starts each as it comes due and the
reconcile's own task ends with it. A waiting object costs a heap entry, not a task, its frames and
its events (a task per object for its whole life was the operator's largest cost per object after
the objects' bodies). A key runs at most once at a time: woken while it runs, it runs again as soon
as it ends. Free of kopf: the glue feeds it keys and the runtime says what running one means.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)
Work = Callable[[str], Awaitable[float | None]]
"""Run one key's work; the seconds until it runs again, or None to run it only when woken."""
RETRY_AFTER_ERROR = 10.0
"""Seconds before a key whose work raised runs again (the work is meant to catch its own errors)."""


class WorkQueue:
    def __init__(self, work: Work, *, name: str = "work-queue") -> None:
        self._work = work
        self._name = name
        self._members: set[str] = set()
        self._due: dict[str, float] = {}
        """Per waiting key, when it runs next (the heap may hold older times: they are skipped)."""
        self._heap: list[tuple[float, str]] = []
        self._running: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        """Keys woken while they ran: they run again as soon as they end."""
        self._changed = asyncio.Event()
        self._scheduler: asyncio.Task[None] | None = None

    def __contains__(self, key: object) -> bool:
        return key in self._members

    def __len__(self) -> int:
        return len(self._members)

    @property
    def running(self) -> int:
        return len(self._running)

    def add(self, key: str, delay: float = 0.0) -> None:
        """Make the key a member; it runs after ``delay`` seconds, or sooner if already due sooner."""
        self._members.add(key)
        if key in self._running:
            if delay <= 0:
                self._again.add(key)
            return
        self._put(key, delay)

    def wake(self, key: str) -> None:
        """Run a member as soon as possible (again right after, if it runs now)."""
        if key in self._members:
            self.add(key)

    def discard(self, key: str) -> None:
        """The key runs no more; a run under way ends on its own."""
        self._members.discard(key)
        self._due.pop(key, None)
        self._again.discard(key)

    async def close(self, grace: float) -> None:
        """Run nothing more: runs under way get ``grace`` seconds, then are cancelled."""
        for key in list(self._members):
            self.discard(key)
        if self._scheduler is not None:
            self._scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._scheduler
            self._scheduler = None
        await _finish(*self._running.values(), grace=grace)

    def _put(self, key: str, delay: float) -> None:
        at = asyncio.get_running_loop().time() + max(delay, 0.0)
        current = self._due.get(key)
        if current is not None and current <= at:
            return
        self._due[key] = at
        heapq.heappush(self._heap, (at, key))
        if len(self._heap) > 2 * len(self._due) + 64:  # drop superseded entries now and then
            self._heap = [(t, k) for t, k in self._heap if self._due.get(k) == t]
            heapq.heapify(self._heap)
        if self._heap[0] == (at, key):
            self._changed.set()  # earlier than the scheduler sleeps for
        if self._scheduler is None or self._scheduler.done():
            self._scheduler = asyncio.create_task(self._schedule(), name=self._name)

    async def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            now = loop.time()
            while self._heap and self._heap[0][0] <= now:
                at, key = heapq.heappop(self._heap)
                if self._due.get(key) != at:
                    continue  # superseded by an earlier time, or discarded
                del self._due[key]
                self._running[key] = asyncio.create_task(self._run(key), name=f"{self._name}:{key}")
            self._changed.clear()
            sleep = self._heap[0][0] - now if self._heap else None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(sleep):
                    await self._changed.wait()

    async def _run(self, key: str) -> None:
        delay: float | None
        try:
            delay = await self._work(key)
        except Exception:
            log.exception(
                "The work of %s failed unexpectedly; it runs again in %.0f s", key, RETRY_AFTER_ERROR
            )
            delay = RETRY_AFTER_ERROR
        finally:
            self._running.pop(key, None)  # cancelled too (CancelledError is no Exception)
        if key not in self._members:
            return
        if key in self._again:
            self._again.discard(key)
            self._put(key, 0.0)
        elif delay is not None:
            self._put(key, delay)


async def _finish(*tasks: asyncio.Task[None], grace: float) -> None:
    """Wait for the tasks up to ``grace`` seconds in all, then cancel those still running and wait
    for them to end."""
    if not tasks:
        return
    pending: set[asyncio.Task[None]] = set(tasks)
    if grace > 0:
        _, pending = await asyncio.wait(tasks, timeout=grace)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
