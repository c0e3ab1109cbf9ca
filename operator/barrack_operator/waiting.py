"""Waiting for an event with a time limit, without losing a cancellation.

On Python 3.11, ``asyncio.wait_for`` returns the awaited result, and swallows the cancellation,
when the task is cancelled in the same turn of the loop as the awaited thing completes
(python/cpython#86296, fixed in 3.12). A loop that waits so (a poller between rounds) then runs on
after its task was cancelled, and whoever awaits its end waits for ever: an account replaced
while its poller was being nudged kept its BarrackAccount's events from being handled at all.
``asyncio.timeout`` delivers the cancellation either way."""

from __future__ import annotations

import asyncio
import contextlib


async def wait_event(event: asyncio.Event, seconds: float) -> bool:
    """Wait until ``event`` is set or ``seconds`` pass; whether it is set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
    return event.is_set()
