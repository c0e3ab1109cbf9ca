"""The simulator's money (contract section 6), in process: the published prices, billing per
minute by state, the balance drained on the clock, depletion hibernating every instance, 402s
while depleted, and a top-up."""

from __future__ import annotations

import pytest

from barrack_operator.barrack import models as m
from barrack_operator.barrack import requests as rq
from barrack_sim import money
from barrack_sim.account import Account, SimConfig
from barrack_sim.errors import NoCredits

IS = m.InstanceState
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGludGVncmF0aW9uLWtleQ== ops@example"


def _account(balance: float = 1000.0) -> Account:
    return Account(SimConfig(transition_seconds=1.0, balance=balance))


def _instance(a: Account, model: str = "A40", count: int = 2) -> m.VMInstance:
    key = a.create_ssh_key(rq.CreateSSHKeyRequest(name="k", public_key=KEY))
    image = next(i for i in a.images.values() if i.region == "US-1")
    instance = a.create_instance(
        rq.DeploymentRequest(name="gpu", region="US-1", gpu_model=model, gpu_count=count, image_id=image.id,
                            ssh_key_ids=[key.id])
    )  # fmt: skip
    a.clock.advance(2)
    a.tick()
    return instance


def test_the_price_list() -> None:
    quote = money.quote(rq.PricingRequest(resource_type="instance", gpu_model="A40", gpu_count=2))
    assert quote == pytest.approx(1.20)
    nvme = rq.PricingRequest(resource_type="volume", volume_size_gb=500, volume_type="NVMe", currency="EUR")
    assert money.quote(nvme) == pytest.approx(0.05 * 0.92)


def test_billing_follows_the_power_state_per_minute() -> None:
    a = _account()
    instance = _instance(a)
    before = a.config.balance
    a.clock.advance(3600)
    a.tick()
    assert before - a.config.balance == pytest.approx(1.20, rel=0.01)  # an hour of A40 x2, ACTIVE
    a.instance_action(instance.id, "hibernate")
    a.clock.advance(1)
    a.tick()
    assert instance.status == IS.HIBERNATED
    before = a.config.balance
    a.clock.advance(3600)
    a.tick()
    assert before - a.config.balance == pytest.approx(0.01, rel=0.01)  # the flat hibernated rate
    records, summary = a.billing(instance.id, "instance_id")
    assert [r["status"] for r in records] == ["completed", "hibernated"]
    assert summary["totalCost"] == pytest.approx(1.21, rel=0.01) and summary["activeCount"] == 1


def test_depletion_hibernates_every_instance_and_a_top_up_allows_restore() -> None:
    a = _account(balance=1.5)  # an hour and a quarter of A40 x2
    instance = _instance(a)
    public_ip = a.instance(instance.id).public_ip
    a.clock.advance(2 * 3600)
    a.tick()
    a.clock.advance(2)
    a.tick()
    assert a.config.balance == 0 and a.depleted and instance.status == IS.HIBERNATED
    with pytest.raises(NoCredits):
        a.instance_action(instance.id, "restore")
    a.top_up(50)
    a.instance_action(instance.id, "restore")
    a.clock.advance(2)
    a.tick()
    assert instance.status == IS.ACTIVE and instance.public_ip not in (None, public_ip)


def test_requests_within_a_second_bill_every_resource_once() -> None:
    # Billing every resource on every request cost the simulator 30 ms a request at 10,000
    # resources; the time is billed all the same, a second at a time at most.
    a = _account()
    _instance(a)
    before = a.config.balance
    for _ in range(10):
        a.clock.advance(0.05)
        a.tick()
    assert a.config.balance == before  # half a second: not billed yet
    a.clock.advance(0.5)
    a.tick()
    assert before - a.config.balance == pytest.approx(1.20 / 3600, rel=0.01)  # the whole second
