"""The simulator enforces Barrack's rules, and random operation sequences never break an invariant."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from barrack_operator.barrack import models as m
from barrack_operator.barrack import requests as rq
from barrack_sim.account import Account, SimConfig
from barrack_sim.errors import Conflict, Invalid, NoCredits, SimError
from tests.unit.conftest import SSH_PUBLIC_KEY

VS, IS = m.VolumeState, m.InstanceState


def _account(**config: object) -> Account:
    return Account(SimConfig(transition_seconds=1.0, **config))  # type: ignore[arg-type]


def _settle(account: Account) -> None:
    account.clock.advance(5)
    account.tick()


def _instance(account: Account, name: str = "web", region: str = "US-1") -> m.VMInstance:
    key = account.create_ssh_key(rq.CreateSSHKeyRequest(name=f"{name}-key", public_key=SSH_PUBLIC_KEY))
    image = next(i for i in account.images.values() if i.region == region)
    instance = account.create_instance(
        rq.DeploymentRequest(
            name=name, region=region, gpu_model="A40", gpu_count=1, image_id=image.id, ssh_key_ids=[key.id]
        )
    )
    _settle(account)
    return instance


def _volume(account: Account, name: str = "data", region: str = "US-1", **kw: object) -> m.Volume:
    volume = account.create_volume(
        rq.CreateVolumeRequest(name=name, region=region, size_gb=100, volume_type="NVMe", **kw)
    )  # type: ignore[arg-type]
    _settle(account)
    return volume


def test_transitions_take_their_configured_time() -> None:
    account = _account(transition_overrides={"create_volume": 10.0})
    volume = account.create_volume(
        rq.CreateVolumeRequest(name="v", region="US-1", size_gb=100, volume_type="NVMe")
    )
    account.clock.advance(9)
    account.tick()
    assert volume.status == VS.CREATING
    account.clock.advance(2)
    account.tick()
    assert volume.status == VS.AVAILABLE


def test_attach_needs_same_region_and_an_attachable_instance() -> None:
    account = _account()
    instance = _instance(account)
    other_region = _volume(account, "far", region="CANADA-1")
    with pytest.raises(Invalid, match="own region"):
        account.attach_volumes(instance.id, [other_region.id])
    volume = _volume(account)
    account.instance_action(instance.id, "hibernate")
    _settle(account)
    with pytest.raises(Conflict, match="HIBERNATED"):
        account.attach_volumes(instance.id, [volume.id])
    account.instance_action(instance.id, "restore")
    _settle(account)
    account.attach_volumes(instance.id, [volume.id])
    _settle(account)
    assert volume.status == VS.ATTACHED and volume.instance_id == instance.id


def test_detach_needs_shutoff_with_the_documented_message() -> None:
    account = _account()
    instance = _instance(account)
    volume = _volume(account)
    account.attach_volumes(instance.id, [volume.id])
    _settle(account)
    with pytest.raises(Conflict) as refused:
        account.detach_volumes(instance.id, [volume.id])
    assert refused.value.message.startswith("Cannot detach: Volume is attached to a ACTIVE instance.")
    assert "must be in SHUTOFF state" in refused.value.message
    account.instance_action(instance.id, "stop")
    _settle(account)
    account.detach_volumes(instance.id, [volume.id])
    _settle(account)
    assert volume.instance_id is None and volume.status == VS.AVAILABLE


def test_older_detach_rule_refuses_shutoff() -> None:
    account = _account(detach_rule="active")
    instance = _instance(account)
    volume = _volume(account)
    account.attach_volumes(instance.id, [volume.id])
    _settle(account)
    account.instance_action(instance.id, "stop")
    _settle(account)
    with pytest.raises(Conflict, match="must be ACTIVE"):
        account.detach_volumes(instance.id, [volume.id])


def test_boot_volume_never_detaches_and_attached_volume_never_deletes() -> None:
    account = _account()
    image = next(i for i in account.images.values() if i.region == "US-1")
    boot = _volume(account, "boot", bootable=True, image_id=image.id)
    key = account.create_ssh_key(rq.CreateSSHKeyRequest(name="k", public_key=SSH_PUBLIC_KEY))
    instance = account.create_instance(
        rq.DeploymentRequest(
            name="vm",
            region="US-1",
            gpu_model="A40",
            gpu_count=1,
            boot_volume_id=boot.id,
            ssh_key_ids=[key.id],
        )
    )
    _settle(account)
    account.instance_action(instance.id, "stop")
    _settle(account)
    with pytest.raises(Invalid, match="permanently attached"):
        account.detach_volumes(instance.id, [boot.id])
    with pytest.raises(Conflict, match="detached"):
        account.delete_volume(boot.id)


def test_resize_and_clone_are_advanced_tier_and_grow_only() -> None:
    account = _account()
    legacy = account.create_volume(
        rq.CreateVolumeRequest(name="ssd", region="US-1", size_gb=100, volume_type="SSD")
    )
    _settle(account)
    with pytest.raises(Invalid, match="advanced"):
        account.resize_volume(legacy.id, 200)
    with pytest.raises(Invalid, match="advanced"):
        account.clone_volume(legacy.id, "ssd-copy")
    volume = _volume(account)
    with pytest.raises(Invalid, match="only grow"):
        account.resize_volume(volume.id, 100)


def test_names_limits_and_credits() -> None:
    account = _account()
    with pytest.raises(Invalid, match="name"):
        account.create_volume(
            rq.CreateVolumeRequest(name="bad/name", region="US-1", size_gb=100, volume_type="NVMe")
        )
    _volume(account, "dup")
    with pytest.raises(Invalid, match="already exists"):
        _volume(account, "dup")
    for n in range(25):
        account.create_firewall(rq.CreateFirewallRequest(name=f"fw{n}", region="US-1"))
        account.create_ssh_key(rq.CreateSSHKeyRequest(name=f"k{n}", public_key=SSH_PUBLIC_KEY))
    with pytest.raises(Conflict, match="at most 25"):
        account.create_firewall(rq.CreateFirewallRequest(name="fw25", region="US-1"))
    with pytest.raises(Conflict, match="at most 25"):
        account.create_ssh_key(rq.CreateSSHKeyRequest(name="k25", public_key=SSH_PUBLIC_KEY))
    account.config.balance = 0.0
    with pytest.raises(NoCredits):
        _volume(account, "poor")


def test_firewall_attaches_to_active_instances_and_deletes_only_detached() -> None:
    account = _account()
    instance = _instance(account)
    firewall = account.create_firewall(rq.CreateFirewallRequest(name="fw", region="US-1"))
    _settle(account)
    account.instance_action(instance.id, "stop")
    _settle(account)
    with pytest.raises(Conflict, match="ACTIVE"):
        account.attach_firewall(firewall.id, [instance.id])
    account.instance_action(instance.id, "start")
    _settle(account)
    account.attach_firewall(firewall.id, [instance.id])
    with pytest.raises(Conflict, match="attached"):
        account.delete_firewall(firewall.id)
    account.attach_firewall(firewall.id, [])
    account.delete_firewall(firewall.id)


# Property: random operations never break an invariant ------------------------------------------------

OPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "attach",
                "detach",
                "delete_volume",
                "stop",
                "start",
                "hibernate",
                "restore",
                "advance",
                "delete_instance",
            ]
        ),
        st.integers(0, 3),
        st.integers(0, 1),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_random_operations_keep_the_invariants(ops: list[tuple[str, int, int]]) -> None:
    account = _account()
    image = next(i for i in account.images.values() if i.region == "US-1")
    boot = _volume(account, "boot", bootable=True, image_id=image.id)
    key = account.create_ssh_key(rq.CreateSSHKeyRequest(name="k", public_key=SSH_PUBLIC_KEY))
    instances = [
        account.create_instance(
            rq.DeploymentRequest(
                name="vm0",
                region="US-1",
                gpu_model="A40",
                gpu_count=1,
                boot_volume_id=boot.id,
                ssh_key_ids=[key.id],
            )
        ),
        _instance(account, "vm1"),
    ]
    volumes = [boot, *(_volume(account, f"v{n}") for n in range(3))]
    ever_boot_detached = False
    for op, v, i in ops:
        volume, instance = volumes[v], instances[i]
        try:
            if op == "attach":
                account.attach_volumes(instance.id, [volume.id])
            elif op == "detach":
                account.detach_volumes(instance.id, [volume.id])
                ever_boot_detached |= volume.bootable
            elif op == "delete_volume":
                attached_before = volume.instance_id is not None
                account.delete_volume(volume.id)
                assert not attached_before, "deleted an attached volume"
            elif op == "delete_instance":
                account.delete_instance(instance.id)
            elif op == "advance":
                account.clock.advance(0.7)
                account.tick()
            else:
                account.instance_action(instance.id, op)
        except SimError:
            pass
        account.tick()
        holders: dict[str, list[str]] = {}
        for inst in account.instances.values():
            assert inst.status in {s.value for s in IS}
            for vid in inst.volume_ids:
                holders.setdefault(vid, []).append(inst.id)
        for vol in account.volumes.values():
            assert vol.status in {s.value for s in VS}
            assert len(holders.get(vol.id, [])) <= 1, "a volume attached to two instances"
            if vol.instance_id is not None and vol.instance_id in account.instances:
                assert vol.id in account.instances[vol.instance_id].volume_ids
    assert not ever_boot_detached
