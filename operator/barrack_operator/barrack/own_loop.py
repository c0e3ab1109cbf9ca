"""An event loop on a thread of its own, for a client's rate limiter and HTTP exchanges.

The rate limiter counts a request from its grant until a second after its answer, so every moment
the operator's event loop is late (waking the limiter, running the granted call, taking the answer
in) holds a slot that much longer. At 10,000 objects the operator's loop, busy with watch events,
reconciles and status writes, paced Barrack's queue at 17 requests a second under a limit of 20.
On a loop that runs nothing else, the limiter grants and the answers are taken in when they happen
(the operator's Python work still shares the GIL with this thread, which switches every few
milliseconds). Callers await from their own loop; a cancelled caller cancels its exchange, and
whatever the exchange tells its caller's loop goes through :meth:`OwnLoop.home`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
STOP_GRACE = 5.0
"""Seconds :meth:`OwnLoop.close` waits for the thread to end."""


class OwnLoop:
    def __init__(self, name: str) -> None:
        self._loop = asyncio.new_event_loop()
        self._home: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name=name, daemon=True)
        self._thread.start()

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on this loop and return what it returns (or raise what it raises)."""
        if self._home is None:
            self._home = asyncio.get_running_loop()
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    def home(self, callback: Callable[..., object], *args: Any) -> None:
        """Call ``callback(*args)`` on the loop of the callers (from this loop's thread)."""
        if self._home is None or self._home.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the callers' loop closed meanwhile
            self._home.call_soon_threadsafe(callback, *args)

    async def close(self, last: Coroutine[Any, Any, None]) -> None:
        """Run ``last`` (the client's own closing) here, cancel what still runs here and end the
        thread."""
        if not self._thread.is_alive():
            last.close()
            return
        await self.run(_last(last))
        self._loop.call_soon_threadsafe(self._loop.stop)
        await asyncio.to_thread(self._thread.join, STOP_GRACE)
        if not self._thread.is_alive():
            self._loop.close()


async def _last(closing: Coroutine[Any, Any, None]) -> None:
    await closing
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in others:
        task.cancel()
    await asyncio.gather(*others, return_exceptions=True)
