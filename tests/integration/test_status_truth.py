"""Issue 14 against real processes: status says what Barrack says. A lost volume is not made again
on its own (NotFound, until barrack.ai/recreate asks), a lost firewall is (Recreated); ERROR and
unknown state words are never Ready and never crash anything."""

from __future__ import annotations

import pytest

from tests.integration.conftest import Kube, Operator, Sim, instance, ssh_key, volume, wait_for

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
