"""Issue 14 against real processes: status says what Barrack says. A lost volume is not made again
on its own (NotFound, until barrack.ai/recreate asks), a lost firewall is (Recreated); ERROR and
unknown state words are never Ready and never crash anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.conftest import (
    OPERATOR_SETTINGS,
    SSH_PUBLIC_KEY,
    Kube,
    Operator,
    Sim,
    barrack_named,
    instance,
    running_operator,
    ssh_key,
    volume,
    wait_for,
)

pytestmark = pytest.mark.integration


def _created(sim: Sim, name: str) -> list[str]:
    return [c["id"] for c in sim.admin("created") if c["name"] == name]


def _warnings(kube: Kube, name: str, reason: str) -> list[dict[str, object]]:
    return [e for e in kube.events(name) if e["type"] == "Warning" and e["reason"] == reason]


def test_lost_volumes_wait_for_recreate_and_lost_firewalls_are_recreated(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    kube.apply(volume("data"))
    kube.apply(
        {
            "apiVersion": "barrack.ai/v1alpha1",
            "kind": "BarrackFirewall",
            "metadata": {"name": "web"},
            "spec": {"region": "US-1"},
        }
    )
    kube.wait_condition("bvol", "data", "Ready", "True")
    kube.wait_condition("bfw", "web", "Ready", "True")
    volume_id = kube.get("bvol", "data")["status"]["id"]  # type: ignore[index]
    firewall_id = kube.get("bfw", "web")["status"]["id"]  # type: ignore[index]

    sim.call("DELETE", f"/volumes/{volume_id}/")  # behind the operator's back
    sim.call("DELETE", f"/firewalls/{firewall_id}/")
    lost = kube.wait_condition("bvol", "data", "Ready", "False", reason="NotFound", timeout=60)
    assert volume_id in lost["message"] and 'barrack.ai/recreate="true"' in lost["message"]
    wait_for(lambda: _warnings(kube, "data", "NotFound"), 30, what="a NotFound warning")
    wait_for(lambda: kube.get("bfw", "web")["status"]["id"] != firewall_id, 60, what="a new firewall")  # type: ignore[index]
    kube.wait_condition("bfw", "web", "Ready", "True")
    wait_for(lambda: _warnings(kube, "web", "Recreated"), 30, what="a Recreated warning")
    assert len(_created(sim, "data")) == 1, "a lost volume was made again without being asked"

    kube.run("annotate", "bvol", "data", "barrack.ai/recreate=true")
    wait_for(lambda: len(_created(sim, "data")) == 2, 60, what="the asked-for new volume")
    kube.wait_condition("bvol", "data", "Ready", "True")
    obj = kube.get("bvol", "data") or {}
    assert obj["status"]["id"] not in (None, volume_id)
    wait_for(
        lambda: (
            "barrack.ai/recreate"
            not in ((kube.get("bvol", "data") or {})["metadata"].get("annotations") or {})
        ),
        30,
        what="the recreate annotation to be removed",
    )
    wait_for(lambda: _warnings(kube, "data", "Recreated"), 30, what="a Recreated warning on the volume")

    # A lost resource's object with deletionPolicy Delete goes away without a delete call.
    sim.call("DELETE", f"/volumes/{obj['status']['id']}/")
    kube.wait_condition("bvol", "data", "Ready", "False", reason="NotFound", timeout=60)
    deletes = sim.calls().get("delete_volume 200", 0)
    kube.run("delete", "bvol", "data", "--timeout=60s")
    assert sim.calls().get("delete_volume 200", 0) == deletes
    assert not any(k.startswith("delete_volume 404") for k in sim.calls())


def test_error_and_unknown_states_are_never_ready(kube: Kube, sim: Sim, operator: Operator) -> None:
    kube.apply(ssh_key())
    kube.apply(instance("web-1", sim.image()))
    kube.wait_condition("binst", "web-1", "Ready", "True")
    instance_id = kube.get("binst", "web-1")["status"]["id"]  # type: ignore[index]

    sim.admin("state", {"id": instance_id, "status": "ERROR"})
    broken = kube.wait_condition("binst", "web-1", "Ready", "False", reason="Error", timeout=60)
    assert instance_id in broken["message"]
    sim.admin("state", {"id": instance_id, "status": "SUSPENDED"})
    unknown = kube.wait_condition("binst", "web-1", "Ready", "False", reason="UnknownState", timeout=60)
    assert "SUSPENDED" in unknown["message"]
    assert kube.get("binst", "web-1")["status"]["state"] == "SUSPENDED"  # type: ignore[index]
    sim.admin("state", {"id": instance_id, "status": "ACTIVE"})
    kube.wait_condition("binst", "web-1", "Ready", "True", timeout=60)
    assert operator.process is not None and operator.process.poll() is None
    assert "Traceback" not in operator.log()


def test_adoption_reads_first_and_changes_nothing_unasked(kube: Kube, sim: Sim, operator: Operator) -> None:
    key = sim.call("POST", "/ssh-keys/", {"name": "theirs", "public_key": SSH_PUBLIC_KEY})["ssh_key"]
    made = sim.call(
        "POST",
        "/instances/",
        {"name": "theirs", "region": "US-1", "gpu_model": "A40", "gpu_count": 1, "image_id": sim.image(),
         "ssh_key_ids": [key["id"]], "public_ip": False,
         "security_rules": [{"direction": "ingress", "protocol": "tcp", "port_range_min": 22, "port_range_max": 22}]},
    )["instance"]  # fmt: skip
    wait_for(lambda: _barrack_instance(sim, made["id"])["status"] == "ACTIVE", 30, what="ACTIVE")
    sim.call("POST", f"/instances/{made['id']}/stop/")
    wait_for(lambda: _barrack_instance(sim, made["id"])["status"] == "SHUTOFF", 30, what="SHUTOFF")
    before = sim.calls()

    kube.apply(ssh_key())
    adopted = instance("adopted", sim.image(), adoptId=made["id"])
    kube.apply(adopted)
    kube.wait_condition("binst", "adopted", "Ready", "True", timeout=60)
    spec = (kube.get("binst", "adopted") or {})["spec"]
    assert spec["powerState"] == "Stopped"  # Barrack's values, written into the spec
    assert spec["securityRules"][0]["portRangeMin"] == 22
    assert "publicIP" not in spec  # read only from a running instance; left as it is meanwhile
    mutations = [
        k for k, n in sim.calls().items()
        if n != before.get(k, 0) and k.split()[0] in
        ("start_instance", "stop_instance", "set_public_ip", "add_security_rule", "remove_security_rule", "create_instance")
    ]  # fmt: skip
    assert mutations == [], f"adoption changed the instance: {mutations}"
    assert _barrack_instance(sim, made["id"])["public_ip"] is None

    # An adopted volume that differs in what Barrack cannot change is reported, not touched.
    theirs = sim.call("POST", "/volumes/", {"name": "their-data", "region": "CANADA-1", "size_gb": 300,
                                              "volume_type": "HDD"})["volume"]  # fmt: skip
    kube.apply(volume("claimed", adoptId=theirs["id"]))
    refused = kube.wait_condition("bvol", "claimed", "Synced", "False", reason="AdoptionMismatch", timeout=60)
    assert "region: spec US-1, Barrack CANADA-1" in refused["message"]
    assert "volumeType: spec NVMe, Barrack HDD" in refused["message"]
    assert "sizeGB: spec 100, Barrack 300" in refused["message"]
    assert not any(k.startswith(("resize_volume", "attach_volumes", "delete_volume")) for k in sim.calls())


def _barrack_instance(sim: Sim, instance_id: str) -> dict[str, object]:
    return next(i for i in sim.inventory()["instances"] if i["id"] == instance_id)


def test_one_barrack_resource_has_one_object_across_namespaces(
    kube: Kube, sim: Sim, api_key_file: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    other = Kube(kube.plane, f"{kube.namespace[:50]}-b")
    kube.plane.kubectl("create", "namespace", other.namespace)
    with running_operator(
        kube,
        sim,
        api_key_file,
        tmp_path,
        OPERATOR_SETTINGS,
        extra_namespaces=[other.namespace],
        request=request,
    ):
        kube.apply(volume("first"))
        kube.wait_condition("bvol", "first", "Ready", "True")
        volume_id = kube.get("bvol", "first")["status"]["id"]  # type: ignore[index]
        before = sim.calls()
        other.apply(volume("second", adoptId=volume_id))
        refused = other.wait_condition("bvol", "second", "Synced", "False", reason="AlreadyManaged")
        assert f"BarrackVolume {kube.namespace}/first" in refused["message"]
        # A create under a Barrack name another object's resource has is NameTaken, naming that
        # object, with spec.name as the fix (adopting it would be AlreadyManaged).
        other.apply(barrack_named(volume("third"), "first"))
        named = other.wait_condition("bvol", "third", "Synced", "False", reason="NameTaken")
        assert f"managed by BarrackVolume {kube.namespace}/first" in named["message"]
        assert "set spec.name" in named["message"] and "adoptId" not in named["message"]
        # Neither refused object called a mutating route: not one create or delete, of any answer.
        after = sim.calls()
        mutated = {
            k: after[k] - before.get(k, 0)
            for k in after
            if k.split()[0] in ("create_volume", "delete_volume")
        }
        assert not {k: n for k, n in mutated.items() if n}, mutated
        assert [c["name"] for c in sim.admin("created")] == ["first"]
