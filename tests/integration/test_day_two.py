"""Issue 15's day-two controls against real processes: pause stops every Barrack call (deletion
included) until removed; Observe mirrors a Barrack resource and never mutates or deletes it; a new
reconcile-requested-at value is handled and echoed; Reconciling and Stalled read as kstatus expects."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import (
    OPERATOR_SETTINGS,
    Kube,
    Operator,
    Sim,
    barrack_named,
    running_operator,
    volume,
    wait_for,
)
from tests.integration.scenarios import argocd_health, barrack_volume

pytestmark = pytest.mark.integration


def _mutations(sim: Sim) -> dict[str, int]:
    reads = ("list_", "get_")
    return {k: n for k, n in sim.calls().items() if not k.split()[0].startswith(reads)}


def test_pause_stops_every_call_until_removed(kube: Kube, sim: Sim, operator: Operator) -> None:
    kube.apply(volume("data"))
    kube.wait_condition("bvol", "data", "Ready", "True")
    volume_id = kube.get("bvol", "data")["status"]["id"]  # type: ignore[index]
    kube.run("annotate", "bvol", "data", "barrack.ai/paused=true")
    paused = kube.wait_condition("bvol", "data", "Synced", "False", reason="ReconcilePaused")
    assert "remove the annotation to resume" in paused["message"]
    assert argocd_health(kube.get("bvol", "data") or {}) == "Suspended"
    before = _mutations(sim)
    kube.patch("bvol", "data", {"spec": {"sizeGB": 200}})
    kube.run("delete", "bvol", "data", "--wait=false")
    wait_for(  # the deletion's pass ran, and waits
        lambda: "The deletion waits: reconciling is paused" in operator.log(),
        30,
        what="the paused deletion's pass",
    )
    assert _mutations(sim) == before, "a paused object made a Barrack call"
    assert kube.get("bvol", "data") is not None and barrack_volume(sim, volume_id) is not None
    kube.run("annotate", "bvol", "data", "barrack.ai/paused-")
    wait_for(lambda: kube.get("bvol", "data") is None, 60, what="the object to go once resumed")
    assert barrack_volume(sim, volume_id) is None


def test_observe_only_mirrors_and_never_mutates_or_deletes(kube: Kube, sim: Sim, operator: Operator) -> None:
    theirs = sim.call("POST", "/volumes/", {"name": "shared-data", "region": "US-1", "size_gb": 300,
                                              "volume_type": "HDD"})["volume"]  # fmt: skip
    before = _mutations(sim)
    kube.apply(
        volume("watch", sizeGB=500, volumeType="NVMe", managementPolicy="Observe", adoptId=theirs["id"])
    )
    kube.apply(barrack_named(volume("by-name", managementPolicy="Observe"), "shared-data"))
    kube.wait_condition("bvol", "watch", "Ready", "True", timeout=60)
    kube.wait_condition("bvol", "by-name", "Ready", "True", timeout=60)
    for name in ("watch", "by-name"):
        status = kube.get("bvol", name)["status"]  # type: ignore[index]
        assert (status["id"], status["sizeGB"], status["state"]) == (theirs["id"], 300, "AVAILABLE")
    missing = barrack_named(volume("nothing-here", managementPolicy="Observe"), "no-such-volume")
    kube.apply(missing)
    absent = kube.wait_condition("bvol", "nothing-here", "Ready", "False", reason="NotFound")
    assert "Observe creates nothing" in absent["message"]
    # Observe to Manage adopts without changing anything (the spec states what Barrack has).
    exact = volume("exact", sizeGB=300, volumeType="HDD", managementPolicy="Observe", adoptId=theirs["id"])
    kube.apply({**exact, "spec": {**exact["spec"], "deletionPolicy": "Retain"}})
    kube.wait_condition("bvol", "exact", "Ready", "True", timeout=60)
    kube.patch("bvol", "exact", {"spec": {"managementPolicy": "Manage"}})
    wait_for(
        lambda: (kube.get("bvol", "exact") or {}).get("status", {}).get("observedGeneration") == 2,
        30,
        what="the switch to Manage to be handled",
    )
    kube.wait_condition("bvol", "exact", "Ready", "True")
    kube.run("delete", "bvol", "watch", "by-name", "nothing-here", "exact", "--timeout=60s")
    assert barrack_volume(sim, theirs["id"]) is not None
    assert _mutations(sim) == before, "an Observe object called a mutating route"


def test_reconcile_now_is_echoed_and_stalled_reads_as_failed(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    kube.apply(volume("data"))
    kube.wait_condition("bvol", "data", "Ready", "True")
    kube.wait_condition("bvol", "data", "Reconciling", "False")
    kube.wait_condition("bvol", "data", "Stalled", "False")
    kube.run("annotate", "bvol", "data", "barrack.ai/reconcile-requested-at=2026-12-02T10:00:00Z")
    wait_for(
        lambda: (
            (kube.get("bvol", "data") or {}).get("status", {}).get("lastHandledReconcileAt")
            == "2026-12-02T10:00:00Z"
        ),
        15,
        what="lastHandledReconcileAt to echo the request",
    )
    assert argocd_health(kube.get("bvol", "data") or {}) == "Healthy"
    kube.apply(volume("elsewhere", instanceId="BRK-999999D"))  # waits for an instance that may come
    kube.wait_condition("bvol", "elsewhere", "Reconciling", "True")
    assert argocd_health(kube.get("bvol", "elsewhere") or {}) == "Progressing"
    kube.apply(volume("ssd", volumeType="SSD", sizeGB=100))
    kube.wait_condition("bvol", "ssd", "Ready", "True")
    kube.patch("bvol", "ssd", {"spec": {"sizeGB": 200}})  # SSD cannot grow: InvalidSpec
    stalled = kube.wait_condition("bvol", "ssd", "Stalled", "True", reason="InvalidSpec")
    assert "only NVMe and HDD grow" in stalled["message"]
    assert kube.condition("bvol", "ssd", "Reconciling")["status"] == "False"  # type: ignore[index]
    assert argocd_health(kube.get("bvol", "ssd") or {}) == "Degraded"


def test_a_paused_object_is_not_ready_over_a_spec_it_has_not_applied(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    kube.apply(volume("data"))
    kube.wait_condition("bvol", "data", "Ready", "True")
    volume_id = kube.get("bvol", "data")["status"]["id"]  # type: ignore[index]
    kube.run("annotate", "bvol", "data", "barrack.ai/paused=true")
    kube.wait_condition("bvol", "data", "Synced", "False", reason="ReconcilePaused")
    assert kube.condition("bvol", "data", "Ready")["status"] == "True"  # type: ignore[index]  # nothing asked
    before = _mutations(sim)
    kube.patch("bvol", "data", {"spec": {"sizeGB": 200}})
    waiting = kube.wait_condition("bvol", "data", "Ready", "False", reason="ReconcilePaused")
    assert "not applied" in waiting["message"] and "200" in waiting["message"], waiting["message"]
    obj = kube.get("bvol", "data") or {}
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
    assert obj["status"]["sizeGB"] == 100  # what Barrack has, not what the spec asks
    assert kube.condition("bvol", "data", "Stalled")["status"] == "False"  # type: ignore[index]
    assert _mutations(sim) == before, "a paused object made a Barrack call"
    assert barrack_volume(sim, volume_id)["size_gb"] == 100  # type: ignore[index]
    kube.run("annotate", "bvol", "data", "barrack.ai/paused-")
    kube.wait_condition("bvol", "data", "Ready", "True", timeout=60)
    assert barrack_volume(sim, volume_id)["size_gb"] == 200  # type: ignore[index]


def test_reconcile_now_reads_barrack_afresh(
    kube: Kube, sim: Sim, api_key_file: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """A rule removed on Barrack behind the operator's back comes back within seconds of the
    annotation, long before the next listing of a steady kind (the idle interval is 60 s here)."""
    settings = {**OPERATOR_SETTINGS, "IDLE_POLL_INTERVAL": "60", "DRIFT_INTERVAL": "60"}
    rule = {"direction": "ingress", "protocol": "tcp", "portRangeMin": 22, "portRangeMax": 22}
    with running_operator(kube, sim, api_key_file, tmp_path, settings, request=request):
        kube.apply({"apiVersion": "barrack.ai/v1alpha1", "kind": "BarrackFirewall", "metadata": {"name": "web"},
                    "spec": {"region": "US-1", "rules": [rule]}})  # fmt: skip
        kube.wait_condition("bfw", "web", "Ready", "True")
        firewall_id = kube.get("bfw", "web")["status"]["id"]  # type: ignore[index]
        time.sleep(3)  # past the create's own looks: the firewall is steady, as any Ready one

        def rules() -> list[dict[str, Any]]:
            return next(f for f in sim.inventory()["firewalls"] if f["id"] == firewall_id)["rules"]  # type: ignore[no-any-return]

        sim.call("DELETE", f"/firewalls/{firewall_id}/rules/{rules()[0]['id']}/")
        assert rules() == []
        kube.run("annotate", "bfw", "web", "barrack.ai/reconcile-requested-at=2026-12-07T10:00:00Z")
        wait_for(lambda: [r["port_range_min"] for r in rules()] == [22], 15, what="the rule back on Barrack")
        wait_for(
            lambda: (
                (kube.get("bfw", "web") or {}).get("status", {}).get("lastHandledReconcileAt")
                == "2026-12-07T10:00:00Z"
            ),
            15,
            what="lastHandledReconcileAt to echo the request",
        )
