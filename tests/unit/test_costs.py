"""The price book against the simulator's published prices: what instances, volumes and snapshots
cost per hour in their state now, and the burn over all of them (an account's burnPerHour)."""

from __future__ import annotations

import pytest

from barrack_operator.barrack import BarrackClient
from barrack_operator.barrack import requests as rq
from barrack_operator.costs import PriceBook
from barrack_sim import money
from barrack_sim.app import Simulator
from tests.unit.test_client import _instance


async def test_snapshots_cost_per_100_gb_once_made_and_count_in_the_burn(
    client: BarrackClient, sim: Simulator
) -> None:
    instance = await client.get_instance((await _instance(client, sim)).id)
    volume = await client.create_volume(
        rq.CreateVolumeRequest(name="data", region="US-1", size_gb=500, volume_type="NVMe")
    )
    snapshot = await client.create_snapshot(rq.CreateSnapshotRequest(name="s", instance_id=instance.id))
    book = PriceBook(client)
    assert await book.hourly(snapshot) == 0.0  # CREATING: not billed yet
    sim.account.clock.advance(10)
    snapshot = await client.get_snapshot(snapshot.id)
    volume = await client.get_volume(volume.id)
    per_snapshot = money.snapshot_hourly_of(snapshot.size_gb, "USD")
    assert snapshot.size_gb > 0 and await book.hourly(snapshot) == pytest.approx(per_snapshot)
    burn = await book.burn([instance], [volume], snapshots=[snapshot])
    expected = money.GPU_HOURLY_USD["A40"] + money.VOLUME_TB_HOURLY_USD["NVMe"] * 0.5 + per_snapshot
    assert burn == pytest.approx(expected)
