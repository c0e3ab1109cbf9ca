"""The operator's finalizer: written with the create mark (one write for both), only on objects that
have something on Barrack to settle, removed by the finalizer pass without touching anyone else's."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import pytest
from kubernetes.config import kube_config

from barrack_operator.devcluster.binaries import find_binary
from barrack_operator.engine.objects import CREATE_REQUESTED_ANNOTATION, FINALIZER, KOPF_FINALIZER
from barrack_operator.kube import StatusWriter
from tests.integration.conftest import Kube, Operator, Sim, volume, wait_for
from tests.integration.scenarios import barrack_volume
from tests.integration.test_backups import schedule

pytestmark = pytest.mark.integration
THEIRS = "example.com/keep"
"""Another controller's finalizer."""


def versions_seen(kube: Kube, kind: str, name: str, until: Any) -> list[dict[str, Any]]:
    """Every version of the object a watch delivers while ``until()`` runs."""
    watch = subprocess.Popen(
        [str(find_binary("kubectl")), f"--kubeconfig={kube.plane.kubeconfig}", "-n", kube.namespace,
         "get", kind, "--watch", "-o", "json"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(1.0)  # the watch is open before the object is made
        until()
        time.sleep(1.0)  # its last events are delivered
    finally:
        watch.terminate()
        text, _ = watch.communicate(timeout=10)
    decoder, at, objects = json.JSONDecoder(), 0, []
    while (at := text.find("{", at)) >= 0:
        obj, at = decoder.raw_decode(text, at)
        objects.append(obj)
    return [o for o in objects if o["metadata"]["name"] == name]


def finalizers(kube: Kube, kind: str, name: str) -> list[str]:
    return list(((kube.get(kind, name) or {}).get("metadata") or {}).get("finalizers") or [])


def test_the_finalizer_is_written_with_the_create_mark_and_keeps_other_finalizers(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    manifest = volume("data")
    manifest["metadata"]["finalizers"] = [THEIRS]

    def apply_until_ready() -> None:
        kube.apply(manifest)
        kube.wait_condition("bvol", "data", "Ready", "True")

    seen = versions_seen(kube, "bvol", "data", apply_until_ready)
    first = next(v for v in seen if FINALIZER in (v["metadata"].get("finalizers") or []))
    assert first["metadata"]["annotations"][CREATE_REQUESTED_ANNOTATION] == "data"  # the same write
    assert not any(
        CREATE_REQUESTED_ANNOTATION in (v["metadata"].get("annotations") or {})
        for v in seen[: seen.index(first)]
    )
    assert finalizers(kube, "bvol", "data") == [THEIRS, FINALIZER]
    volume_id = kube.get("bvol", "data")["status"]["id"]  # type: ignore[index]

    # Deleting: the finalizer pass deletes the volume and takes only its own finalizer off.
    kube.run("delete", "bvol", "data", "--wait=false")
    wait_for(lambda: finalizers(kube, "bvol", "data") == [THEIRS], 60, what="the operator's finalizer to go")
    assert barrack_volume(sim, volume_id) is None
    kube.patch("bvol", "data", {"metadata": {"finalizers": []}})
    wait_for(lambda: kube.get("bvol", "data") is None, 30, what="the object to go")


def test_an_object_that_asked_barrack_for_nothing_has_no_finalizer_and_goes_at_once(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    kube.apply(volume("waiting", instanceRef={"name": "no-such-instance"}))
    kube.wait_condition("bvol", "waiting", "Synced", "False", reason="ReferenceNotReady")
    assert finalizers(kube, "bvol", "waiting") == []
    kube.run("delete", "bvol", "waiting", "--timeout=10s")
    assert kube.get("bvol", "waiting") is None
    assert not sim.inventory()["volumes"]


def test_an_adopted_object_gets_the_finalizer_before_it_is_reconciled(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    body = {"name": "legacy-data", "region": "US-1", "size_gb": 100, "volume_type": "NVMe"}
    existing = sim.call("POST", "/volumes/", body)["volume"]
    kube.apply(volume("adopted", adoptId=existing["id"]))
    kube.wait_condition("bvol", "adopted", "Ready", "True")
    assert finalizers(kube, "bvol", "adopted") == [FINALIZER]
    kube.run("delete", "bvol", "adopted", "--timeout=60s")
    assert barrack_volume(sim, existing["id"]) is None  # deletionPolicy Delete, as declared


@pytest.mark.parametrize("earlier", [FINALIZER, KOPF_FINALIZER])
def test_a_schedule_from_an_earlier_release_loses_its_old_finalizer_and_can_be_deleted(
    kube: Kube, operator: Operator, earlier: str
) -> None:
    # Earlier releases ran a kopf daemon per schedule, which put a finalizer on it (first the
    # operator's name, later kopf's own). Schedules are on the work queue now and need none.
    name = "nightly-" + earlier.rsplit("/", 1)[1]
    manifest = schedule(name, schedule="@daily", instanceRef={"name": "x"})
    manifest["metadata"]["finalizers"] = [earlier, "example.com/theirs"]
    kube.apply(manifest)
    wait_for(
        lambda: finalizers(kube, "bsched", name) == ["example.com/theirs"], 30, what="the old finalizer gone"
    )
    kube.patch("bsched", name, {"metadata": {"finalizers": None}})
    kube.run("delete", "bsched", name, "--timeout=30s")
    assert kube.get("bsched", name) is None


async def test_the_finalizer_is_removed_when_others_moved_the_list_meanwhile(
    kube: Kube, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The finalizer pass read [a, theirs, ours]; another controller released "a" before the pass
    # removed its own: the entry tested at index 2 is not there any more, and the object is being
    # deleted. The list is read again and only the operator's finalizer goes.
    manifest = volume("held")
    manifest["metadata"]["finalizers"] = ["example.com/a", THEIRS, FINALIZER]
    kube.apply(manifest)  # no operator runs here: nothing else writes the object
    kube.run("delete", "bvol", "held", "--wait=false")
    kube.patch("bvol", "held", {"metadata": {"finalizers": [THEIRS, FINALIZER]}})
    # the writer reads the kubeconfig the kubernetes client finds (KUBECONFIG, read at its import)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(kube.plane.kubeconfig))
    writer = StatusWriter()
    try:
        stale = ["example.com/a", THEIRS, FINALIZER]
        await writer.remove_finalizer("barrackvolumes", kube.namespace, "held", FINALIZER, stale)
    finally:
        await writer.aclose()
    assert finalizers(kube, "bvol", "held") == [THEIRS]
    kube.patch("bvol", "held", {"metadata": {"finalizers": []}})
