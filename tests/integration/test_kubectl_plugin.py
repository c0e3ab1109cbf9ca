"""``kubectl barrack``, run as kubectl runs it (the console script found on PATH) against the dev
cluster, the operator and the simulator: trace, why, cost, pause, resume, reconcile and import,
with kubectl's habits (-n, -o json, exit codes)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from barrack_testkit.stack import wait_for
from tests.integration.conftest import API_KEY, Kube, Operator, Sim, instance, ssh_key, volume
from tests.integration.test_every_reason import firewall

pytestmark = pytest.mark.integration
BIN = Path(sys.executable).parent


@pytest.fixture
def sim_args() -> list[str]:
    """Ids of their own: import leaves out what objects in any namespace record, and the other
    tests' simulators hand out ids from the same first number into the same cluster."""
    return ["--first-id", "860001"]


def kubectl_barrack(
    kube: Kube, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``kubectl barrack ARGS`` in the test's namespace, the plugin found on PATH as kubectl finds it."""
    environment = {**os.environ, "KUBECONFIG": str(kube.plane.kubeconfig), "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
                   **(env or {})}  # fmt: skip
    return subprocess.run(["kubectl", "barrack", "-n", kube.namespace, *args], capture_output=True, text=True,
                          env=environment, timeout=60, check=False)  # fmt: skip


def test_trace_why_and_cost_read_the_objects_and_their_referents(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    kube.apply(ssh_key())
    kube.apply(instance("gpu", sim.image()))
    kube.apply(volume("data", instanceRef={"name": "gpu"}))
    kube.apply(firewall("fw", instanceRefs=[{"name": "gpu"}]))
    lost = instance("lost", sim.image())
    lost["spec"]["sshKeyRefs"] = [{"name": "nokey"}]
    kube.apply(lost)
    kube.wait_condition("bvol", "data", "Attached", "True", timeout=90)
    kube.wait_condition("bfw", "fw", "Ready", "True", timeout=60)
    wait_for(
        lambda: (kube.get("binst", "gpu") or {}).get("status", {}).get("cost"), 60, what="the gpu's cost"
    )

    tree = kubectl_barrack(kube, "trace", "binst/gpu")
    assert tree.returncode == 0, tree.stderr
    text = tree.stdout
    assert text.splitlines()[0].split()[:3] == ["NAME", "BARRACK-ID", "STATE"]
    gpu_id = kube.get("binst", "gpu")["status"]["id"]  # type: ignore[index]
    assert text.splitlines()[1].split()[:4] == ["BarrackInstance/gpu", gpu_id, "ACTIVE", "True"]
    for line in ("uses BarrackSSHKey/ops-key", "uses BarrackAccount/default", "used by BarrackVolume/data",
                 "used by BarrackFirewall/fw"):  # fmt: skip
        assert line in text, text
    as_json = json.loads(kubectl_barrack(kube, "trace", "binst/gpu", "-o", "json").stdout)
    assert as_json["id"] == gpu_id and as_json["ready"] == "True" and as_json["state"] == "ACTIVE"
    used_by = {(c["kind"], c["name"]) for c in as_json["children"] if c["relation"] == "used by"}
    assert used_by == {("BarrackVolume", "data"), ("BarrackFirewall", "fw")}
    wide = kubectl_barrack(kube, "trace", "bvol/data", "-o", "wide").stdout
    assert "MESSAGE" in wide.splitlines()[0] and "uses BarrackInstance/gpu" in wide

    missing = kubectl_barrack(kube, "trace", "binst/lost", "-o", "json")
    assert missing.returncode == 0, "a missing referent is shown, not an error"
    key = next(c for c in json.loads(missing.stdout)["children"] if c["kind"] == "BarrackSSHKey")
    assert key["missing"] and key["name"] == "nokey" and key["reason"] == "Missing"
    assert "missing" in kubectl_barrack(kube, "trace", "binst/lost").stdout
    absent = kubectl_barrack(kube, "trace", "bvol/nothing")
    assert absent.returncode == 1 and "NotFound" in absent.stderr and '"nothing" not found' in absent.stderr
    unknown = kubectl_barrack(kube, "trace", "pods/x")
    assert unknown.returncode == 1 and "resource type" in unknown.stderr
    context = kube.plane.kubectl("config", "current-context").stdout.strip()
    assert kubectl_barrack(kube, "--context", context, "why", "binst/gpu").stdout.startswith(
        "BarrackInstance/gpu"
    )
    no_context = kubectl_barrack(kube, "--context", "nowhere", "why", "binst/gpu")
    assert (
        no_context.returncode == 1 and "nowhere" in no_context.stderr and "Traceback" not in no_context.stderr
    )

    why = kubectl_barrack(kube, "why", "binst/lost")
    assert why.returncode == 0 and why.stdout.startswith("BarrackInstance/lost is not Ready: Synced=False")
    assert "ReferenceNotReady" in why.stdout and "nokey" in why.stdout and "\n  Next step: " in why.stdout
    ready = kubectl_barrack(kube, "why", "binst/gpu").stdout
    assert ready.startswith("BarrackInstance/gpu is Ready")

    cost = json.loads(kubectl_barrack(kube, "cost", "-o", "json", "--by", "kind").stdout)
    by_kind = {g["kind"]: g for g in cost["groups"]}
    gpu_hourly = kube.get("binst", "gpu")["status"]["cost"]["hourly"]  # type: ignore[index]
    assert by_kind["BarrackInstance"]["hourly"] >= gpu_hourly > 0
    assert cost["totals"][0]["hourly"] == pytest.approx(sum(g["hourly"] for g in cost["groups"]))
    table = kubectl_barrack(kube, "cost").stdout
    assert table.splitlines()[0].split()[:2] == ["NAMESPACE", "OBJECTS"] and kube.namespace in table
    assert any(line.startswith("TOTAL") for line in table.splitlines())


@pytest.mark.parametrize(
    "sim_args", [["--first-id", "880001"]]
)  # not the trace test's: its objects may linger
def test_pause_resume_reconcile_and_import(
    kube: Kube, sim: Sim, operator: Operator, api_key_file: Path
) -> None:
    kube.apply(volume("data"))
    kube.wait_condition("bvol", "data", "Ready", "True", timeout=60)

    assert (
        kubectl_barrack(kube, "pause", "bvol/data").stdout.strip() == "barrackvolume.barrack.ai/data paused"
    )
    kube.wait_condition("bvol", "data", "Synced", "False", reason="ReconcilePaused", timeout=30)
    assert kubectl_barrack(kube, "resume", "bvol/data").returncode == 0
    assert "barrack.ai/paused" not in (kube.get("bvol", "data") or {})["metadata"].get("annotations", {})
    kube.wait_condition("bvol", "data", "Synced", "True", timeout=30)
    assert kubectl_barrack(kube, "reconcile", "bvol/data").returncode == 0
    asked = kube.get("bvol", "data")["metadata"]["annotations"]["barrack.ai/reconcile-requested-at"]  # type: ignore[index]
    wait_for(lambda: kube.get("bvol", "data")["status"].get("lastHandledReconcileAt") == asked, 30,  # type: ignore[index]
             what="the reconcile asked for")  # fmt: skip

    sim.call("POST", "/volumes/", {"name": "stray", "region": "US-1", "size_gb": 100, "volume_type": "NVMe"})
    env = {"BARRACK_API_URL": sim.api, "BARRACK_API_KEY_FILE": str(api_key_file)}
    out = kubectl_barrack(kube, "import", env=env)
    assert out.returncode == 0, out.stderr
    assert "name: stray" in out.stdout and "kind: BarrackVolume" in out.stdout and API_KEY not in out.stdout
    assert re.search(r"^volumes: \d+/\d+ listed$", out.stderr, re.M), (
        "a plain progress line per kind off a terminal"
    )
    as_json = kubectl_barrack(kube, "import", "-o", "json", env=env)
    assert as_json.returncode == 0 and "listed" not in as_json.stderr, "no progress with -o json"
    listed = json.loads(as_json.stdout)
    assert listed["kind"] == "List" and [i["spec"]["name"] for i in listed["items"]] == ["stray"]
