"""A loop that waits for an event with a time limit ends when cancelled, even when the event is
set in the same turn of the loop as the cancellation (Python 3.11's asyncio.wait_for loses that
cancellation: an account's poller then ran on after its account was replaced, and the stop that
awaited it, and with it every later BarrackAccount event, waited for ever)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from barrack_operator.waiting import wait_event


async def _loop(event: asyncio.Event, wait: Callable[[asyncio.Event], Awaitable[object]]) -> None:
    while True:
        await wait(event)
        event.clear()


async def _cancelled_as_the_event_comes(wait: Callable[[asyncio.Event], Awaitable[object]]) -> bool:
    """Whether the loop ended when cancelled in the turn its event was set."""
    event = asyncio.Event()
    task = asyncio.create_task(_loop(event, wait))
    await asyncio.sleep(0.01)
    event.set()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(asyncio.shield(task), 0.5)
    ended = task.done()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return ended


async def test_a_cancellation_as_the_event_is_set_ends_the_loop() -> None:
    for _ in range(20):
        assert await _cancelled_as_the_event_comes(lambda e: wait_event(e, 10))


async def test_wait_event_says_whether_the_event_came() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 10) is True
