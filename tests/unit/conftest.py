"""Unit fixtures: the simulator in-process behind httpx's ASGI transport, and a client speaking to it.
The simulator speaks each of Barrack's two dialects in turn (contract section 7), so every test that
uses it runs against both, with the client set to the dialect's auth header."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from barrack_operator.barrack import ApiKeySource, BarrackClient
from barrack_operator.barrack.client import RetryPolicy
from barrack_sim.app import Simulator, create_app
from barrack_sim.server import build_simulator

API_KEY = "unit-test-key-5f1c"
SSH_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHVuaXQtdGVzdC1rZXk= unit@test"


@pytest.fixture(params=["standard", "legacy"])
def sim(request: pytest.FixtureRequest) -> Simulator:
    return build_simulator(api_keys=[API_KEY], transition_seconds=5.0, seed=7, dialect=request.param)


def make_client(sim: Simulator, key: str = API_KEY, **kwargs: object) -> BarrackClient:
    transport = httpx.ASGITransport(app=create_app(sim))
    options: dict[str, object] = {
        "requests_per_second": 1000.0,
        "burst": 100,
        "retry": RetryPolicy(attempts=4, base_delay=0.001, max_delay=0.01),
        "seed": 1,
        "auth": sim.auth,
    }
    options.update(kwargs)
    return BarrackClient("http://sim/api", ApiKeySource.fixed(key), transport=transport, **options)  # type: ignore[arg-type]


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[BarrackClient]:
    async with make_client(sim) as c:
        yield c
