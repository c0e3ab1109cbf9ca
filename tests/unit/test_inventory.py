"""The inventory lists each kind on its own schedule, and the simulator's rate limit is a sliding
window that the benchmark's peak-rate figure measures the same way."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest

from barrack_operator.barrack import BarrackClient
from barrack_operator.barrack import models as m
from barrack_operator.barrack import requests as rq
from barrack_operator.inventory import Inventory
from barrack_operator.listings import InventoryClosed, cover, kinds_touched
from barrack_sim.app import Simulator, peak_rate
from barrack_sim.faults import FaultConfig, FaultInjector
from tests.unit.conftest import make_client


def test_peak_rate_counts_a_sliding_half_open_window() -> None:
    assert peak_rate([]) == 0
    assert peak_rate([0.0, 0.5, 0.99, 1.0, 1.5]) == 3  # (0.0, 1.0] holds 0.5, 0.99, 1.0
    assert peak_rate([i / 16 for i in range(64)]) == 16  # evenly spaced at 16 a second


def test_simulator_rate_limit_admits_rate_requests_in_any_second() -> None:
    faults = FaultInjector(FaultConfig(rate_limit_rps=5))
    admitted = [t / 10 for t in range(30) if faults.retry_after(t / 10) is None]
    assert peak_rate(admitted) == 5
    assert faults.injected["429"] == 30 - len(admitted)
    retry = faults.retry_after(3.0)
    assert retry is None or retry > 0


def test_mutations_name_the_kinds_they_change() -> None:
    assert kinds_touched("create_volume") == {"volumes"}
    assert kinds_touched("detach_volumes") == {"instances", "volumes"}
    assert kinds_touched("attach_firewall") == {"firewalls", "instances"}
    assert kinds_touched("delete_ssh_key") == {"ssh_keys"}


async def test_a_nudged_kind_is_listed_alone_and_steady_kinds_wait_for_the_slow_interval(
    sim: Simulator,
) -> None:
    async with make_client(sim) as client:
        inventory = Inventory(client, fast_interval=0.05, slow_interval=3600)
        poller = asyncio.create_task(inventory.run())
        await asyncio.wait_for(inventory.polled_once.wait(), 5)
        await asyncio.sleep(0.1)
        first = dict(sim.calls)
        volume = await client.create_volume(
            rq.CreateVolumeRequest(name="one", region="US-1", size_gb=100, volume_type="NVMe")
        )
        since = time.monotonic()
        inventory.record(volume)
        await inventory.wait_fresh(since, timeout=5, kinds=["volumes"])
        await asyncio.sleep(0.2)
        poller.cancel()
        listed = {
            route: n - first.get((route, 200), 0) for (route, code), n in sim.calls.items() if code == 200
        }
    assert listed["list_volumes"] >= 1
    assert listed.get("list_ssh_keys", 0) == 0 and listed.get("list_firewalls", 0) == 0


def test_fast_listings_of_a_large_account_are_spread_out(sim: Simulator) -> None:
    client = make_client(sim, requests_per_second=20)
    inventory = Inventory(client, fast_interval=2.0)
    assert inventory.fast_gap("volumes") == 2.0
    inventory.volumes.items = {f"v{i}": None for i in range(4000)}  # type: ignore[misc]
    # 40 pages a listing, at most half of 20 requests a second while nothing queues: every 4 s.
    assert inventory.fast_gap("volumes") == 4.0


async def test_whole_listings_take_one_percent_of_the_rate_while_mutations_queue(sim: Simulator) -> None:
    client = make_client(sim, requests_per_second=20)
    inventory = Inventory(client, fast_interval=2.0)
    inventory.volumes.items = {f"v{i}": None for i in range(2000)}  # type: ignore[misc]
    assert inventory.fast_gap("volumes") == 2.0  # 20 pages, half the rate: the fast interval
    queued = [asyncio.ensure_future(client.limiter.acquire()) for _ in range(5)]
    await asyncio.sleep(0)
    # A few calls queued are less than a second of work: their slots are not what listings take.
    assert client.limiter.busy and not client.limiter.saturated
    assert inventory.fast_gap("volumes") == 2.0
    queued += [asyncio.ensure_future(client.limiter.acquire()) for _ in range(25)]
    await asyncio.sleep(0)
    assert client.limiter.saturated
    # While creates queue, 20 pages at 1% of 20 a second: one listing every 100 s, steady or moving
    # (looks at the pages of moving resources report the work meanwhile).
    assert inventory.fast_gap("volumes") == pytest.approx(20 / 0.2)
    assert inventory.slow_gap("volumes") == pytest.approx(20 / 0.2)
    for waiter in queued:
        waiter.cancel()
    await asyncio.gather(*queued, return_exceptions=True)


def test_the_listing_share_is_for_every_kind_in_use_together(sim: Simulator) -> None:
    client = make_client(sim, requests_per_second=20)
    inventory = Inventory(client, fast_interval=2.0)
    inventory.volumes.items = {f"v{i}": None for i in range(2000)}  # type: ignore[misc]
    inventory.instances.items = {f"i{i}": None for i in range(1000)}  # type: ignore[misc]
    inventory.use("volumes")
    inventory.use("instances")
    # 20 + 10 pages for the two kinds at most half of 20 a second: each every 3 s (alone, volumes
    # would list every 2 s and instances every 2 s: 15 pages a second, 75% of the rate).
    assert inventory.fast_gap("volumes") == inventory.fast_gap("instances") == 3.0


def test_steady_listings_of_a_very_large_account_take_at_most_a_quarter_of_the_rate(sim: Simulator) -> None:
    client = make_client(sim, requests_per_second=20)
    inventory = Inventory(client, fast_interval=2.0, slow_interval=10.0)
    inventory.volumes.items = {f"v{i}": None for i in range(2000)}  # type: ignore[misc]
    assert inventory.slow_gap("volumes") == 10.0  # 20 pages every 10 s: a tenth of the rate
    inventory.volumes.items = {f"v{i}": None for i in range(10_000)}  # type: ignore[misc]
    # 100 pages at most a quarter of 20 a second: every 20 s, not every 10 s (half the rate).
    assert inventory.slow_gap("volumes") == 20.0


async def test_a_resource_recorded_during_a_listing_is_kept_until_a_later_listing(sim: Simulator) -> None:
    # A create's reply is folded into the index while a paged listing that began before it is
    # under way; that listing cannot show it and must not drop it (each object would read Barrack
    # again). A listing begun after the record is the truth, whatever it says.
    now = [100.0]
    async with make_client(sim) as client:
        inventory = Inventory(client, clock=lambda: now[0])
        await inventory.poll_once(["volumes"])
        made = m.Volume(
            id="BRK-9V", name="new", status="CREATING", region="US-1", size_gb=100, volume_type="NVMe"
        )
        now[0] = 110.0
        inventory.record(made)
        now[0] = 105.0  # a listing that began before the record
        changed = await inventory.poll_once(["volumes"])
        assert inventory.volumes.items["BRK-9V"] == made and "BRK-9V" not in changed
        now[0] = 120.0  # a listing that began after it: Barrack has no such volume
        changed = await inventory.poll_once(["volumes"])
        assert "BRK-9V" not in inventory.volumes.items and "BRK-9V" in changed


def _volume(name: str) -> rq.CreateVolumeRequest:
    return rq.CreateVolumeRequest(name=name, region="US-1", size_gb=100, volume_type="NVMe")


async def _listed_account(
    client: BarrackClient, sim: Simulator, count: int, on_change: Callable[[set[str]], None] | None = None
) -> tuple[Inventory, list[m.Volume]]:
    """``count`` settled volumes, listed once by an inventory that lists whole only hourly."""
    made = [await client.create_volume(_volume(f"v{i:03d}")) for i in range(count)]
    sim.account.clock.advance(60)
    inventory = Inventory(client, fast_interval=0.05, slow_interval=3600, on_change=on_change)
    inventory.use("volumes")
    await inventory.poll_once(["volumes"])
    assert not inventory.volumes.transitional("volumes")
    return inventory, made


async def test_a_look_reads_only_the_page_of_what_is_new_and_concludes_nothing_gone(sim: Simulator) -> None:
    async with make_client(sim) as client:
        inventory, made = await _listed_account(client, sim, 250)  # pages 1 to 3
        gone = made[5]
        await client.delete_volume(gone.id)  # behind the operator's back, on page 1
        sim.account.clock.advance(60)
        since = time.monotonic()
        new = await client.create_volume(_volume("new"))
        inventory.record(new)
        before = sim.calls[("list_volumes", 200)]
        _, pages = await inventory.peek("volumes")
        assert pages == 1 and sim.calls[("list_volumes", 200)] - before == 1  # the last page only
        assert inventory.volumes.shown_since(new.id, since)
        assert not inventory.volumes.shown_since(made[0].id, since)  # page 1 was not read
        assert gone.id in inventory.volumes.items  # only a whole listing says what went
        await inventory.poll_once(["volumes"])
        assert gone.id not in inventory.volumes.items


async def test_a_look_at_resources_on_both_sides_of_a_page_boundary_is_one_read(sim: Simulator) -> None:
    async with make_client(sim) as client:
        inventory, made = await _listed_account(client, sim, 250)
        since = time.monotonic()
        for volume in made[180:230]:  # positions 180 to 229: pages 2 and 3 of a hundred
            inventory.record(await client.resize_volume(volume.id, 200))
        before = sim.calls[("list_volumes", 200)]
        _, pages = await inventory.peek("volumes")
        assert pages == 1 and sim.calls[("list_volumes", 200)] - before == 1
        assert all(inventory.volumes.shown_since(v.id, since) for v in made[180:230])


def test_cover_reads_few_pages_and_reaches_far_beyond_the_end() -> None:
    assert cover({180, 229}) == [(3, 90)]  # positions 180 to 269: one read, not pages 2 and 3
    assert cover({5, 250}) == [(1, 100), (3, 100)]  # too far apart for one read
    [(page, limit)] = cover(set(range(250, 253)), first=250)  # the end: on as far as a read reaches
    assert (page - 1) * limit <= 250 and page * limit > 300, (page, limit)
    for positions in ({0}, {99, 100}, {150, 151, 390}, set(range(37, 137)), {7, 63, 64, 700, 701}):
        reads = cover(positions)
        assert all(1 <= limit <= 100 for _, limit in reads)
        assert all(any((p - 1) * lim <= at < p * lim for p, lim in reads) for at in positions), positions


async def test_a_wait_after_a_call_ends_with_a_look_that_shows_what_it_changed(sim: Simulator) -> None:
    async with make_client(sim) as client:
        inventory, made = await _listed_account(client, sim, 150)
        poller = asyncio.create_task(inventory.run())
        try:
            await asyncio.sleep(0.1)
            listed_at = inventory.volumes.started_at
            await client.resize_volume(made[120].id, 200)  # on page 2
            since = time.monotonic()
            await inventory.wait_fresh(since, timeout=5, kinds=["volumes"], ids=[made[120].id])
            assert inventory.volumes.items[made[120].id].status == "RESIZING"
            assert inventory.volumes.started_at == listed_at  # no whole listing was needed
            assert inventory.look_pages["volumes"] >= 1
        finally:
            poller.cancel()


async def test_a_look_that_misses_a_moving_resource_asks_for_a_listing(sim: Simulator) -> None:
    async with make_client(sim) as client:
        gone = asyncio.Event()
        inventory, made = await _listed_account(
            client, sim, 150, lambda ids: gone.set() if made[130].id in ids else None
        )
        await client.delete_volume(made[130].id)  # DELETING, then gone
        await inventory.poll_once(["volumes"])
        assert inventory.volumes.items[made[130].id].status == "DELETING"
        poller = asyncio.create_task(inventory.run())
        try:
            await asyncio.sleep(0.2)
            assert made[130].id in inventory.volumes.items  # looked at, still DELETING
            sim.account.clock.advance(60)
            # The look at its page does not find it; without a listing it would stay for an hour.
            await asyncio.wait_for(gone.wait(), 5)
            assert made[130].id not in inventory.volumes.items
        finally:
            poller.cancel()


async def test_a_resource_a_call_changed_without_a_transition_is_looked_at_until_a_read_shows_it(
    sim: Simulator,
) -> None:
    # A rule added to a firewall leaves nothing transitional to look for: the caller names it.
    async with make_client(sim) as client:
        firewall = await client.create_firewall(rq.CreateFirewallRequest(name="fw", region="US-1"))
        sim.account.clock.advance(60)
        shown = asyncio.Event()
        inventory = Inventory(
            client,
            fast_interval=0.05,
            slow_interval=3600,
            on_change=lambda ids: shown.set() if firewall.id in ids else None,
        )
        inventory.use("firewalls")
        await inventory.poll_once(["firewalls"])
        poller = asyncio.create_task(inventory.run())
        try:
            await asyncio.sleep(0.2)
            await client.add_firewall_rule(
                firewall.id, rq.AddFirewallRuleRequest(direction="ingress", protocol="icmp")
            )
            inventory.expect([firewall.id])
            await asyncio.wait_for(shown.wait(), 5)  # without it: the next listing, in an hour
            assert len(inventory.firewalls.items[firewall.id].rules) == 1
        finally:
            poller.cancel()


async def test_quick_looks_only_while_no_call_waits_for_the_rate_limit(sim: Simulator) -> None:
    # At the end of a burst a look at what was just made is worth half a second, not a call: a
    # look takes the urgent lane, so while calls queue (even less than a second of them) each page
    # read is a create or an attach sent later.
    client = make_client(sim, requests_per_second=20)
    inventory = Inventory(client, fast_interval=2.0)
    volume = await client.create_volume(
        rq.CreateVolumeRequest(name="v", region="US-1", size_gb=100, volume_type="NVMe")
    )
    inventory.record(volume)
    assert inventory.look_gap("volumes") == 0.5
    queued = [asyncio.ensure_future(client.limiter.acquire()) for _ in range(3)]
    await asyncio.sleep(0)
    assert client.limiter.busy and not client.limiter.saturated
    assert inventory.look_gap("volumes") == 2.0
    for waiter in queued:
        waiter.cancel()
    await asyncio.gather(*queued, return_exceptions=True)
    assert not client.limiter.busy
    assert inventory.look_gap("volumes") == 0.5
    await client.aclose()


async def test_closing_an_inventory_releases_every_pass_waiting_on_it(sim: Simulator) -> None:
    """An account replaced before its first poll ended (a BarrackAccount applied as the operator
    starts) must not leave a pass waiting for ever on a poller that is gone: such a pass hung an
    instance's reconcile until the test around it timed out."""
    async with make_client(sim) as client:
        inventory = Inventory(client, fast_interval=0.05, slow_interval=3600)  # never polled
        first = asyncio.create_task(inventory.listed_once("instances"))
        fresh = asyncio.create_task(inventory.wait_fresh(time.monotonic(), timeout=600, kinds=["volumes"]))
        await asyncio.sleep(0.05)
        assert not first.done() and not fresh.done(), "nothing was polled: both wait"
        await inventory.close()
        for task in (first, fresh):
            with pytest.raises(InventoryClosed):
                await asyncio.wait_for(task, 1.0)
        with pytest.raises(InventoryClosed):
            await inventory.listed_once("volumes")
