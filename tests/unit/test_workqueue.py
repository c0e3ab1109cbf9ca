"""The work queue that runs every object's reconcile (issue 18: one queue for all objects instead
of a kopf daemon, its task and its events per object)."""

from __future__ import annotations

import asyncio

import pytest

from barrack_operator import workqueue
from barrack_operator.workqueue import WorkQueue
from tests.unit.test_never_leak_never_freeze import eventually as until


class Recorder:
    """Work that records its runs and returns a set delay; it can be held open to test overlaps."""

    def __init__(self, delay: float | None = None) -> None:
        self.delay = delay
        self.runs: list[str] = []
        self.active: set[str] = set()
        self.overlaps = 0
        self.gate = asyncio.Event()
        self.gate.set()  # open: a run returns at once

    async def __call__(self, key: str) -> float | None:
        if key in self.active:
            self.overlaps += 1
        self.active.add(key)
        self.runs.append(key)
        try:
            await self.gate.wait()
            return self.delay
        finally:
            self.active.discard(key)


async def running_held(delay: float) -> tuple[Recorder, WorkQueue]:
    """A queue whose key ``a`` is running now, held until ``work.gate`` is set."""
    work = Recorder(delay=delay)
    work.gate.clear()
    queue = WorkQueue(work)
    queue.add("a")
    await until(lambda: work.runs == ["a"])
    return work, queue


async def test_a_key_runs_when_added_and_again_after_the_delay_its_work_returns() -> None:
    work = Recorder(delay=0.05)
    queue = WorkQueue(work)
    queue.add("a")
    await until(lambda: len(work.runs) >= 3)
    assert set(work.runs) == {"a"}
    await queue.close(0)


async def test_work_that_returns_none_runs_again_only_when_woken() -> None:
    work = Recorder(delay=None)
    queue = WorkQueue(work)
    queue.add("a")
    await until(lambda: work.runs == ["a"])
    await asyncio.sleep(0.1)
    assert work.runs == ["a"]
    queue.wake("a")
    await until(lambda: work.runs == ["a", "a"])
    queue.wake("not-a-member")  # a wake of an unknown key adds nothing
    await asyncio.sleep(0.05)
    assert "not-a-member" not in queue and work.runs == ["a", "a"]
    await queue.close(0)


async def test_a_key_woken_while_it_runs_runs_again_right_after_and_never_twice_at_once() -> None:
    work, queue = await running_held(delay=3600)
    for _ in range(5):
        queue.wake("a")  # five wakes while it runs: one run more, not five
    work.gate.set()
    await until(lambda: len(work.runs) == 2)
    await asyncio.sleep(0.1)
    assert work.runs == ["a", "a"]
    assert work.overlaps == 0
    await queue.close(0)


async def test_a_wake_brings_a_far_run_forward() -> None:
    work = Recorder(delay=3600)
    queue = WorkQueue(work)
    queue.add("a")
    await until(lambda: work.runs == ["a"])
    queue.wake("a")
    await until(lambda: work.runs == ["a", "a"])
    await queue.close(0)


async def test_a_later_add_never_delays_a_run_already_due() -> None:
    work = Recorder(delay=0.3)
    queue = WorkQueue(work)
    queue.add("a")
    await until(lambda: work.runs == ["a"])
    queue.add("a", delay=3600)  # later than the run due in 0.3 s: changes nothing
    await until(lambda: work.runs == ["a", "a"], seconds=5)  # no wake: the run came when it was due
    await queue.close(0)


async def test_waiting_keys_cost_no_task() -> None:
    work = Recorder(delay=3600)
    queue = WorkQueue(work)
    before = len(asyncio.all_tasks())
    for i in range(2000):
        queue.add(f"k{i}")
    await until(lambda: len(work.runs) == 2000, seconds=10)
    await until(lambda: queue.running == 0)
    assert len(queue) == 2000
    assert len(asyncio.all_tasks()) <= before + 1  # the scheduler, whatever the number of keys
    await queue.close(0)


async def test_a_discarded_key_runs_no_more_once_its_run_under_way_ends() -> None:
    work, queue = await running_held(delay=0.01)
    queue.discard("a")
    assert "a" not in queue and queue.running == 1  # the run under way ends on its own
    work.gate.set()
    await until(lambda: queue.running == 0)
    await asyncio.sleep(0.1)
    assert work.runs == ["a"]  # its requeue (0.01 s) was not kept
    await queue.close(0)


async def test_work_that_raises_runs_again_later(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workqueue, "RETRY_AFTER_ERROR", 0.05)
    runs: list[str] = []

    async def failing(key: str) -> float:
        runs.append(key)
        raise RuntimeError("a bug in one object's work")

    queue = WorkQueue(failing)
    queue.add("a")
    await until(lambda: len(runs) >= 2)
    await queue.close(0)


async def test_close_stops_every_key_and_the_queue_can_be_fed_again() -> None:
    work = Recorder(delay=0.02)
    queue = WorkQueue(work)
    queue.add("a")
    queue.add("b")
    await until(lambda: {"a", "b"} <= set(work.runs))
    await queue.close(1)
    count = len(work.runs)
    await asyncio.sleep(0.1)
    assert len(work.runs) == count and len(queue) == 0
    queue.add("c")  # kopf started again over its kinds: the queue serves again
    await until(lambda: "c" in work.runs)
    await queue.close(0)


async def test_close_gives_every_run_under_way_the_same_grace() -> None:
    ends = {"a": 0.05, "b": 0.2, "c": 0.3}
    finished: list[str] = []

    async def work(key: str) -> float:
        await asyncio.sleep(ends[key])
        finished.append(key)
        return 3600.0

    queue = WorkQueue(work)
    for key in ends:
        queue.add(key)
    await until(lambda: queue.running == 3)
    await queue.close(5)
    assert finished == ["a", "b", "c"]  # none cancelled once the first had ended
