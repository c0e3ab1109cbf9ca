"""Issue 17 against real processes: snapshot an ACTIVE instance, make an image of the snapshot,
boot a new instance from the image, restore the snapshot into another; schedules with retention
over instances selected by label; a paused schedule; the operator SIGKILLed while snapshots and
images are created; snapshots' cost in status and in the account's burn."""

from __future__ import annotations

import time
from typing import Any

import pytest
import yaml

from barrack_sim import money
from tests.integration.conftest import (
    API_KEY,
    Kube,
    Operator,
    Sim,
    instance,
    ssh_key,
    wait_for,
)

pytestmark = pytest.mark.integration
CREATE_REQUESTED = "barrack.ai/create-requested"


@pytest.fixture
def sim_args() -> list[str]:
    return ["--transition", "create_snapshot=4", "--transition", "create_image=2"]


def _manifest(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "barrack.ai/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}


def snapshot(name: str, **spec: Any) -> dict[str, Any]:
    return _manifest("BarrackSnapshot", name, spec)


def image(name: str, **spec: Any) -> dict[str, Any]:
    return _manifest("BarrackImage", name, spec)


def schedule(name: str, **spec: Any) -> dict[str, Any]:
    return _manifest("BarrackSnapshotSchedule", name, spec)


def booted_from(name: str, **spec: Any) -> dict[str, Any]:
    """A BarrackInstance whose boot source is a backup (customImageRef/Id or restoreFrom)."""
    manifest = instance(name, "", **spec)
    del manifest["spec"]["imageId"]
    return manifest


def _active_source(kube: Kube, sim: Sim) -> None:
    """An SSH key and an ACTIVE instance named source to snapshot."""
    kube.apply(ssh_key())
    kube.apply(instance("source", sim.image()))
    kube.wait_condition("binst", "source", "Ready", "True", timeout=90)


def _status(kube: Kube, kind: str, name: str) -> dict[str, Any]:
    return (kube.get(kind, name) or {}).get("status") or {}


def _barrack(sim: Sim, kind: str, resource_id: str) -> dict[str, Any] | None:
    return next((r for r in sim.inventory()[kind] if r["id"] == resource_id), None)


def _arrived(sim: Sim, route: str) -> int:
    """Requests of the route that reached the simulator (counted as they arrive, answered or not)."""
    return sum(counts.get(route, 0) for _, counts in sim.admin("rate")["per_wall_second_by_route"])


def _created(sim: Sim, name: str) -> list[str]:
    return [c["id"] for c in sim.admin("created") if c["name"] == name]


def _image_and_an_instance_from_it(
    kube: Kube, sim: Sim, snapshot_id: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    kube.apply(image("golden", snapshotRef={"name": "nightly"}))
    kube.wait_condition("bimg", "golden", "Ready", "True", timeout=60)
    golden = _status(kube, "bimg", "golden")
    assert golden["state"] == "AVAILABLE" and golden["sourceSnapshotId"] == snapshot_id
    from_image = booted_from("from-image", customImageRef={"name": "golden"})
    kube.apply(from_image)
    kube.wait_condition("binst", "from-image", "Ready", "True", timeout=90)
    booted = _barrack(sim, "instances", _status(kube, "binst", "from-image")["id"])
    assert booted is not None and booted["status"] == "ACTIVE"
    return golden, booted


def _restore_into_a_new_instance(kube: Kube, sim: Sim, exclude: set[str]) -> None:
    """A restore makes a new instance, with the spec's SSH keys and security rules."""
    rule = {"direction": "ingress", "protocol": "tcp", "portRangeMin": 22, "portRangeMax": 22}
    restored = booted_from("restored", restoreFrom={"snapshotRef": {"name": "nightly"}}, securityRules=[rule])
    kube.apply(restored)
    kube.wait_condition("binst", "restored", "Ready", "True", timeout=90)
    new = _status(kube, "binst", "restored")
    assert new["id"] not in exclude
    on_barrack = _barrack(sim, "instances", new["id"])
    key_id = _status(kube, "bkey", "ops-key")["id"]
    assert on_barrack is not None and key_id in on_barrack["ssh_key_ids"]
    assert [(r["protocol"], r["port_range_min"]) for r in on_barrack["security_rules"]] == [("tcp", 22)]


def test_snapshot_image_and_restore_make_new_instances(kube: Kube, sim: Sim, operator: Operator) -> None:
    kube.apply(ssh_key())
    kube.apply(instance("source", sim.image(), powerState="Stopped"))
    kube.wait_condition("binst", "source", "Ready", "True", timeout=90)
    source_id = _status(kube, "binst", "source")["id"]

    # A snapshot of a stopped instance waits, saying what it needs; none is made meanwhile.
    kube.apply(snapshot("nightly", instanceRef={"name": "source"}, description="before the upgrade"))
    waiting = kube.wait_condition("bsnap", "nightly", "Synced", "False", reason="SnapshotBlocked")
    assert "SHUTOFF" in waiting["message"] and "ACTIVE" in waiting["message"]
    assert "powerState" in waiting["message"] and not sim.inventory()["snapshots"]
    kube.patch("binst", "source", {"spec": {"powerState": "Running"}})
    kube.wait_condition("bsnap", "nightly", "Ready", "True", timeout=60)
    snap = _status(kube, "bsnap", "nightly")
    assert snap["state"] == "SUCCESS" and snap["sourceInstanceId"] == source_id and snap["sizeGB"] > 0
    assert _barrack(sim, "snapshots", snap["id"])["status"] == "SUCCESS"  # type: ignore[index]
    # Its cost: per 100 GB per hour at Barrack's price, once made.
    hourly = money.snapshot_hourly_of(snap["sizeGB"], "USD")
    cost = wait_for(lambda: _status(kube, "bsnap", "nightly").get("cost"), 30, what="snapshot cost")
    assert cost["hourly"] == pytest.approx(hourly) and cost["currency"] == "USD"

    # A second snapshot while one is being made waits its turn (Barrack makes one at a time).
    kube.apply(snapshot("first", instanceRef={"name": "source"}))
    wait_for(lambda: _status(kube, "bsnap", "first").get("state") == "CREATING", 30, what="first CREATING")
    kube.apply(snapshot("second", instanceId=source_id))
    turn = kube.wait_condition("bsnap", "second", "Synced", "False", reason="SnapshotBlocked")
    assert "one snapshot at a time" in turn["message"]
    kube.wait_condition("bsnap", "second", "Ready", "True", timeout=60)

    golden, booted = _image_and_an_instance_from_it(kube, sim, snap["id"])
    _restore_into_a_new_instance(kube, sim, exclude={source_id, booted["id"]})

    # Deleting the snapshot leaves the image and the instances; deleting the image leaves the instance.
    kube.run("delete", "bsnap", "nightly", "--timeout=60s")
    wait_for(lambda: _barrack(sim, "snapshots", snap["id"]) is None, 30, what="the snapshot gone on Barrack")
    assert _barrack(sim, "images", golden["id"])["status"] == "AVAILABLE"  # type: ignore[index]
    kube.wait_condition("bimg", "golden", "Ready", "True")
    kube.run("delete", "bimg", "golden", "--timeout=60s")
    wait_for(lambda: _barrack(sim, "images", golden["id"]) is None, 30, what="the image gone on Barrack")
    assert _barrack(sim, "instances", booted["id"])["status"] == "ACTIVE"  # type: ignore[index]


def test_a_snapshot_under_restore_is_deleted_once_the_restore_ends(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    _active_source(kube, sim)
    kube.apply(snapshot("base", instanceRef={"name": "source"}))
    kube.wait_condition("bsnap", "base", "Ready", "True", timeout=60)
    snapshot_id = _status(kube, "bsnap", "base")["id"]
    sim.admin("config", {"transition_overrides": {"restore_snapshot": 12}})
    restored = booted_from("copy", restoreFrom={"snapshotId": snapshot_id})
    kube.apply(restored)
    wait_for(
        lambda: _status(kube, "binst", "copy").get("state") == "CREATING", 30, what="the restore under way"
    )
    kube.run("delete", "bsnap", "base", "--wait=false")
    blocked = kube.wait_condition("bsnap", "base", "Synced", "False", reason="DeletionBlocked", timeout=30)
    assert "restore" in blocked["message"]
    assert _barrack(sim, "snapshots", snapshot_id) is not None
    kube.wait_condition("binst", "copy", "Ready", "True", timeout=60)
    wait_for(lambda: kube.get("bsnap", "base") is None, 60, what="the snapshot object to go")
    wait_for(lambda: _barrack(sim, "snapshots", snapshot_id) is None, 30, what="the snapshot gone on Barrack")


def _ready_snapshots_of(sim: Sim, instance_id: str) -> list[dict[str, Any]]:
    return [
        s
        for s in sim.inventory()["snapshots"]
        if s["instance_id"] == instance_id and s["status"] == "SUCCESS"
    ]


def test_a_schedule_keeps_the_newest_per_instance_and_a_suspended_one_takes_none(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    kube.apply(ssh_key())
    for name, team in (("gpu-a", "ml"), ("gpu-b", "ml"), ("gpu-other", "web")):
        manifest = instance(name, sim.image())
        manifest["metadata"]["labels"] = {"team": team}
        kube.apply(manifest)
    for name in ("gpu-a", "gpu-b", "gpu-other"):
        kube.wait_condition("binst", name, "Ready", "True", timeout=90)
    ids = {name: _status(kube, "binst", name)["id"] for name in ("gpu-a", "gpu-b", "gpu-other")}
    kube.apply(schedule("paused", schedule="@every 10s", instanceRef={"name": "gpu-other"}, suspend=True))
    kube.apply(
        schedule("often", schedule="@every 10s", keep=2, instanceSelector={"matchLabels": {"team": "ml"}})
    )
    kube.wait_condition("bsched", "often", "Ready", "True", reason="Scheduled")
    kube.wait_condition("bsched", "paused", "Ready", "True", reason="Suspended")
    started = time.monotonic()
    most = {"gpu-a": 0, "gpu-b": 0}
    while time.monotonic() - started < 60:
        for name, seen in most.items():
            most[name] = max(seen, len(_ready_snapshots_of(sim, ids[name])))
        time.sleep(1)
    status = _status(kube, "bsched", "often")
    assert status["lastScheduleTime"] and status["nextScheduleTime"] > status["lastScheduleTime"]
    assert status["lastSuccessfulSnapshot"].startswith("often-gpu-")
    assert sorted(status["instances"]) == ["gpu-a", "gpu-b"]
    children = kube.run("get", "bsnap", "-l", "barrack.ai/schedule=often", "-o", "name").stdout.split()
    assert children and all(c.startswith("barracksnapshot.barrack.ai/often-gpu-") for c in children)
    made = [
        c for c in sim.admin("created") if c["name"].startswith("gpu-a-") or c["name"].startswith("gpu-b-")
    ]
    assert len(made) >= 6, made  # a minute at @every 10s: at least three runs per instance

    def kept() -> bool:
        return all(len(_ready_snapshots_of(sim, ids[n])) == 2 for n in ("gpu-a", "gpu-b"))

    kube.patch("bsched", "often", {"spec": {"suspend": True}})  # settle, then count
    wait_for(kept, 60, what="exactly 2 Ready snapshots per instance on Barrack")
    # Never more than keep + the one just made, before the schedule let the oldest go.
    assert max(most.values()) <= 3, most
    made_ids = {c["id"] for c in made}
    left = {s["id"] for s in sim.inventory()["snapshots"]}
    assert len(made_ids - left) >= 2  # older ones are gone from Barrack
    # The paused schedule made nothing; the instance outside the selector has no snapshot.
    assert not [s for s in sim.inventory()["snapshots"] if s["instance_id"] == ids["gpu-other"]]
    assert not kube.run("get", "bsnap", "-l", "barrack.ai/schedule=paused", "-o", "name").stdout.strip()
    assert "ScheduledRun" in {e["reason"] for e in kube.events("often")}


def _refused(kube: Kube, manifest: dict[str, Any]) -> str:
    result = kube.run("apply", "-f", "-", input_text=yaml.safe_dump(manifest), check=False)
    assert result.returncode != 0, f"the apiserver took {manifest['metadata']['name']}"
    return result.stderr


def test_an_invalid_schedule_is_refused_or_reported(kube: Kube, operator: Operator) -> None:
    assert "@every takes a duration" in _refused(
        kube, schedule("bad", schedule="@every 10 minutes", instanceRef={"name": "x"})
    )
    assert "exactly one of instanceRef and instanceSelector" in _refused(
        kube,
        schedule("both", schedule="@daily", instanceRef={"name": "x"}, instanceSelector={"matchLabels": {}}),
    )
    assert "exactly one boot source" in _refused(
        kube, instance("two-sources", "img", restoreFrom={"snapshotId": "BRK-1S"})
    )
    kube.apply(schedule("typo", schedule="0 3 * *", instanceRef={"name": "x"}))
    invalid = kube.wait_condition("bsched", "typo", "Ready", "False", reason="InvalidSpec")
    assert "spec.schedule" in invalid["message"] and "cron" in invalid["message"]
    kube.apply(schedule("zone", schedule="0 3 * * *", timeZone="Mars/Olympus", instanceRef={"name": "x"}))
    zone = kube.wait_condition("bsched", "zone", "Ready", "False", reason="InvalidSpec")
    assert "spec.timeZone" in zone["message"]
    kube.apply(schedule("nobody", schedule="@every 10s", instanceRef={"name": "missing"}))
    none = kube.wait_condition("bsched", "nobody", "Synced", "False", reason="NoInstances")
    assert "missing" in none["message"]


def test_sigkill_during_snapshot_and_image_creates_makes_no_duplicate(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    _active_source(kube, sim)
    sim.admin("faults", {"route_latency": {"create_snapshot": 2.0, "create_image": 2.0}})
    for kind, manifest, barrack_name in (
        ("bsnap", snapshot("killed-snap", instanceRef={"name": "source"}), "killed-snap"),
        ("bimg", image("killed-img", snapshotRef={"name": "killed-snap"}), "killed-img"),
    ):
        kube.apply(manifest)
        wait_for(
            lambda k=kind, n=barrack_name: (
                CREATE_REQUESTED in ((kube.get(k, n) or {}).get("metadata", {}).get("annotations") or {})
            ),
            60,
            what=f"{kind} {barrack_name}'s create in flight",
        )
        route = {"bsnap": "create_snapshot", "bimg": "create_image"}[kind]
        wait_for(lambda r=route: _arrived(sim, r), 30, what=f"{route} at Barrack (it answers after 2 s)")
        operator.kill()
        operator.start()
        kube.wait_condition(kind, barrack_name, "Ready", "True", timeout=90)
        made = _created(sim, barrack_name)
        assert len(made) == 1, f"{barrack_name} was created {len(made)} times on Barrack"
        assert _status(kube, kind, barrack_name)["id"] == made[0]
    assert API_KEY not in operator.log()
