"""Issue 20's first rule against real processes: an object changes or deletes only what it owns.

A table over every kind that stands for a Barrack resource and every way an object can end up
owning nothing (its adoption refused as AlreadyManaged or AdoptionMismatch, NameTaken,
AccountNotAllowed, AccountNotFound, paused before its first pass, never reconciled): deleting the
object, with deletionPolicy Delete, sends no mutating call to Barrack, every resource stays, and a
Normal event says that nothing was deleted and why."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from barrack_operator.barrack.routes import ROUTES
from barrack_operator.engine.objects import FINALIZER
from barrack_operator.resources.ownership import RELEASED
from tests.integration.conftest import (
    API_KEY,
    OPERATOR_SETTINGS,
    SSH_PUBLIC_KEY,
    Kube,
    Sim,
    running_operator,
    ssh_key,
    wait_for,
)

pytestmark = pytest.mark.integration
OTHER_PUBLIC_KEY = "ssh-ed25519 " + base64.b64encode(b"\0\0\0\x0bssh-ed25519\0\0\0\x20" + b"k" * 32).decode()

SCRIPT = "#!/bin/sh\necho ready\n"
KINDS = {  # kind: (short name, plural of the inventory)
    "BarrackVolume": ("bvol", "volumes"),
    "BarrackInstance": ("binst", "instances"),
    "BarrackFirewall": ("bfw", "firewalls"),
    "BarrackSSHKey": ("bkey", "ssh_keys"),
    "BarrackStartupScript": ("bscript", "scripts"),
    "BarrackSnapshot": ("bsnap", "snapshots"),
    "BarrackImage": ("bimg", "images"),
}


def _made(sim: Sim, path: str, body: dict[str, Any], key: str) -> dict[str, Any]:
    return sim.call("POST", path, body)[key]  # type: ignore[no-any-return]


def _settled(sim: Sim, listing: str, resource_id: str, state: str) -> None:
    def check() -> bool:
        return any(i["id"] == resource_id and i["status"] == state for i in sim.inventory()[listing])

    wait_for(check, 60, what=f"{listing} {resource_id} {state}")


def barrack_resources(sim: Sim, tag: str) -> dict[str, dict[str, Any]]:
    """One Barrack resource of every kind, made behind the operator's back, by kind."""
    key = _made(sim, "/ssh-keys/", {"name": f"{tag}-key", "public_key": SSH_PUBLIC_KEY}, "ssh_key")
    instance = _made(sim, "/instances/", {"name": f"{tag}-gpu", "region": "US-1", "gpu_model": "A40", "gpu_count": 1,
                                          "image_id": sim.image(), "ssh_key_ids": [key["id"]]}, "instance")  # fmt: skip
    _settled(sim, "instances", instance["id"], "ACTIVE")
    snapshot = _made(sim, "/snapshots/", {"name": f"{tag}-snap", "instance_id": instance["id"]}, "snapshot")
    _settled(sim, "snapshots", snapshot["id"], "SUCCESS")
    image = _made(sim, f"/snapshots/{snapshot['id']}/image/", {"name": f"{tag}-img"}, "image")
    volume = {"name": f"{tag}-vol", "region": "US-1", "size_gb": 200, "volume_type": "NVMe"}
    return {
        "BarrackVolume": _made(sim, "/volumes/", volume, "volume"),
        "BarrackInstance": instance,
        "BarrackFirewall": _made(sim, "/firewalls/", {"name": f"{tag}-fw", "region": "US-1"}, "firewall"),
        "BarrackSSHKey": key,
        "BarrackStartupScript": _made(
            sim, "/scripts/", {"name": f"{tag}-script", "content": SCRIPT}, "script"
        ),
        "BarrackSnapshot": snapshot,
        "BarrackImage": image,
    }


def spec_of(kind: str, sim: Sim, made: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """A spec of the kind that the resources ``made`` would match."""
    gpu = {"region": "US-1", "gpuModel": "A40", "imageId": sim.image(), "sshKeyRefs": [{"name": "ops-key"}]}
    return {
        "BarrackVolume": {"region": "US-1", "sizeGB": 200, "volumeType": "NVMe"},
        "BarrackInstance": gpu,
        "BarrackFirewall": {"region": "US-1"},
        "BarrackSSHKey": {"publicKey": SSH_PUBLIC_KEY},
        "BarrackStartupScript": {"content": SCRIPT},
        "BarrackSnapshot": {"instanceId": made["BarrackInstance"]["id"]},
        "BarrackImage": {"snapshotId": made["BarrackSnapshot"]["id"]},
    }[kind]


MISMATCHED = {  # what Barrack cannot change, set otherwise than the resource has it
    "BarrackVolume": {"sizeGB": 100},
    "BarrackInstance": {"gpuCount": 2},
    "BarrackFirewall": {"region": "CANADA-1"},
    "BarrackSSHKey": {"publicKey": OTHER_PUBLIC_KEY},
    "BarrackSnapshot": {"instanceId": "BRK-999999"},
}
"""BarrackImage and BarrackStartupScript have no field Barrack cannot change that an adoption could
disagree on."""


def manifest(kind: str, name: str, spec: dict[str, Any], **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "barrack.ai/v1alpha1", "kind": kind, "metadata": {"name": name, **meta},
            "spec": {"deletionPolicy": "Delete", **spec}}  # fmt: skip


@pytest.fixture
def restricted_account(kube: Kube, sim: Sim) -> Iterator[str]:
    """A BarrackAccount that does not allow the test's namespace."""
    name = f"elsewhere-{kube.namespace}"[:63]
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "elsewhere-key"},
              "data": {"api-key": base64.b64encode(API_KEY.encode()).decode()}}  # fmt: skip
    kube.apply(secret)
    account = {"apiVersion": "barrack.ai/v1alpha1", "kind": "BarrackAccount", "metadata": {"name": name},
               "spec": {"secretRef": {"name": "elsewhere-key"}, "apiUrl": sim.api,
                        "allowedNamespaces": ["some-other-namespace"]}}  # fmt: skip
    kube.plane.kubectl("apply", "-f", "-", input_text=json.dumps(account))
    yield name
    kube.plane.kubectl("delete", "barrackaccount", name, "--ignore-not-found")


