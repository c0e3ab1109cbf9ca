"""Kopf through apiserver outages: its requests retry for as long as the apiserver is away, and a
kopf that hangs stopping on a failure of its own does not leave a leader that reconciles nothing."""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import Any

import kopf
import pytest
from aiohttp import web
from kopf._cogs.clients import api, auth

from barrack_operator.handlers import glue, serve

KOPF_DEFAULT_ATTEMPTS = 9  # kopf's own error_backoffs: eight retries, then the error escalates


async def _flaky_apiserver(failures: int) -> tuple[web.AppRunner, str, list[int]]:
    """A server answering 503 (as a restarting apiserver does) to its first ``failures`` requests."""
    answered: list[int] = []

    async def handler(_: web.Request) -> web.Response:
        status = 503 if len(answered) < failures else 200
        answered.append(status)
        return web.json_response({"kind": "Status", "code": status}, status=status)

    app = web.Application()
    app.router.add_get("/version", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}", answered


def test_the_operator_configures_kopf_to_retry_without_end_and_at_most_every_ten_seconds() -> None:
    settings = kopf.OperatorSettings()
    glue.configure(settings)
    backoffs = settings.networking.error_backoffs
    assert not hasattr(backoffs, "__len__"), "a sized sequence makes kopf give up after its length"
    first = list(itertools.islice(backoffs, 1000))
    assert len(first) == 1000 and max(first) == 10.0 and min(first) >= 1.0
    assert list(itertools.islice(backoffs, 3)) == first[:3], "each request iterates it afresh"


async def test_a_kopf_request_outlasts_an_apiserver_away_for_longer_than_kopfs_own_budget() -> None:
    failures = KOPF_DEFAULT_ATTEMPTS + 3
    runner, url, answered = await _flaky_apiserver(failures)
    settings = kopf.OperatorSettings()
    glue.configure(settings)
    settings.networking.error_backoffs = glue.RetryBackoffs(first=(), then=0.01)  # the test's clock
    context = auth.APIContext(kopf.ConnectionInfo(server=url, insecure=True))
    try:
        response = await api.request(
            "GET", "/version", settings=settings, context=context, logger=logging.getLogger("test")
        )
        assert response.status == 200
        assert answered == [503] * failures + [200]
    finally:
        await context.session.close()
        await runner.cleanup()


async def _hung_kopf(stopping: asyncio.Event, release: asyncio.Event) -> None:
    """Kopf after one of its root tasks ended, stuck stopping a task that never finishes."""
    stopping.set()
    await release.wait()


@pytest.fixture
def restarts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    made: list[str] = []
    monkeypatch.setattr(serve, "KOPF_STOP_GRACE", 0.2)
    monkeypatch.setattr(serve, "restart_in_place", lambda: made.append("restart"))
    return made


async def _stop_kopf(restarts: list[str], **flags: bool) -> list[str]:
    stopping, changed, stop, release = (asyncio.Event() for _ in range(4))
    if flags.get("changed"):
        changed.set()
    if flags.get("signal"):
        stop.set()
    running = asyncio.create_task(_hung_kopf(stopping, release))
    asyncio.get_running_loop().call_later(1.0, release.set)  # the hung task ends at last
    await serve._stopped_in_time(running, stopping, changed, stop)
    return restarts


async def test_a_kopf_that_hangs_stopping_after_its_own_failure_starts_the_process_again(
    restarts: list[str],
) -> None:
    assert await _stop_kopf(restarts) == ["restart"]


async def test_a_kopf_that_hangs_stopping_after_the_served_kinds_changed_starts_the_process_again(
    restarts: list[str],
) -> None:
    assert await _stop_kopf(restarts, changed=True) == ["restart"]


async def test_a_kopf_stopping_on_a_signal_is_awaited_however_long_it_takes(restarts: list[str]) -> None:
    assert await _stop_kopf(restarts, signal=True) == []


async def test_a_kopf_that_stops_within_the_grace_is_not_restarted(restarts: list[str]) -> None:
    stopping, changed, stop = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def quick(**_: Any) -> None:
        stopping.set()
        await asyncio.sleep(0.05)

    await serve._stopped_in_time(asyncio.create_task(quick()), stopping, changed, stop)
    assert restarts == []
