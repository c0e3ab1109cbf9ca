"""The simulator's snapshot and custom-image rules (contract section 5), in process: snapshots of
ACTIVE instances only and one at a time per instance, restores into a new instance in the
snapshot's region, no deletion during a restore, images from SUCCESS snapshots only, deployable
in their region, independent of their snapshot once made; durations configurable."""

from __future__ import annotations

import pytest

from barrack_operator.barrack import models as m
from barrack_operator.barrack import requests as rq
from barrack_sim.account import Account, SimConfig
from barrack_sim.errors import Conflict, Invalid

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGludGVncmF0aW9uLWtleQ== ops@example"


@pytest.fixture
def account() -> Account:
    return Account(
        SimConfig(transition_seconds=1.0, transition_overrides={"create_snapshot": 30, "create_image": 20})
    )


def _settle(a: Account, seconds: float = 60) -> None:
    a.clock.advance(seconds)
    a.tick()


def _instance(a: Account) -> tuple[m.VMInstance, str]:
    key = a.create_ssh_key(rq.CreateSSHKeyRequest(name="k", public_key=KEY))
    image = next(i for i in a.images.values() if i.region == "NORWAY-1")
    instance = a.create_instance(rq.DeploymentRequest(
        name="gpu", region="NORWAY-1", gpu_model="A40", gpu_count=2, image_id=image.id, ssh_key_ids=[key.id]
    ))  # fmt: skip
    _settle(a, 2)
    return instance, key.id


def test_snapshot_rules(account: Account) -> None:
    instance, _ = _instance(account)
    account.instance_action(instance.id, "stop")
    _settle(account, 2)
    with pytest.raises(Conflict, match="needs an ACTIVE instance"):
        account.create_snapshot(rq.CreateSnapshotRequest(name="s1", instance_id=instance.id))
    account.instance_action(instance.id, "start")
    _settle(account, 2)
    first = account.create_snapshot(rq.CreateSnapshotRequest(name="s1", instance_id=instance.id))
    with pytest.raises(Conflict, match="one snapshot at a time"):
        account.create_snapshot(rq.CreateSnapshotRequest(name="s2", instance_id=instance.id))
    with pytest.raises(Invalid, match="already exists"):
        account.create_snapshot(rq.CreateSnapshotRequest(name="s1", instance_id=instance.id))
    _settle(account, 29)
    assert first.status == "CREATING"  # the configured 30 s
    _settle(account, 2)
    assert first.status == "SUCCESS" and first.region == "NORWAY-1" and first.size_gb == 100
    assert instance.status == "ACTIVE"  # the instance keeps running


def test_restore_makes_a_new_instance_and_holds_the_snapshot(account: Account) -> None:
    instance, key = _instance(account)
    snapshot = account.create_snapshot(rq.CreateSnapshotRequest(name="nightly", instance_id=instance.id))
    with pytest.raises(Conflict, match="a restore needs SUCCESS"):
        account.restore_snapshot(snapshot.id, rq.RestoreSnapshotRequest(ssh_key_ids=[key]))
    _settle(account)
    restored = account.restore_snapshot(snapshot.id, rq.RestoreSnapshotRequest(ssh_key_ids=[key]))
    assert restored.id != instance.id and restored.name == "nightly-restored"
    assert restored.region == "NORWAY-1" and (restored.gpu_model, restored.gpu_count) == ("A40", 2)
    with pytest.raises(Conflict, match="being restored"):
        account.delete_snapshot(snapshot.id)
    _settle(account, 2)
    assert restored.status == "ACTIVE" and restored.public_ip not in (None, instance.public_ip)
    account.delete_snapshot(snapshot.id)
    _settle(account, 2)
    assert snapshot.id not in account.snapshots


def test_images_come_from_success_snapshots_and_outlive_them(account: Account) -> None:
    instance, key = _instance(account)
    snapshot = account.create_snapshot(rq.CreateSnapshotRequest(name="base", instance_id=instance.id))
    with pytest.raises(Conflict, match="needs a SUCCESS snapshot"):
        account.create_image(snapshot.id, "golden")
    _settle(account)
    image = account.create_image(snapshot.id, "golden")
    _settle(account)
    assert image.status == "AVAILABLE" and image.region == "NORWAY-1"
    account.delete_snapshot(snapshot.id)
    _settle(account, 2)
    assert account.custom_image(image.id).status == "AVAILABLE"  # the image does not need its snapshot
    with pytest.raises(Invalid, match="deploys in its region"):
        account.create_instance(rq.DeploymentRequest(
            name="elsewhere", region="US-1", gpu_model="A40", gpu_count=1, custom_image_id=image.id, ssh_key_ids=[key]
        ))  # fmt: skip
    deployed = account.create_instance(rq.DeploymentRequest(
        name="from-image", region="NORWAY-1", gpu_model="A40", gpu_count=1, custom_image_id=image.id, ssh_key_ids=[key]
    ))  # fmt: skip
    _settle(account, 2)
    assert deployed.status == "ACTIVE"


def test_snapshots_are_billed_per_100_gb_once_made(account: Account) -> None:
    instance, _ = _instance(account)
    snapshot = account.create_snapshot(rq.CreateSnapshotRequest(name="billed", instance_id=instance.id))
    _settle(account)
    _settle(account, 3600)
    _, summary = account.billing(snapshot.id, "snapshot_id")
    assert summary["totalCost"] == pytest.approx(0.005, rel=0.05)  # 100 GB for an hour
