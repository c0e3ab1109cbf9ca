"""Lifetimes, end to end, on the operator's clock (one minute each, run side by side): Delete
deletes the object and its instance (the volume it held is detached, kept as its own object
says), Stop stops it without touching its spec, an instance whose lifetime ended before it could
be made is never made, and the annotation extends a lifetime once per value."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from barrack_testkit.stack import wait_for
from tests.integration.conftest import Kube, Operator, Sim, instance, ssh_key, volume

pytestmark = pytest.mark.integration


def barrack_instance(sim: Sim, name: str) -> dict | None:  # type: ignore[type-arg]
    return next((i for i in sim.inventory()["instances"] if i["name"] == name), None)


def test_a_lifetime_ends_as_its_action_says(kube: Kube, sim: Sim, operator: Operator) -> None:
    sim.admin("stock", {"stock": [{"region": "CANADA-1", "gpu_model": "A40", "available": 0}]})
    kube.apply(ssh_key())
    kube.apply(instance("short", sim.image(), lifetime={"duration": "1m", "action": "Delete"}))
    kube.apply(instance("stopper", sim.image(), lifetime={"duration": "1m", "action": "Stop"}))
    kube.apply(
        instance(
            "late", sim.image("CANADA-1"), region="CANADA-1", lifetime={"duration": "1m", "action": "Stop"}
        )
    )
    kube.apply(volume("data", instanceRef={"name": "short"}))
    kube.wait_condition("binst", "short", "Ready", "True", timeout=90)
    kube.wait_condition("bvol", "data", "Attached", "True", timeout=60)
    status = kube.get("binst", "short")["status"]  # type: ignore[index]
    created = datetime.fromisoformat(
        kube.get("binst", "short")["metadata"]["creationTimestamp"].replace("Z", "+00:00")
    )  # type: ignore[index]
    assert status["expiresAt"] == (created + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert any(e["reason"] == "LifetimeEnding" and e["type"] == "Warning" for e in kube.events("short"))

    wait_for(
        lambda: kube.get("binst", "short") is None, 150, what="the object deleted at the end of its lifetime"
    )
    assert barrack_instance(sim, "short") is None, "its instance went with it (deletionPolicy Delete)"
    kube.wait_condition("bvol", "data", "Attached", "False", timeout=60)
    assert next(v for v in sim.inventory()["volumes"] if v["name"] == "data")["status"] == "AVAILABLE"

    wait_for(lambda: (barrack_instance(sim, "stopper") or {}).get("status") == "SHUTOFF", 60, what="stopped")
    assert kube.get("binst", "stopper")["spec"]["powerState"] == "Running", "the spec is not written"  # type: ignore[index]
    kube.wait_condition("binst", "stopper", "Ready", "True", timeout=60)
    assert kube.get("binst", "stopper")["status"]["lifetime"]["expired"] is True  # type: ignore[index]

    ended = kube.wait_condition("binst", "late", "Synced", "False", reason="LifetimeEnded", timeout=60)
    assert "before the instance was made" in ended["message"]
    sim.admin("stock", {"stock": [{"region": "CANADA-1", "gpu_model": "A40", "available": 4}]})
    kube.wait_condition("binst", "late", "Synced", "False", reason="LifetimeEnded", timeout=10)
    assert barrack_instance(sim, "late") is None, "an ended lifetime never makes the instance"


def test_the_annotation_extends_a_lifetime_once_per_value(kube: Kube, sim: Sim, operator: Operator) -> None:
    kube.apply(ssh_key())
    kube.apply(instance("long", sim.image(), lifetime={"duration": "8h"}))
    kube.wait_condition("binst", "long", "Ready", "True", timeout=90)

    def expires() -> str:
        return str(((kube.get("binst", "long") or {}).get("status") or {}).get("expiresAt"))

    first = datetime.fromisoformat(expires().replace("Z", "+00:00"))
    kube.run("annotate", "binst", "long", "barrack.ai/extend-lifetime=2h")
    wait_for(lambda: expires() == (first + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"), 30, what="+2h")
    kube.run(
        "annotate", "--overwrite", "binst", "long", "reconcile=again"
    )  # another event: no second extension
    kube.run("annotate", "--overwrite", "binst", "long", "barrack.ai/reconcile-requested-at=now-1")
    kube.wait_condition("binst", "long", "Ready", "True", timeout=30)
    wait_for(lambda: (kube.get("binst", "long") or {})["status"].get("lastHandledReconcileAt") == "now-1", 30,
             what="a pass after the annotation")  # fmt: skip
    assert expires() == (first + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    kube.run("annotate", "--overwrite", "binst", "long", "barrack.ai/extend-lifetime=30m")
    wait_for(lambda: expires() == (first + timedelta(hours=2, minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"), 30,
             what="+30m more")  # fmt: skip
    assert kube.get("binst", "long")["status"]["lifetime"]["extendedBy"] == "2h30m"  # type: ignore[index]
