"""Scenarios and checks shared by tests that run the operator in different ways (its own process,
under the chart's ServiceAccount, through the Kubernetes fault proxy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from barrack_testkit.chaos import Tally
from tests.integration.conftest import Kube, Sim, instance, ssh_key, volume, wait_for


def barrack_volume(sim: Sim, volume_id: str) -> dict[str, Any] | None:
    return next((v for v in sim.inventory()["volumes"] if v["id"] == volume_id), None)


def create_attach_blocked_detach_delete(kube: Kube, sim: Sim) -> None:
    """The life of a volume and its instance, as a user lives it; needs an operator running."""
    kube.apply(ssh_key())
    kube.apply(instance("web-1", sim.image(), writeConnectionSecretToRef={"name": "web-1-ssh"}))
    kube.apply(volume("data", instanceRef={"name": "web-1"}))
    # While the instance is CREATING the instance is not Ready, with the state as the reason.
    kube.wait_condition("binst", "web-1", "Ready", "False", reason="Creating")
    kube.wait_condition("bvol", "data", "Attached", "True", timeout=60)
    vol = kube.get("bvol", "data")["status"]  # type: ignore[index]
    inst_id = kube.get("binst", "web-1")["status"]["id"]  # type: ignore[index]
    assert vol["id"].startswith("BRK-") and vol["attachedInstanceId"] == inst_id
    kube.wait_condition("bvol", "data", "Ready", "True")
    # How to reach the instance, in the Secret its spec names (created and kept with create and patch).
    secret = wait_for(lambda: kube.get("secret", "web-1-ssh"), 30, what="the connection Secret")
    assert set(secret["data"]) == {"host", "privateIP", "port", "username", "ssh"}

    # Detach while ACTIVE: blocked, with a message naming the instance, its state and the fix.
    kube.patch("bvol", "data", [{"op": "remove", "path": "/spec/instanceRef"}], "json")
    blocked = kube.wait_condition("bvol", "data", "Synced", "False", reason="DetachBlocked")
    assert f"instance web-1 ({inst_id}) in SHUTOFF, it is ACTIVE" in blocked["message"]
    assert "powerState: Stopped" in blocked["message"]
    assert any(e["type"] == "Warning" and e["reason"] == "DetachBlocked" for e in kube.events("data"))
    assert barrack_volume(sim, vol["id"])["instance_id"] == inst_id  # type: ignore[index]
    assert "detach_volumes 409" not in sim.calls()  # the pre-check spared the call

    kube.patch("binst", "web-1", {"spec": {"powerState": "Stopped"}})
    kube.wait_condition("bvol", "data", "Attached", "False", timeout=60)
    kube.wait_condition("bvol", "data", "Synced", "True")
    assert barrack_volume(sim, vol["id"])["instance_id"] is None  # type: ignore[index]

    kube.run("delete", "bvol", "data", "--timeout=60s")
    assert barrack_volume(sim, vol["id"]) is None


def assert_clean(tally: Tally) -> None:
    """A chaos run found nothing wrong, and did something."""
    print(tally.figures())
    assert tally.problems == [], "\n".join(tally.problems)
    assert tally.clean and tally.rounds > 0 and tally.objects > len(["key", "host", "host"])


ARGOCD_HEALTH = (Path(__file__).resolve().parents[2] / "docs" / "argocd-health.lua").read_text()


def argocd_health(obj: dict[str, Any]) -> str:
    """What Argo CD shows for the object: docs/argocd-health.lua run by a Lua interpreter, with the
    object as the global ``obj``, as Argo CD runs a resource health customization."""
    from lupa import LuaRuntime

    lua = LuaRuntime()
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(ARGOCD_HEALTH)
    return str(result["status"])
