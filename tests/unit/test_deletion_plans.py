"""Deletion planned like every pass (issue 20, item 4): each kind's pure ``plan_delete`` over what
Barrack lists, as a table; and the deletion frame acting on its step (the detach rule names the
BarrackInstance that manages the instance, as the reconcile's does)."""

from __future__ import annotations

from typing import Any

import pytest

from barrack_operator.barrack import models as m
from barrack_operator.conditions import Reason
from barrack_operator.resources import steps
from barrack_operator.resources.deletion import (
    Delete,
    DeletionInputs,
    plan_delete_firewall,
    plan_delete_image,
    plan_delete_instance,
    plan_delete_snapshot,
    plan_delete_ssh_key,
    plan_delete_volume,
)

WEB1 = "BRK-123456D"


def vm(status: str = "SHUTOFF") -> m.VMInstance:
    return m.VMInstance(id=WEB1, name="web-1", status=status, region="US-1", gpu_model="A40", gpu_count=1)


def vol(status: str = "AVAILABLE", **kw: Any) -> m.Volume:
    fields = {"id": "BRK-1V", "name": "data", "status": status, "region": "US-1", "size_gb": 100,
              "volume_type": "NVMe"}  # fmt: skip
    return m.Volume(**{**fields, **kw})


def snap(status: str) -> m.Snapshot:
    return m.Snapshot(id="BRK-1S", name="nightly", status=status, region="US-1", instance_id=WEB1)


def img(status: str) -> m.CustomImage:
    return m.CustomImage(id="BRK-1I", name="golden", status=status, region="US-1", snapshot_id="BRK-1S")


def fw(*attached: str) -> m.Firewall:
    attachments = [{"instance_id": i, "status": "SUCCESS"} for i in attached]
    fields = {
        "id": "BRK-1F",
        "name": "web",
        "status": "SUCCESS",
        "region": "US-1",
        "attachments": attachments,
    }
    return m.Firewall.model_validate(fields)


def key() -> m.SSHKey:
    return m.SSHKey(id="BRK-1K", name="ops", status="ACTIVE", public_key="ssh-ed25519 AAAA ops")


NONE = DeletionInputs()
CASES = [
    # (name, plan, resource, inputs, the step's type, its reason or call, words its message holds)
    ("nothing listed: done", plan_delete_volume, None, NONE, steps.Done, None, "nothing"),
    ("a detached volume is deleted", plan_delete_volume, vol(), NONE, Delete, "BRK-1V", "deleting volume"),
    ("a volume in transition waits", plan_delete_volume, vol("DETACHING", instance_id=WEB1), NONE,
     steps.Wait, "Detaching", "DETACHING"),
    ("a volume on a SHUTOFF instance is detached first", plan_delete_volume, vol("ATTACHED", instance_id=WEB1),
     DeletionInputs(vm("SHUTOFF"), "web-1"), steps.Detach, WEB1, "detaching before deletion"),
    ("on an ACTIVE managed instance it waits, naming the object", plan_delete_volume,
     vol("ATTACHED", instance_id=WEB1), DeletionInputs(vm("ACTIVE"), "web-1"), steps.Blocked,
     Reason.DELETION_BLOCKED, "set spec.powerState: Stopped on BarrackInstance web-1"),
    ("on an ACTIVE unmanaged instance it says stop it on Barrack", plan_delete_volume,
     vol("ATTACHED", instance_id=WEB1), DeletionInputs(vm("ACTIVE"), None), steps.Blocked,
     Reason.DELETION_BLOCKED, "no BarrackInstance here manages it"),
    ("a hibernated managed instance is restored, then stopped", plan_delete_volume,
     vol("ATTACHED", instance_id=WEB1), DeletionInputs(vm("HIBERNATED"), "web-1"), steps.Blocked,
     Reason.DELETION_BLOCKED, "it restores, then stops"),
    ("a boot volume never detaches", plan_delete_volume, vol("ATTACHED", instance_id=WEB1, bootable=True),
     DeletionInputs(vm("SHUTOFF"), "web-1"), steps.Blocked, Reason.DELETION_BLOCKED, "never detached"),
    ("an instance is deleted", plan_delete_instance, vm("ACTIVE"), NONE, Delete, WEB1, "deleting instance"),
    ("an instance in transition waits", plan_delete_instance, vm("STOPPING"), NONE, steps.Wait, "Stopping",
     "STOPPING"),
    ("an instance Barrack no longer lists: done", plan_delete_instance, None, NONE, steps.Done, None, "nothing"),
    ("a snapshot being made waits", plan_delete_snapshot, snap("CREATING"), NONE, steps.Wait, "Creating", ""),
    ("a made snapshot is deleted", plan_delete_snapshot, snap("SUCCESS"), NONE, Delete, "BRK-1S", "snapshot"),
    ("a snapshot gone: done", plan_delete_snapshot, None, NONE, steps.Done, None, "nothing"),
    ("an image being made waits", plan_delete_image, img("CREATING"), NONE, steps.Wait, "Creating", ""),
    ("an available image is deleted", plan_delete_image, img("AVAILABLE"), NONE, Delete, "BRK-1I", "image"),
    ("an attached firewall is detached from all, then deleted", plan_delete_firewall, fw(WEB1), NONE,
     steps.SetAttachments, (), "detaching from every instance"),
    ("a free firewall is deleted", plan_delete_firewall, fw(), NONE, Delete, "BRK-1F", "firewall"),
    ("a firewall gone: done", plan_delete_firewall, None, NONE, steps.Done, None, "nothing"),
    ("an SSH key is deleted", plan_delete_ssh_key, key(), NONE, Delete, "BRK-1K", "SSH key"),
    ("an SSH key gone: done", plan_delete_ssh_key, None, NONE, steps.Done, None, "nothing"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "plan", "resource", "inputs", "kind", "what", "words"), CASES,
                         ids=[c[0] for c in CASES])  # fmt: skip
def test_delete_plan(
    name: str, plan: Any, resource: Any, inputs: DeletionInputs, kind: type, what: Any, words: str
) -> None:
    step = plan(resource, inputs)
    assert type(step) is kind, step
    text = getattr(step, "message", "") or getattr(step, "doing", "")
    assert words in text, text
    if isinstance(step, steps.Blocked | steps.Wait):
        assert step.reason == what
    elif isinstance(step, Delete):
        assert step.resource_id == what and step.refusal == Reason.DELETION_BLOCKED
    elif isinstance(step, steps.Detach):
        assert step.instance_id == what and step.refusal == Reason.DELETION_BLOCKED
    elif isinstance(step, steps.SetAttachments):
        assert step.instance_ids == what and isinstance(step.then, Delete)


def test_every_call_a_deletion_makes_is_refused_as_deletion_blocked() -> None:
    calls = [c for c in (case[1](case[2], case[3]) for case in CASES) if isinstance(c, steps.Call)]
    assert calls and {c.refusal for c in calls} == {Reason.DELETION_BLOCKED}
