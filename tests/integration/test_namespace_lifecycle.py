"""Kubernetes' own deletions, with the test cluster's garbage collector and namespace controller
(issue 20, item 3): a namespace deleted with every kind in it goes, and Barrack is left holding
exactly what each object's deletionPolicy says; a connection Secret goes with its instance; a
schedule's snapshots outlive it, and those an earlier release owned by the schedule are freed."""

from __future__ import annotations

from typing import Any

import pytest

from barrack_operator.resources.schedule import SCHEDULE_LABEL
from tests.integration.conftest import Kube, Operator, Sim, instance, ssh_key, volume, wait_for
from tests.integration.test_backups import image, schedule, snapshot

pytestmark = pytest.mark.integration


def _id(kube: Kube, kind: str, name: str) -> str:
    return str(((kube.get(kind, name) or {}).get("status") or {})["id"])


def _children(kube: Kube, schedule_name: str) -> list[str]:
    selector = f"{SCHEDULE_LABEL}={schedule_name}"
    return kube.run("get", "bsnap", "-l", selector, "-o", "name").stdout.split()


def _every_kind(kube: Kube, sim: Sim) -> dict[str, str]:
    """An instance booted from a boot volume, with a data volume attached (Retain), a firewall, an
    SSH key, a snapshot, an image of it, a schedule and its first snapshot, and the instance's
    connection Secret, all Ready; their Barrack ids by object."""
    kube.apply(ssh_key())
    kube.apply(volume("boot", bootable=True, imageId=sim.image()))
    gpu = instance("gpu", "", bootVolumeRef={"name": "boot"}, writeConnectionSecretToRef={"name": "gpu-ssh"})
    del gpu["spec"]["imageId"]
    kube.apply(gpu)
    kube.apply(volume("data", instanceRef={"name": "gpu"}, deletionPolicy="Retain"))
    kube.apply({"apiVersion": "barrack.ai/v1alpha1", "kind": "BarrackFirewall", "metadata": {"name": "fw"},
                "spec": {"region": "US-1", "instanceRefs": [{"name": "gpu"}]}})  # fmt: skip
    kube.apply(snapshot("manual", instanceRef={"name": "gpu"}))
    kube.apply(image("golden", snapshotRef={"name": "manual"}))
    kube.apply(schedule("often", schedule="@every 10s", keep=1, instanceRef={"name": "gpu"}))
    objects = {
        "bkey": "ops-key",
        "bvol": "boot",
        "binst": "gpu",
        "bfw": "fw",
        "bsnap": "manual",
        "bimg": "golden",
    }
    for kind, name in objects.items():
        kube.wait_condition(kind, name, "Ready", "True", timeout=120)
    kube.wait_condition("bvol", "data", "Attached", "True", timeout=60)
    scheduled = wait_for(lambda: _children(kube, "often"), 60, what="a snapshot of the schedule")
    kube.wait_condition("bsnap", scheduled[0].split("/")[1], "Ready", "True", timeout=60)
    wait_for(lambda: kube.get("secret", "gpu-ssh"), 30, what="the connection Secret")
    return {f"{kind}/{name}": _id(kube, kind, name) for kind, name in [*objects.items(), ("bvol", "data")]}


def test_deleting_a_namespace_leaves_on_barrack_what_each_policy_says(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    ids = _every_kind(kube, sim)
    kube.plane.kubectl("delete", "namespace", kube.namespace, "--wait=false")

    def gone() -> bool:
        result = kube.plane.kubectl("get", "namespace", kube.namespace, check=False)
        return result.returncode != 0 and "NotFound" in result.stderr

    wait_for(gone, 240, what=f"namespace {kube.namespace} to go (no object stuck)")
    inventory = sim.inventory()
    left = {
        kind: [r["id"] for r in inventory[kind]]
        for kind in ("instances", "ssh_keys", "firewalls", "snapshots", "images")
    }
    assert left == {kind: [] for kind in left}, f"leaked: {left}"
    volumes = {v["id"]: v for v in inventory["volumes"]}
    assert set(volumes) == {ids["bvol/data"]}, "only the Retain volume stays"
    assert volumes[ids["bvol/data"]]["instance_id"] is None


def test_a_schedules_snapshots_outlive_it_and_earlier_owned_ones_are_freed(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    kube.apply(ssh_key())
    kube.apply(instance("gpu", sim.image()))
    kube.wait_condition("binst", "gpu", "Ready", "True", timeout=90)
    kube.apply(schedule("often", schedule="@every 10s", keep=3, instanceRef={"name": "gpu"}))
    made = wait_for(lambda: _children(kube, "often"), 60, what="a snapshot of the schedule")
    sched = kube.get("bsched", "often") or {}
    owner = {"apiVersion": "barrack.ai/v1alpha1", "kind": "BarrackSnapshotSchedule", "name": "often",
             "uid": sched["metadata"]["uid"], "controller": True, "blockOwnerDeletion": False}  # fmt: skip
    # As an earlier release made them: owned by the schedule. The first pass frees it.
    legacy = snapshot("legacy", instanceRef={"name": "gpu"})
    legacy["metadata"].update(labels={SCHEDULE_LABEL: "often"}, ownerReferences=[owner])
    kube.apply(legacy)
    # What the garbage collector does with the schedule's dependents shows on this canary.
    kube.apply(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "canary", "ownerReferences": [owner]}}
    )
    wait_for(
        lambda: not ((kube.get("bsnap", "legacy") or {}).get("metadata") or {}).get("ownerReferences"),
        60,
        what="the earlier release's snapshot to lose its ownerReference",
    )
    assert all(
        not (kube.get("bsnap", n.split("/")[1]) or {})["metadata"].get("ownerReferences") for n in made
    )
    snapshots: dict[str, Any] = {
        n: (kube.get("bsnap", n.split("/")[1]) or {}) for n in _children(kube, "often")
    }
    kube.run("delete", "bsched", "often", "--timeout=60s")
    wait_for(lambda: kube.get("configmap", "canary") is None, 60, what="the garbage collector to act")
    assert sorted(_children(kube, "often")) >= sorted(snapshots), "a snapshot went with its schedule"
    for name, body in snapshots.items():
        now = kube.get("bsnap", name.split("/")[1])
        assert now is not None and now["metadata"]["uid"] == body["metadata"]["uid"]
    # Removing them on purpose, as the README shows.
    kube.run("delete", "bsnap", "-l", f"{SCHEDULE_LABEL}=often", "--timeout=90s")
    assert _children(kube, "often") == []
