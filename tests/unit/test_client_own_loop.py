"""The client on a loop of its own (the operator's accounts): its rate limiter and exchanges run on
their own thread, unpaced by the operator's busy loop; what callers see is unchanged."""

from __future__ import annotations

import asyncio
import threading

import httpx
import pytest

from barrack_operator.barrack import ApiKeySource, BarrackClient
from barrack_operator.barrack.client import MUTATIONS
from barrack_operator.barrack.models import CreateSSHKeyRequest
from barrack_operator.barrack.routes import STANDARD_AUTH
from barrack_sim.app import Simulator, create_app
from tests.unit.conftest import API_KEY, SSH_PUBLIC_KEY


class ThreadNoting(httpx.AsyncBaseTransport):
    """The simulator's ASGI app, noting the thread each request is sent on."""

    def __init__(self, sim: Simulator) -> None:
        self._inner = httpx.ASGITransport(app=create_app(sim))
        self.threads: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.threads.append(threading.current_thread().name)
        return await self._inner.handle_async_request(request)


def own_loop_client(
    transport: httpx.AsyncBaseTransport, auth: object, observed: list[tuple[str, str, str]]
) -> BarrackClient:
    return BarrackClient(
        "http://sim/api",
        ApiKeySource.fixed(API_KEY),
        auth=auth,  # type: ignore[arg-type]
        requests_per_second=1000.0,
        burst=100,
        transport=transport,
        observer=lambda route, code, _: observed.append((route, code, threading.current_thread().name)),
        own_loop=True,
    )


async def test_a_client_on_its_own_loop_sends_on_its_thread_and_tells_the_callers_loop(
    sim: Simulator,
) -> None:
    transport, observed = ThreadNoting(sim), []
    client = own_loop_client(transport, sim.auth, observed)
    sent: list[tuple[str, str | None]] = []
    token = MUTATIONS.set(sent)
    try:
        key = await client.create_ssh_key(CreateSSHKeyRequest(name="deploy", public_key=SSH_PUBLIC_KEY))
    finally:
        MUTATIONS.reset(token)
    keys = [k async for k in client.iter_ssh_keys()]
    await asyncio.sleep(0.05)  # the observer's calls come through the callers' loop
    assert [k.id for k in keys] == [key.id]
    assert sent == [("create_ssh_key", None)]  # recorded for the caller's pass, from the other thread
    assert transport.threads == ["barrack-client", "barrack-client"]
    here = threading.current_thread().name
    assert observed == [("create_ssh_key", "200", here), ("list_ssh_keys", "200", here)]
    await client.aclose()


async def test_a_cancelled_caller_cancels_its_exchange_and_frees_its_slot() -> None:
    arrived, cancelled = threading.Event(), threading.Event()

    async def slow(request: httpx.Request) -> httpx.Response:
        arrived.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return httpx.Response(200, json={})

    client = own_loop_client(httpx.MockTransport(slow), STANDARD_AUTH, [])
    call = asyncio.create_task(client.get_balance())
    assert await asyncio.to_thread(arrived.wait, 5)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert await asyncio.to_thread(cancelled.wait, 5)
    assert client.limiter.waiting == 0
    await client.aclose()


async def test_closing_a_client_on_its_own_loop_ends_its_thread(sim: Simulator) -> None:
    def threads() -> int:  # other tests' clients may still run theirs
        return sum(1 for t in threading.enumerate() if t.name == "barrack-client")

    before = threads()
    client = own_loop_client(ThreadNoting(sim), sim.auth, [])
    await client.get_balance()
    assert threads() == before + 1
    await client.aclose()
    assert threads() == before
