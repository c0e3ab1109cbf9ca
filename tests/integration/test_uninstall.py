"""Issue 19's uninstall and upgrade paths, on a control plane of their own (deleting a CRD deletes
every object of its kind, in every namespace):

- deleting the CRDs while objects with ``deletionPolicy: Delete`` exist never deletes a Barrack
  resource: the operator releases each finalizer without a Barrack call and says so in an event;
- the operator outlives its CRDs: it keeps running while they are gone and serves the kinds again
  when they return, without a restart;
- upgrading the CRDs in place (``barrack-operator crds | kubectl apply --server-side -f -``) over
  objects made under the previous CRDs keeps them, served and reconciled.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from barrack_operator.devcluster import ControlPlane
from barrack_operator.resources.kinds import ALL_KINDS
from tests.integration.conftest import (
    OPERATOR_SETTINGS,
    ROOT,
    Kube,
    Operator,
    Sim,
    instance,
    running_operator,
    ssh_key,
    started_control_plane,
    volume,
    wait_for,
)
from tests.integration.scenarios import barrack_volume

pytestmark = pytest.mark.integration
KIND_CRDS = tuple(kind.plural for kind in ALL_KINDS if kind.scope == "Namespaced")


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """This module's own etcd and kube-apiserver: its tests delete and replace CRDs."""
    with started_control_plane(tmp_path_factory.mktemp("uninstall-plane")) as plane:
        yield plane


def _crd_names() -> list[str]:
    return [f"{plural}.barrack.ai" for plural in KIND_CRDS]


def _crd_exists(plane: ControlPlane, name: str) -> bool:
    return plane.kubectl("get", "crd", name, check=False).returncode == 0


