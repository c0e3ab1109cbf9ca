"""`barrack-operator import` against real processes: twenty resources made directly on Barrack
(SSH keys, instances running and stopped, volumes attached to them, firewalls over them) are
imported and applied; every object becomes Ready and Barrack sees no mutation at all."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
import yaml

from barrack_testkit.stack import CLI, operator_env
from tests.integration.conftest import SSH_PUBLIC_KEY, Kube, Operator, Sim, wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def sim_args() -> list[str]:
    """Ids of their own: the import looks at what objects in every namespace manage, and the other
    tests' simulators hand out ids from the same first number into the same cluster."""
    return ["--first-id", "700001"]


def _settled(sim: Sim) -> bool:
    return sim.inventory()["pending_transitions"] == 0


def _make_account(sim: Sim) -> int:
    keys = [
        sim.call("POST", "/ssh-keys/", {"name": f"key-{n}", "public_key": SSH_PUBLIC_KEY})["ssh_key"]
        for n in range(4)
    ]
    instances = [
        sim.call("POST", "/instances/", {
            "name": f"GPU Box {n}", "region": "US-1", "gpu_model": "A40" if n % 2 else "L40", "gpu_count": 1,
            "image_id": sim.image(), "ssh_key_ids": [keys[n % 4]["id"]], "public_ip": n % 3 != 0,
        })["instance"]
        for n in range(6)
    ]  # fmt: skip
    wait_for(lambda: _settled(sim), 30, what="instances ACTIVE")
    volumes = [
        sim.call("POST", "/volumes/", {"name": f"data {n}", "region": "US-1", "size_gb": 100 * (n + 1),
                                        "volume_type": "NVMe"})["volume"]
        for n in range(8)
    ]  # fmt: skip
    wait_for(lambda: _settled(sim), 30, what="volumes AVAILABLE")
    for n in range(4):
        sim.call(
            "POST", f"/instances/{instances[n]['id']}/attach-volumes/", {"volume_ids": [volumes[n]["id"]]}
        )
    for n in range(2):
        firewall = sim.call("POST", "/firewalls/", {"name": f"fw-{n}", "region": "US-1"})["firewall"]
        wait_for(lambda: _settled(sim), 30, what="firewall")
        sim.call(
            "POST",
            f"/firewalls/{firewall['id']}/attach/",
            {"instance_ids": [instances[n]["id"], instances[n + 2]["id"]]},
        )
    wait_for(lambda: _settled(sim), 30, what="attachments")
    for n in (4, 5):
        sim.call("POST", f"/instances/{instances[n]['id']}/stop/")
    wait_for(lambda: _settled(sim), 30, what="stopped instances")
    return len(keys) + len(instances) + len(volumes) + 2


def _mutations(sim: Sim) -> dict[str, int]:
    return {k: n for k, n in sim.calls().items() if not k.split()[0].startswith(("list_", "get_"))}


