"""The client against the simulator in-process: routes, error classes, pagination, rate limiting,
Retry-After, and retries only where they are safe."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable

import httpx
import pytest

from barrack_operator.barrack import (
    ApiUnavailable,
    InsufficientCredits,
    InvalidRequest,
    NotFound,
    PreconditionFailed,
    RateLimited,
    Unauthorized,
)
from barrack_operator.barrack import models as m
from barrack_operator.barrack import requests as rq
from barrack_operator.barrack.client import BarrackClient, RetryPolicy
from barrack_operator.barrack.ratelimit import LimiterClosed, RateLimiter
from barrack_operator.barrack.routes import ROUTES
from barrack_sim.app import Simulator, create_app, peak_rate
from tests.unit.conftest import API_KEY, SSH_PUBLIC_KEY, make_client


async def _instance(
    client: BarrackClient, sim: Simulator, name: str = "web-1", region: str = "US-1"
) -> m.VMInstance:
    key = await client.create_ssh_key(rq.CreateSSHKeyRequest(name=f"{name}-key", public_key=SSH_PUBLIC_KEY))
    image = (await client.list_os_images(region))[0]
    instance = await client.create_instance(
        rq.DeploymentRequest(
            name=name, region=region, gpu_model="A40", gpu_count=1, image_id=image.id, ssh_key_ids=[key.id]
        )
    )
    sim.account.clock.advance(10)
    return instance


async def _walk_scripts(client: BarrackClient) -> None:
    script = await client.create_script(rq.CreateScriptRequest(name="setup", content="echo 1"))
    assert (
        await client.update_script(script.id, rq.UpdateScriptRequest(content="echo 2"))
    ).content == "echo 2"
    assert [s.id async for s in client.iter_scripts()] == [script.id]
    assert (await client.get_script(script.id)).content == "echo 2"
    await client.delete_script(script.id)


async def test_every_route_is_served(client: BarrackClient, sim: Simulator) -> None:
    """Walk every route of the table once; the simulator counts each."""
    await asyncio.gather(client.get_balance(), client.list_regions())
    await client.list_gpu_stocks()
    await client.list_volume_types()
    await client.get_pricing(
        rq.PricingRequest(resource_type="volume", volume_size_gb=100, volume_type="NVMe")
    )
    instance = await _instance(client, sim)
    volume = await client.create_volume(
        rq.CreateVolumeRequest(name="data", region="US-1", size_gb=100, volume_type="NVMe")
    )
    sim.account.clock.advance(10)
    assert [v.id async for v in client.iter_volumes()] == [volume.id]
    await client.get_volume(volume.id)
    assert (await client.get_volume_billing(volume.id)).summary.totalCost > 0 and (
        await client.get_instance_billing(instance.id)
    ).records
    await client.resize_volume(volume.id, 200)
    sim.account.clock.advance(10)
    clone = await client.clone_volume(volume.id, "data-clone")
    sim.account.clock.advance(10)
    await _walk_snapshots(client, sim, instance)
    await client.attach_volumes(instance.id, [volume.id])
    sim.account.clock.advance(10)
    for action in ("reboot", "hibernate", "restore", "stop"):
        await client.instance_action(instance.id, action)
        sim.account.clock.advance(10)
    await client.detach_volumes(instance.id, [volume.id])
    sim.account.clock.advance(10)
    await client.instance_action(instance.id, "start")
    sim.account.clock.advance(10)
    await client.set_public_ip(instance.id, False)
    rule = await client.add_security_rule(
        instance.id, rq.AddFirewallRuleRequest(direction="ingress", protocol="icmp")
    )
    await client.remove_security_rule(instance.id, rule.id or "")
    assert [i.id async for i in client.iter_instances()] == [instance.id]
    assert (await client.get_instance(instance.id)).public_ip is None
    firewall = await client.create_firewall(rq.CreateFirewallRequest(name="fw", region="US-1"))
    sim.account.clock.advance(10)
    fw_rule = await client.add_firewall_rule(
        firewall.id,
        rq.AddFirewallRuleRequest(direction="ingress", protocol="tcp", port_range_min=22, port_range_max=22),
    )
    await client.attach_firewall(firewall.id, [instance.id])
    assert [f.id for f in await client.list_instance_firewalls(instance.id)] == [firewall.id]
    await client.remove_firewall_rule(firewall.id, fw_rule.id or "")
    await client.attach_firewall(firewall.id, [])
    assert "tcp" in await client.list_firewall_protocols()
    assert [f.id async for f in client.iter_firewalls()] == [firewall.id]
    await client.get_firewall(firewall.id)
    await client.delete_firewall(firewall.id)
    keys = [k async for k in client.iter_ssh_keys()]
    await asyncio.gather(client.get_ssh_key(keys[0].id), _walk_scripts(client))
    await client.delete_instance(instance.id)
    sim.account.clock.advance(10)
    await client.delete_ssh_key(keys[0].id)
    for doomed in (volume.id, clone.id):
        await client.delete_volume(doomed)
    sim.account.clock.advance(10)
    assert [v async for v in client.iter_volumes()] == []
    served = {name for name, _ in sim.calls}
    assert served == set(ROUTES), f"routes never called: {set(ROUTES) - served}"


async def test_error_classes(client: BarrackClient, sim: Simulator) -> None:
    with pytest.raises(InvalidRequest, match="size_gb"):
        await client.create_volume(
            rq.CreateVolumeRequest(name="tiny", region="US-1", size_gb=5, volume_type="NVMe")
        )
    with pytest.raises(NotFound) as missing:
        await client.get_volume("BRK-999999V")
    assert missing.value.error_code == "not_found"  # error_code, or the legacy dialect's error_reason
    assert missing.value.request_id.startswith("req-") or sim.dialect == "legacy"  # legacy sends none
    sim.account.config.balance = 0.001
    with pytest.raises(InsufficientCredits):
        await client.create_volume(
            rq.CreateVolumeRequest(name="big", region="US-1", size_gb=1000, volume_type="NVMe")
        )
    sim.account.config.balance = 1000
    instance = await _instance(client, sim)
    volume = await client.create_volume(
        rq.CreateVolumeRequest(name="d", region="US-1", size_gb=100, volume_type="NVMe")
    )
    sim.account.clock.advance(10)
    await client.attach_volumes(instance.id, [volume.id])
    sim.account.clock.advance(10)
    with pytest.raises(PreconditionFailed, match="must be in SHUTOFF state"):
        await client.detach_volumes(instance.id, [volume.id])


async def test_unauthorized_error_never_carries_the_key(sim: Simulator) -> None:
    secret = "wrong-key-3c9e1a"
    async with make_client(sim, key=secret) as client:
        with pytest.raises(Unauthorized) as caught:
            await client.get_balance()
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value)


async def test_pagination_walks_every_page(client: BarrackClient, sim: Simulator) -> None:
    for n in range(230):
        sim.account.create_volume(
            rq.CreateVolumeRequest(name=f"v{n}", region="US-1", size_gb=100, volume_type="NVMe")
        )
    names = [v.name async for v in client.iter_volumes()]
    assert len(names) == 230 and len(set(names)) == 230
    assert sim.calls[("list_volumes", 200)] == 3


async def test_rate_limited_reads_are_retried_after_retry_after(sim: Simulator) -> None:
    sim.faults.config.rate_limit_rps = 1.0
    async with make_client(sim, retry=RetryPolicy(attempts=5, base_delay=0.001)) as client:
        paused: list[float] = []

        def pause_for(seconds: float) -> None:  # let the simulator's time pass instead of waiting
            paused.append(seconds)
            sim.account.clock.advance(seconds)

        client.limiter.pause_for = pause_for  # type: ignore[method-assign]
        await client.get_balance()
        await client.get_balance()  # second call within the second: 429, then retried
    assert sim.calls[("get_balance", 429)] >= 1
    assert sim.calls[("get_balance", 200)] == 2
    assert paused and paused[0] >= 1.0


async def test_rate_limited_past_attempts_raises_with_retry_after(sim: Simulator) -> None:
    sim.faults.config.rate_limit_rps = 0.001
    async with make_client(sim, retry=RetryPolicy(attempts=1)) as client:
        await client.get_balance()
        with pytest.raises(RateLimited) as caught:
            await client.get_balance()
    assert caught.value.retry_after >= 1


async def test_reads_retry_5xx_but_mutations_do_not(sim: Simulator) -> None:
    async with make_client(
        sim, retry=RetryPolicy(attempts=50, base_delay=0.0001, max_delay=0.0001)
    ) as client:
        sim.faults.config.error_rate = 0.5
        for _ in range(10):
            await client.get_balance()  # retried until it passes
        sim.faults.config.error_rate = 0.0
        sim.faults.config.commit_then_fail_rate = 1.0
        with pytest.raises(ApiUnavailable):
            await client.create_volume(
                rq.CreateVolumeRequest(name="once", region="US-1", size_gb=100, volume_type="NVMe")
            )
    # The create happened once and was not repeated, although the reply was a 500.
    assert [v.name for v in sim.account.volumes.values()] == ["once"]
    assert sim.calls[("create_volume", 500)] == 1


async def test_connection_refused_is_api_unavailable_and_not_sent() -> None:
    from barrack_operator.barrack import ApiKeySource

    async with BarrackClient(
        "http://127.0.0.1:9/api", ApiKeySource.fixed(API_KEY), retry=RetryPolicy(attempts=1)
    ) as client:
        with pytest.raises(ApiUnavailable) as caught:
            await client.create_volume(
                rq.CreateVolumeRequest(name="x", region="US-1", size_gb=100, volume_type="NVMe")
            )
    assert caught.value.sent is False


async def test_rate_limiter_spaces_calls() -> None:
    now = [0.0]
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(rate=10, burst=1, clock=lambda: now[0], sleep=fake_sleep)
    for _ in range(5):
        await limiter.acquire()
    limiter.pause_for(3.0)
    await limiter.acquire()
    assert sum(sleeps) == pytest.approx(0.4 + 3.0, abs=1e-6)


def _late_clock(lateness: Callable[[int], float]) -> tuple[list[float], Callable[[float], Awaitable[None]]]:
    """A fake clock whose sleeps end late by ``lateness(n)`` seconds on the n-th sleep (a busy loop)."""
    now = [0.0]
    count = [0]

    async def late_sleep(seconds: float) -> None:
        count[0] += 1
        now[0] += seconds + lateness(count[0])

    return now, late_sleep


async def _grant_times(limiter: RateLimiter, now: list[float], until: float) -> list[float]:
    granted: list[float] = []
    while now[0] < until:
        await limiter.acquire()
        granted.append(now[0])
    return granted


async def test_rate_limiter_makes_up_for_late_wake_ups_without_passing_its_cap() -> None:
    # A loop that wakes the limiter 20 ms late at every sleep: a bucket of one loses that time
    # on every token (19 per second would become about 13); the catch-up keeps the rate.
    rng = random.Random(7)
    now, late_sleep = _late_clock(lambda n: rng.uniform(0.0, 0.04))
    limiter = RateLimiter(rate=19.5, burst=1, clock=lambda: now[0], sleep=late_sleep)
    granted = await _grant_times(limiter, now, 60.0)
    assert len(granted) / 60.0 > 18.5
    assert peak_rate(granted) <= 20  # rate + burst, counted as Barrack counts (a sliding second)


async def test_rate_limiter_counts_a_grant_from_when_its_caller_resumes_after_a_stall() -> None:
    # The loop stalls for 10 s between granting a slot and its caller resuming (CPU starvation, a
    # blocking pause): the stalled send and the ones after it still fit the cap in every second.
    now = [0.0]
    stalls = [10.0]

    async def stalling_sleep(seconds: float) -> None:
        now[0] += seconds + (stalls.pop() if stalls else 0.0)
        await asyncio.sleep(0)  # granted callers resume here

    limiter = RateLimiter(rate=4, burst=3, clock=lambda: now[0], sleep=stalling_sleep)
    sent: list[float] = []

    async def call() -> None:
        await limiter.acquire()
        sent.append(now[0])

    await asyncio.gather(*(call() for _ in range(30)))
    await limiter.close()
    assert sent[0] > 10.0  # the first caller resumed after the stall
    assert peak_rate(sent) <= 7  # rate + burst


async def test_a_request_counts_against_the_cap_until_answered_and_a_second_after() -> None:
    # However long a request is on its way, Barrack sees it between its grant and its answer: the
    # cap counts it over that whole span, and for a second after the answer.
    now = [0.0]

    async def fake_sleep(seconds: float) -> None:
        now[0] += seconds
        await asyncio.sleep(0)

    limiter = RateLimiter(rate=2, burst=1, clock=lambda: now[0], sleep=fake_sleep)  # cap: 3
    answer = asyncio.Event()

    async def slow_request() -> None:
        async with limiter.slot():
            await answer.wait()

    on_the_way = [asyncio.create_task(slow_request()) for _ in range(3)]
    for _ in range(100):  # the three are granted within a few turns of the loop
        await asyncio.sleep(0)
    assert limiter._on_the_way == 3
    fourth = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0.05)
    assert not fourth.done()  # three on their way fill the cap, however long they take
    now[0] = 50.0
    answer.set()
    await asyncio.gather(*on_the_way)
    await fourth
    assert now[0] == pytest.approx(51.0)  # a second after the three answers
    await limiter.close()


async def test_rate_limiter_sends_at_most_burst_at_once_after_a_quiet_spell() -> None:
    now, late_sleep = _late_clock(lambda n: 0.0)
    limiter = RateLimiter(rate=10, burst=3, clock=lambda: now[0], sleep=late_sleep)
    await _grant_times(limiter, now, 5.0)
    now[0] += 60.0  # quiet: the bucket refills to burst, not more
    start = now[0]
    granted = await _grant_times(limiter, now, start + 1e-9)
    assert [t for t in granted if t == start] == [start] * 3  # the fourth waited for a token
    assert len(granted) == 4


async def test_rate_limiter_serves_urgent_callers_before_queued_ones() -> None:
    limiter = RateLimiter(rate=50, burst=1)
    order: list[str] = []

    async def call(name: str, urgent: bool = False, follow_up: bool = False) -> None:
        await limiter.acquire(urgent=urgent, follow_up=follow_up)
        order.append(name)

    queued = [asyncio.create_task(call(f"create-{i}")) for i in range(10)]
    await asyncio.sleep(0)  # the creates are queued first
    attach = asyncio.create_task(call("attach", follow_up=True))
    await asyncio.sleep(0)
    listing = asyncio.create_task(call("list", urgent=True))
    await asyncio.gather(*queued, attach, listing)
    await limiter.close()
    # The first create held the only token; the listing goes next, then the attach (work on a
    # resource that exists), ahead of the nine creates still queued.
    assert order[:3] == ["create-0", "list", "attach"]
    assert order[3:] == [f"create-{i}" for i in range(1, 10)]


def test_only_routes_that_make_a_resource_wait_behind_follow_ups() -> None:
    makes = {name for name, route in ROUTES.items() if route.makes}
    assert makes == {
        "create_volume",
        "clone_volume",
        "create_instance",
        "create_firewall",
        "create_ssh_key",
        "create_script",
        "create_snapshot",
        "restore_snapshot",
        "create_image",
    }
    assert not any(route.is_read for route in ROUTES.values() if route.makes)


async def test_rate_limiter_skips_cancelled_waiters() -> None:
    limiter = RateLimiter(rate=100, burst=1)
    await limiter.acquire()
    gone = asyncio.create_task(limiter.acquire())
    await asyncio.sleep(0)
    assert limiter.busy and limiter.waiting == 1
    gone.cancel()
    await asyncio.wait_for(limiter.acquire(), 1.0)
    assert limiter.waiting == 0
    assert not limiter.busy
    await limiter.close()


def test_states_compare_case_insensitively() -> None:
    volume = m.Volume(
        id="BRK-1V",
        name="v",
        status="available",
        region="US-1",
        size_gb=100,
        volume_type="NVMe",
        color="blue",
    )
    assert volume.status == m.VolumeState.AVAILABLE
    assert volume.model_extra == {"color": "blue"}  # unknown fields are kept


def test_api_key_file_is_reread_when_it_changes(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os

    from barrack_operator.barrack import ApiKeySource

    path = tmp_path / "key"
    path.write_text("first\n")
    source = ApiKeySource(key_file=path)
    assert source.get() == "first"
    path.write_text("second\n")
    os.utime(path, (path.stat().st_atime + 5, path.stat().st_mtime + 5))
    assert source.get() == "second"
    assert "second" not in repr(source)


async def _walk_snapshots(client: BarrackClient, sim: Simulator, instance: m.VMInstance) -> None:
    """Snapshot an ACTIVE instance, make an image of it, deploy from the image, restore the
    snapshot into a new instance; then delete what was made."""
    assert [i.id for i in await client.list_snapshot_eligible_instances()] == [instance.id]
    snapshot = await client.create_snapshot(rq.CreateSnapshotRequest(name="snap", instance_id=instance.id))
    sim.account.clock.advance(10)
    assert (await client.get_snapshot(snapshot.id)).status == "SUCCESS"
    assert [s.id async for s in client.iter_snapshots()] == [snapshot.id]
    image = await client.create_image(snapshot.id, "golden")
    sim.account.clock.advance(10)
    assert (await client.get_image(image.id)).status == "AVAILABLE"
    assert [i.id async for i in client.iter_images()] == [image.id]
    keys = [k.id async for k in client.iter_ssh_keys()]
    restored = await client.restore_snapshot(snapshot.id, rq.RestoreSnapshotRequest(ssh_key_ids=keys))
    deployed = await client.create_instance(
        rq.DeploymentRequest(name="from-image", region="US-1", gpu_model="A40", gpu_count=1,
                            custom_image_id=image.id, ssh_key_ids=keys)
    )  # fmt: skip
    sim.account.clock.advance(10)
    assert restored.name == "snap-restored" and restored.id != instance.id
    assert (await client.get_snapshot_billing(snapshot.id)).summary.totalCost > 0
    for made in (restored, deployed):
        await client.delete_instance(made.id)
    await client.delete_image(image.id)
    await client.delete_snapshot(snapshot.id)
    sim.account.clock.advance(10)


async def test_the_simulator_counts_each_second_s_requests_by_route(
    client: BarrackClient, sim: Simulator
) -> None:
    """The benchmark's timeline (``hack/bench.py --timeline``) reads, per wall second, how many
    requests of each route arrived."""
    await client.create_ssh_key(rq.CreateSSHKeyRequest(name="timeline", public_key=SSH_PUBLIC_KEY))
    await client.read_page("volumes", 1, 100)
    await client.read_page("volumes", 1, 100)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(sim)), base_url="http://sim"
    ) as admin:
        rate = (await admin.get("/_sim/rate")).json()
    by_route: Counter[str] = Counter()
    for _, counts in rate["per_wall_second_by_route"]:
        by_route.update(counts)
    assert by_route == {"create_ssh_key": 1, "list_volumes": 2}
    assert sum(n for _, n in rate["per_wall_second"]) == 3


async def test_closing_a_rate_limiter_releases_every_call_waiting_for_a_slot() -> None:
    """An account replaced while a pass waited for a slot (a create behind a burst of others) must
    not leave that pass waiting for ever: it gets LimiterClosed at once, and so does any later call."""
    limiter = RateLimiter(rate=0.01, burst=1)
    await limiter.acquire()  # the one token: the next callers wait about 100 s
    waiting = [asyncio.create_task(limiter.acquire(urgent=u)) for u in (True, False)]
    await asyncio.sleep(0.05)
    assert not any(t.done() for t in waiting) and limiter.waiting == 2
    await limiter.close()
    for task in waiting:
        with pytest.raises(LimiterClosed):
            await asyncio.wait_for(task, 1)
    with pytest.raises(LimiterClosed):
        await limiter.acquire()