def mutations(sim: Sim) -> dict[str, int]:
    return {k: n for k, n in sim.calls().items() if not ROUTES[k.split()[0]].is_read}


def test_an_object_that_never_owned_a_resource_deletes_nothing_whatever_its_policy(
    kube: Kube,
    sim: Sim,
    api_key_file: Path,
    tmp_path: Path,
    restricted_account: str,
    request: pytest.FixtureRequest,
) -> None:
    managed = barrack_resources(sim, "managed")  # each adopted below by an owner
    theirs = barrack_resources(sim, "theirs")  # managed by no object
    cases: dict[str, tuple[str, str]] = {}  # object name: (kind, the reason it owns nothing)

    # Never reconciled: applied, held by the operator's finalizer and deleted while no operator runs.
    for kind in KINDS:
        name = f"never-{KINDS[kind][0]}"
        spec = {**spec_of(kind, sim, managed), "adoptId": theirs[kind]["id"]}
        kube.apply(manifest(kind, name, spec, finalizers=[FINALIZER]))
        kube.run("delete", KINDS[kind][0], name, "--wait=false")
        cases[name] = (kind, "never reconciled")

    settings = {**OPERATOR_SETTINGS, "LEADER_ELECTION_NAMESPACE": kube.namespace}
    with running_operator(kube, sim, api_key_file, tmp_path, settings, request=request):
        kube.apply(ssh_key("ops-key"))
        for kind, (short, _) in KINDS.items():
            spec = spec_of(kind, sim, managed)
            kube.apply(manifest(kind, f"owner-{short}", {**spec, "adoptId": managed[kind]["id"]}))
        for short, _ in KINDS.values():
            kube.wait_condition(short, f"owner-{short}", "Ready", "True", timeout=90)
        for kind, (short, _) in KINDS.items():
            spec = spec_of(kind, sim, theirs)
            adopting = {**spec, "adoptId": theirs[kind]["id"]}
            table = {
                f"managed-{short}": ({**spec, "adoptId": managed[kind]["id"]}, {}, "AlreadyManaged"),
                f"taken-{short}": ({**spec, "name": theirs[kind]["name"]}, {}, "NameTaken"),
                f"denied-{short}": (
                    {**adopting, "accountRef": {"name": restricted_account}},
                    {},
                    "AccountNotAllowed",
                ),
                f"nowhere-{short}": (
                    {**adopting, "accountRef": {"name": "no-such-account"}},
                    {},
                    "AccountNotFound",
                ),
                f"paused-{short}": (
                    adopting,
                    {"annotations": {"barrack.ai/paused": "true"}},
                    "ReconcilePaused",
                ),
            }
            if kind in MISMATCHED:
                table[f"differs-{short}"] = ({**adopting, **MISMATCHED[kind]}, {}, "AdoptionMismatch")
            for name, (object_spec, meta, reason) in table.items():
                kube.apply(manifest(kind, name, object_spec, **meta))
                cases[name] = (kind, reason)
        for name, (kind, reason) in cases.items():
            short = KINDS[kind][0]
            if reason == "never reconciled":
                continue
            kube.wait_condition(short, name, "Synced", "False", reason=reason, timeout=90)
            status = (kube.get(short, name) or {}).get("status") or {}
            assert "id" not in status, f"{name} ({reason}) records an id it does not own: {status.get('id')}"

        before = mutations(sim)
        for name, (kind, _) in cases.items():
            kube.run("delete", KINDS[kind][0], name, "--wait=false", "--ignore-not-found")
        for name, (kind, reason) in cases.items():
            short = KINDS[kind][0]
            wait_for(lambda: kube.get(short, name) is None, 60, what=f"{name} ({reason}) to go")  # noqa: B023
        assert mutations(sim) == before, "a deletion of an object that owned nothing called Barrack"
        inventory = sim.inventory()
        for made in (managed, theirs):
            for kind, resource in made.items():
                listed = {i["id"] for i in inventory[KINDS[kind][1]]}
                assert resource["id"] in listed, (
                    f"{kind} {resource['id']} went with an object that did not own it"
                )
        for name, (_, reason) in cases.items():

            def released(name: str = name) -> list[dict[str, Any]]:
                return [e for e in kube.events(name) if e["reason"] == RELEASED and e["type"] == "Normal"]

            events = wait_for(released, 30, what=f"a {RELEASED} event for {name} ({reason})")
            assert "Nothing on Barrack was deleted" in events[0]["message"]
        # The owners are untouched: still Ready over the resources they manage.
        for kind, (short, _) in KINDS.items():
            owner = kube.get(short, f"owner-{short}") or {}
            assert owner["status"]["id"] == managed[kind]["id"]
            kube.wait_condition(short, f"owner-{short}", "Ready", "True", timeout=30)