def test_import_adopts_an_account_without_changing_it(
    kube: Kube, sim: Sim, operator: Operator, api_key_file: Path
) -> None:
    count = _make_account(sim)
    assert count == 20
    before = _mutations(sim)
    started = time.monotonic()
    result = subprocess.run(
        [*CLI, "import", "--namespace", kube.namespace, "--apply"],
        env=operator_env(kube.plane.kubeconfig, sim.api, api_key_file),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    imported = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("created ") == 20, result.stdout
    names = [line.split("/")[-1] for line in result.stdout.splitlines() if line.startswith("created ")]
    kinds = {
        "BarrackSSHKey": "bkey",
        "BarrackInstance": "binst",
        "BarrackVolume": "bvol",
        "BarrackFirewall": "bfw",
    }
    for line, name in zip(result.stdout.splitlines(), names, strict=True):
        kube.wait_condition(kinds[line.split()[1]], name, "Ready", "True", timeout=90)
    ready = time.monotonic() - started
    print(f"import of {count} resources: {imported:.1f}s to write and apply, {ready:.1f}s until all Ready")
    assert _mutations(sim) == before, "importing changed the account"
    stopped = kube.get("binst", "gpu-box-4") or {}
    assert stopped["spec"]["powerState"] == "Stopped" and stopped["spec"]["sshKeyRefs"] == [{"name": "key-0"}]
    attached = kube.get("bvol", "data-0") or {}
    assert attached["spec"]["instanceRef"] == {"name": "gpu-box-0"}
    assert (kube.get("bfw", "fw-1") or {})["spec"]["instanceRefs"] == [
        {"name": "gpu-box-1"},
        {"name": "gpu-box-3"},
    ]
    second = subprocess.run(
        [*CLI, "import", "--namespace", kube.namespace],
        env=operator_env(kube.plane.kubeconfig, sim.api, api_key_file),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert second.returncode == 0 and second.stdout.strip() == "", "a second import found something unmanaged"


@pytest.mark.parametrize("sim_args", [["--first-id", "730001"]])  # ids no other test's objects hold
def test_import_out_writes_a_file_per_resource_and_observe_mirrors_without_owning(
    kube: Kube, sim: Sim, operator: Operator, api_key_file: Path, tmp_path: Path
) -> None:
    key = sim.call("POST", "/ssh-keys/", {"name": "seen-key", "public_key": SSH_PUBLIC_KEY})["ssh_key"]
    data = sim.call("POST", "/volumes/", {"name": "seen data", "region": "US-1", "size_gb": 200,
                                          "volume_type": "NVMe"})["volume"]  # fmt: skip
    wait_for(lambda: _settled(sim), 30, what="the volume AVAILABLE")
    out = tmp_path / "imported"
    result = subprocess.run(
        [*CLI, "import", "--namespace", kube.namespace, "--out", str(out), "--observe"],
        env=operator_env(kube.plane.kubeconfig, sim.api, api_key_file),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    files = sorted(out.iterdir())
    manifests = [yaml.safe_load(f.read_text()) for f in files]
    assert len(files) == 2, files  # one file per resource
    assert {m["spec"]["adoptId"] for m in manifests} == {key["id"], data["id"]}
    assert all(m["spec"]["managementPolicy"] == "Observe" for m in manifests)
    before = _mutations(sim)
    for path in files:
        kube.run("apply", "-f", str(path))
    for m in manifests:
        short = {"BarrackSSHKey": "bkey", "BarrackVolume": "bvol"}[m["kind"]]
        kube.wait_condition(short, m["metadata"]["name"], "Ready", "True", timeout=60)
        status = (kube.get(short, m["metadata"]["name"]) or {})["status"]
        assert status["id"] == m["spec"]["adoptId"]
        kube.run("delete", short, m["metadata"]["name"], "--timeout=60s")  # Observe owns nothing
    assert _mutations(sim) == before, "an observed import changed or deleted something"
    assert {v["id"] for v in sim.inventory()["volumes"]} == {data["id"]}


@pytest.mark.parametrize("sim_args", [["--first-id", "760001"]])  # ids no other test's objects hold
def test_import_brings_scripts_snapshots_and_images_with_their_references(
    kube: Kube, sim: Sim, operator: Operator, api_key_file: Path
) -> None:
    """A snapshot of an instance and an image of that snapshot, made on Barrack: import writes a
    BarrackSnapshot naming the instance's object and a BarrackImage naming the snapshot's; applied,
    all are Ready with no call that changes the account."""
    key = sim.call("POST", "/ssh-keys/", {"name": "key", "public_key": SSH_PUBLIC_KEY})["ssh_key"]
    setup = sim.call("POST", "/scripts/", {"name": "Setup", "content": "#!/bin/sh\necho hi\n"})["script"]
    box = sim.call("POST", "/instances/", {"name": "box", "region": "US-1", "gpu_model": "A40", "gpu_count": 1,
                                            "image_id": sim.image(), "ssh_key_ids": [key["id"]],
                                            "startup_script_id": setup["id"]})["instance"]  # fmt: skip
    wait_for(lambda: _settled(sim), 30, what="instance ACTIVE")
    snap = sim.call("POST", "/snapshots/", {"name": "Nightly", "instance_id": box["id"]})["snapshot"]
    wait_for(lambda: _settled(sim), 30, what="snapshot made")
    sim.call("POST", f"/snapshots/{snap['id']}/image/", {"name": "Golden"})
    wait_for(lambda: _settled(sim), 30, what="image made")
    before = _mutations(sim)
    result = subprocess.run(
        [*CLI, "import", "--namespace", kube.namespace, "--apply"],
        env=operator_env(kube.plane.kubeconfig, sim.api, api_key_file),
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "created BarrackSnapshot" in result.stdout and "created BarrackImage" in result.stdout, (
        result.stdout
    )
    kube.wait_condition("bsnap", "nightly", "Ready", "True", timeout=60)
    kube.wait_condition("bimg", "golden", "Ready", "True", timeout=60)
    kube.wait_condition("binst", "box", "Ready", "True", timeout=60)
    assert (kube.get("bsnap", "nightly") or {})["spec"]["instanceRef"] == {"name": "box"}
    assert (kube.get("bimg", "golden") or {})["spec"]["snapshotRef"] == {"name": "nightly"}
    kube.wait_condition("bscript", "setup", "Ready", "True", timeout=60)
    assert (kube.get("binst", "box") or {})["spec"]["startupScriptRef"] == {"name": "setup"}
    assert _mutations(sim) == before, "importing changed the account"
