"""BarrackStartupScript end to end (issue 34, item 2): content inline or from a ConfigMap key; an
instance names it with startupScriptRef; a content change updates it on Barrack and says it
affects only instances created afterwards; it cannot be deleted while an instance uses it."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from barrack_testkit.stack import wait_for
from tests.integration.conftest import Kube, Operator, Sim, instance, ssh_key

pytestmark = pytest.mark.integration


def script(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "barrack.ai/v1alpha1", "kind": "BarrackStartupScript", "metadata": {"name": name},
            "spec": spec}  # fmt: skip


def config_map(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def on_barrack(sim: Sim, name: str) -> dict[str, Any] | None:
    return next((s for s in sim.inventory()["scripts"] if s["name"] == name), None)


def test_a_script_from_a_configmap_runs_on_the_instances_that_name_it_and_waits_for_them_to_go(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    kube.apply(script("setup", contentFrom={"configMapKeyRef": {"name": "boot", "key": "setup.sh"}},
                      description="install the drivers"))  # fmt: skip
    waiting = kube.wait_condition(
        "bscript", "setup", "Synced", "False", reason="ReferenceNotReady", timeout=60
    )
    assert "ConfigMap boot does not exist" in waiting["message"] and on_barrack(sim, "setup") is None
    kube.apply(config_map("boot", {"setup.sh": "#!/bin/sh\necho one\n"}))
    kube.wait_condition("bscript", "setup", "Ready", "True", timeout=60)
    status = kube.get("bscript", "setup")["status"]  # type: ignore[index]
    assert status["contentSHA256"] == hashlib.sha256(b"#!/bin/sh\necho one\n").hexdigest()
    assert on_barrack(sim, "setup")["description"] == "install the drivers"  # type: ignore[index]

    kube.apply(ssh_key())
    gpu = instance("gpu", sim.image())
    gpu["spec"]["startupScriptRef"] = {"name": "setup"}
    kube.apply(gpu)
    kube.wait_condition("binst", "gpu", "Ready", "True", timeout=90)
    made = next(i for i in sim.inventory()["instances"] if i["name"] == "gpu")
    assert made["startup_script_id"] == status["id"]

    kube.apply(config_map("boot", {"setup.sh": "#!/bin/sh\necho two\n"}))  # read again each drift interval
    wait_for(lambda: (on_barrack(sim, "setup") or {}).get("content") == "#!/bin/sh\necho two\n", 60,
             what="the new content on Barrack")  # fmt: skip
    updated = wait_for(lambda: next((e for e in kube.events("setup") if e["reason"] == "Updated"), None), 30,
                       what="the Updated event")  # fmt: skip
    assert "instances created from now on" in updated["message"]
    wait_for(lambda: (kube.get("bscript", "setup") or {})["status"].get("usedBy") == [made["id"]], 30,
             what="usedBy")  # fmt: skip

    kube.run("delete", "bscript", "setup", "--wait=false")
    blocked = kube.wait_condition("bscript", "setup", "Synced", "False", reason="DeletionBlocked", timeout=60)
    assert "BarrackInstance gpu" in blocked["message"] and on_barrack(sim, "setup") is not None
    kube.run("delete", "binst", "gpu", "--wait=false")
    wait_for(lambda: kube.get("bscript", "setup") is None, 120, what="the script to go after its instance")
    assert on_barrack(sim, "setup") is None


def test_an_inline_script_and_the_manifests_refused(kube: Kube, sim: Sim, operator: Operator) -> None:
    kube.apply(script("hello", content="echo hello"))
    kube.wait_condition("bscript", "hello", "Ready", "True", timeout=60)
    kube.patch("bscript", "hello", {"spec": {"description": "greets"}})
    kube.wait_condition("bscript", "hello", "Ready", "True", timeout=60)
    assert on_barrack(sim, "hello")["description"] == "greets"  # type: ignore[index]
    for bad, field in (
        (script("both", content="x", contentFrom={"configMapKeyRef": {"name": "c", "key": "k"}}), "content"),
        (script("neither"), "content"),
    ):
        refused = kube.run("apply", "-f", "-", input_text=json.dumps(bad), check=False)
        assert refused.returncode != 0 and "exactly one of content and contentFrom" in refused.stderr, field
    both = instance("two", sim.image(), startupScript="BRK-1T")
    both["spec"]["startupScriptRef"] = {"name": "hello"}
    refused = kube.run("apply", "-f", "-", input_text=json.dumps(both), check=False)
    assert refused.returncode != 0 and "startupScript or startupScriptRef, not both" in refused.stderr
    kube.run("delete", "bscript", "hello")
    assert on_barrack(sim, "hello") is None