def test_an_operator_started_before_its_crds_waits_for_them(
    kube: Kube, sim: Sim, api_key_file: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Installed in the wrong order (the operator first): it runs, says it waits for its CRDs,
    and serves the kinds once they are installed, without a restart. First in the module: its
    control plane holds no object yet, so the CRDs go at once."""
    names = [f"{kind.plural}.barrack.ai" for kind in ALL_KINDS]
    kube.plane.kubectl("delete", "crd", *names, "--ignore-not-found")
    wait_for(lambda: not any(_crd_exists(kube.plane, n) for n in names), 60, what="no CRD left")
    with running_operator(kube, sim, api_key_file, tmp_path, dict(OPERATOR_SETTINGS), request=request) as op:
        wait_for(lambda: "waiting for them" in op.log(), 30, what="the operator to say it waits for its CRDs")
        assert op.alive()
        pid = op.pid
        kube.plane.install_crds(ROOT / "crds")
        kube.apply(volume("late"))
        kube.wait_condition("bvol", "late", "Ready", "True", timeout=90)
        assert op.alive() and op.pid == pid
        assert "Traceback" not in op.log()
        kube.run("delete", "bvol", "late", "--timeout=60s")  # no finalizer left to hold the next test's CRDs


def test_deleting_the_crds_keeps_every_barrack_resource_and_the_operator(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    kube.apply(ssh_key())
    kube.apply(instance("gpu", sim.image()))
    kube.apply(volume("data", instanceRef={"name": "gpu"}))
    kube.apply(volume("scratch"))
    for kind, name in (("bkey", "ops-key"), ("binst", "gpu"), ("bvol", "data"), ("bvol", "scratch")):
        kube.wait_condition(kind, name, "Ready", "True", timeout=90)
    ids = {name: kube.get(kind, name)["status"]["id"] for kind, name in  # type: ignore[index]
           (("bkey", "ops-key"), ("binst", "gpu"), ("bvol", "data"), ("bvol", "scratch"))}  # fmt: skip
    calls_before = sim.calls()

    kube.plane.kubectl("delete", "crd", *_crd_names(), "--wait=false")
    wait_for(
        lambda: not any(_crd_exists(kube.plane, name) for name in _crd_names()),
        60,
        what="the CRDs to go (the operator releases every finalizer)",
    )

    inventory = sim.inventory()
    assert {v["id"] for v in inventory["volumes"]} >= {ids["data"], ids["scratch"]}
    assert ids["gpu"] in {i["id"] for i in inventory["instances"]}
    assert ids["ops-key"] in {k["id"] for k in inventory["ssh_keys"]}
    attached = barrack_volume(sim, ids["data"])
    assert attached is not None and attached.get("instance_id") == ids["gpu"], "the volume was detached"
    mutations = {
        route: n - calls_before.get(route, 0)
        for route, n in sim.calls().items()
        if n != calls_before.get(route, 0) and not route.split()[0].startswith(("list_", "get_"))
    }
    assert mutations == {}, f"the uninstall made Barrack calls: {mutations}"
    events = json.loads(kube.run("get", "events", "-o", "json").stdout)["items"]
    retained = {e["involvedObject"]["name"] for e in events if e["reason"] == "Retained"}
    assert retained == {"ops-key", "gpu", "data", "scratch"}
    sample = next(e for e in events if e["reason"] == "Retained" and e["involvedObject"]["name"] == "data")
    assert ids["data"] in sample["message"] and "adoptId" in sample["message"]
    assert sample["reportingComponent"] == "barrack-operator" and sample["action"] == "Release"
    assert operator.alive(), "the operator exited when its CRDs went"

    # The CRDs come back: the same process serves the kinds again, and adopts what was kept.
    kube.plane.install_crds(ROOT / "crds")
    kube.apply(volume("data-again", adoptId=ids["scratch"]))
    kube.wait_condition("bvol", "data-again", "Ready", "True", timeout=90)
    assert kube.get("bvol", "data-again")["status"]["id"] == ids["scratch"]  # type: ignore[index]
    assert operator.alive()
    log = operator.log()
    assert "Traceback" not in log, "the operator logged a traceback when its CRDs went"
    kube.run("delete", "bvol", "data-again", "--timeout=60s")  # nothing left for the module's next tests


def test_an_operator_started_during_an_uninstall_releases_what_kopf_cannot_serve(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    """A CRD being deleted is listed without the patch verb, and kopf serves no such kind: objects
    left by an uninstall the operator did not see begin are released by the operator itself."""
    kube.apply(volume("kept"))
    kube.wait_condition("bvol", "kept", "Ready", "True", timeout=60)
    kept_id = kube.get("bvol", "kept")["status"]["id"]  # type: ignore[index]
    operator.stop()
    kube.plane.kubectl("delete", "crd", *_crd_names(), "--wait=false")
    calls_before = sim.calls()
    operator.start()
    wait_for(
        lambda: not any(_crd_exists(kube.plane, name) for name in _crd_names()),
        60,
        what="the CRDs to go (the operator releases the objects kopf cannot serve)",
    )
    assert kept_id in {v["id"] for v in sim.inventory()["volumes"]}
    mutations = [
        r
        for r, n in sim.calls().items()
        if n != calls_before.get(r, 0) and not r.startswith(("list_", "get_"))
    ]
    assert mutations == [], f"the uninstall made Barrack calls: {mutations}"
    events = json.loads(kube.run("get", "events", "-o", "json").stdout)["items"]
    assert any(e["reason"] == "Retained" and kept_id in e["message"] for e in events)
    kube.plane.install_crds(ROOT / "crds")  # for the module's next test


def test_upgrading_the_crds_in_place_keeps_the_objects_served(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    """Objects made under the CRDs of the previous release survive ``kubectl apply --server-side``
    of today's (``barrack-operator crds``), are served, and keep reconciling."""
    kube.plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(PREVIOUS_CRDS))
    kube.apply(volume("kept", sizeGB=100))
    kube.wait_condition("bvol", "kept", "Ready", "True", timeout=60)
    volume_id = kube.get("bvol", "kept")["status"]["id"]  # type: ignore[index]

    today = subprocess.run(
        [sys.executable, "-m", "barrack_operator.cli", "crds"], capture_output=True, text=True, check=True
    ).stdout
    assert len(list(yaml.safe_load_all(today))) == len(ALL_KINDS)  # the four kinds and BarrackAccount
    kube.plane.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input_text=today)
    served = kube.get("bvol", "kept")
    assert served is not None and served["status"]["id"] == volume_id
    kube.patch("bvol", "kept", {"spec": {"sizeGB": 200}})
    wait_for(
        lambda: (barrack_volume(sim, volume_id) or {}).get("size_gb") == 200,
        60,
        what="the object to be reconciled under the new CRDs",
    )
    kube.wait_condition("bvol", "kept", "Ready", "True", timeout=60)


PREVIOUS_CRDS = Path(__file__).parent / "fixtures" / "crds-0.1.0.yaml"
"""The CRDs of the previous release (0.1.0, before this release's changes), as users have them."""
