"""Table tests of each kind's plan and of the conditions the frame builds from it, in the style of
crossplane-runtime's reconciler tests: every case says, in plain words, why it expects what it does.
The plans are pure (spec and what Barrack lists in, one step out), so no simulator is needed."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from barrack_operator.barrack import models as m
from barrack_operator.conditions import ATTACHED, READY, SYNCED, Reason
from barrack_operator.resources import specs, steps
from barrack_operator.resources.firewall import FirewallInputs, FirewallReconciler, plan_firewall
from barrack_operator.resources.frame import report, state_step
from barrack_operator.resources.instance import InstanceInputs, InstanceReconciler, plan_instance
from barrack_operator.resources.model import Context, Outcome, RefInfo, Timing
from barrack_operator.resources.power import PowerOverride
from barrack_operator.resources.sshkey import SSHKeyReconciler, plan_ssh_key
from barrack_operator.resources.volume import (
    VolumeInputs,
    VolumeReconciler,
    attached_condition,
    clone_mismatch,
    plan_volume,
)
from tests.unit.conftest import SSH_PUBLIC_KEY

WEB1, WEB2 = "BRK-1D", "BRK-2D"


def vm(instance_id: str = WEB1, status: str = "ACTIVE", region: str = "US-1", **kw: Any) -> m.VMInstance:
    fields: dict[str, Any] = {"name": f"web-{instance_id[4]}", "gpu_model": "A40", "gpu_count": 1}
    return m.VMInstance(id=instance_id, status=status, region=region, **{**fields, **kw})


def vol(**kw: Any) -> m.Volume:
    fields: dict[str, Any] = {
        "id": "BRK-1V",
        "name": "data",
        "status": "AVAILABLE",
        "region": "US-1",
        "size_gb": 100,
        "volume_type": "NVMe",
    }
    return m.Volume(**{**fields, **kw})


def vspec(**kw: Any) -> specs.BarrackVolumeSpec:
    return specs.BarrackVolumeSpec.model_validate({"region": "US-1", "sizeGB": 100, **kw})


def inputs(
    target: str | None = None, *instances: m.VMInstance, managers: dict[str, str] | None = None
) -> VolumeInputs:
    by_id = {i.id: i for i in instances}
    return VolumeInputs(target, by_id.get(target or ""), by_id, None, managers or {})


@dataclass
class Case:
    reason: str
    step: steps.Step
    ready: tuple[bool, str]
    synced: tuple[bool, str]
    extra: dict[str, tuple[bool, str]] = field(default_factory=dict)
    message_has: str = ""


def conditions_of(
    step: steps.Step, volume: m.Volume | None = None, vin: VolumeInputs | None = None
) -> dict[str, tuple[bool, str]]:
    out = Outcome()
    if volume is not None or vin is not None:
        out.conditions += attached_condition(volume, step, vin)
    report(out, step, Context(client=None, inventory=None, refs=None, timing=Timing()))  # type: ignore[arg-type]
    return {c.type: (c.status, c.reason) for c in out.conditions}


# Volumes -----------------------------------------------------------------------------------------

VOLUME_CASES: list[
    tuple[
        str,
        m.Volume,
        specs.BarrackVolumeSpec,
        VolumeInputs,
        type,
        tuple[bool, str],
        tuple[bool, str],
        tuple[bool, str] | None,
        str,
    ]
] = [
    (
        "a detached volume that matches a spec without instance is Ready and Detached",
        vol(),
        vspec(),
        inputs(),
        steps.Done,
        (True, "Available"),
        (True, "Reconciled"),
        (False, "Detached"),
        "",
    ),
    (
        "a larger sizeGB on NVMe resizes, and a refusal would read ResizeBlocked",
        vol(),
        vspec(sizeGB=200),
        inputs(),
        steps.Resize,
        (False, "Progressing"),
        (True, "Reconciled"),
        (False, "Detached"),
        "",
    ),
    (
        "a larger sizeGB on SSD cannot be met: InvalidSpec",
        vol(volume_type="SSD"),
        vspec(sizeGB=200, volumeType="SSD"),
        inputs(),
        steps.Blocked,
        (False, "InvalidSpec"),
        (False, "InvalidSpec"),
        (False, "Detached"),
        "only NVMe and HDD grow",
    ),
    (
        "an instance in the spec that is ACTIVE gets an attach",
        vol(),
        vspec(instanceId=WEB1),
        inputs(WEB1, vm()),
        steps.Attach,
        (False, "Progressing"),
        (True, "Reconciled"),
        (False, "Detached"),
        "",
    ),
    (
        "an instance that is HIBERNATED makes the attach wait: AttachBlocked, not an error",
        vol(),
        vspec(instanceId=WEB1),
        inputs(WEB1, vm(status="HIBERNATED")),
        steps.Wait,
        (False, "AttachBlocked"),
        (True, "Reconciled"),
        (False, "AttachBlocked"),
        "HIBERNATED",
    ),
    (
        "an instance in another region can never take the volume: InvalidSpec",
        vol(),
        vspec(instanceId=WEB1),
        inputs(WEB1, vm(region="CANADA-1")),
        steps.Blocked,
        (False, "InvalidSpec"),
        (False, "InvalidSpec"),
        (False, "InvalidSpec"),
        "only in its own region",
    ),
    (
        "moving from web-1 to web-2 while web-1 is ACTIVE is DetachBlocked, and Attached still names web-1",
        vol(status="ATTACHED", instance_id=WEB1),
        vspec(instanceId=WEB2),
        inputs(WEB2, vm(), vm(WEB2), managers={WEB1: "web-1"}),
        steps.Blocked,
        (False, "DetachBlocked"),
        (False, "DetachBlocked"),
        (True, "Attached"),
        "set spec.powerState: Stopped on BarrackInstance web-1",
    ),
    (
        "moving from a SHUTOFF web-1 detaches first",
        vol(status="ATTACHED", instance_id=WEB1),
        vspec(instanceId=WEB2),
        inputs(WEB2, vm(status="SHUTOFF"), vm(WEB2)),
        steps.Detach,
        (False, "Progressing"),
        (True, "Reconciled"),
        (True, "Attached"),
        "",
    ),
    (
        "an attached volume whose instance Barrack no longer lists waits for the volume listing",
        vol(status="ATTACHED", instance_id=WEB1),
        vspec(),
        inputs(),
        steps.Wait,
        (False, "Progressing"),
        (True, "Reconciled"),
        (True, "Attached"),
        "gone from Barrack",
    ),
    (
        "a boot volume without instanceRef is Ready and Attached as BootVolume, never DetachBlocked",
        vol(status="ATTACHED", instance_id=WEB1, bootable=True),
        vspec(bootable=True, imageId="BRK-1I"),
        inputs(None, vm()),
        steps.Done,
        (True, "Available"),
        (True, "Reconciled"),
        (True, "BootVolume"),
        "",
    ),
    (
        "a boot volume whose instanceRef names another instance: InvalidSpec",
        vol(status="ATTACHED", instance_id=WEB1, bootable=True),
        vspec(bootable=True, imageId="BRK-1I", instanceId=WEB2),
        inputs(WEB2, vm(), vm(WEB2)),
        steps.Blocked,
        (False, "InvalidSpec"),
        (False, "InvalidSpec"),
        (True, "BootVolume"),
        "never detaches",
    ),
    (
        "an unmanaged instance in the way names the Barrack id to stop",
        vol(status="ATTACHED", instance_id=WEB1),
        vspec(),
        inputs(None, vm()),
        steps.Blocked,
        (False, "DetachBlocked"),
        (False, "DetachBlocked"),
        (True, "Attached"),
        f"stop instance {WEB1} on Barrack",
    ),
]


@pytest.mark.parametrize(
    ("reason", "volume", "spec", "vin", "step_type", "ready", "synced", "attached", "message_has"),
    VOLUME_CASES,
    ids=[c[0] for c in VOLUME_CASES],
)
def test_volume_plan(
    reason: str,
    volume: m.Volume,
    spec: specs.BarrackVolumeSpec,
    vin: VolumeInputs,
    step_type: type,
    ready: tuple[bool, str],
    synced: tuple[bool, str],
    attached: tuple[bool, str] | None,
    message_has: str,
) -> None:
    step = plan_volume(spec, volume, vin)
    assert isinstance(step, step_type), reason
    got = conditions_of(step, volume, vin)
    assert got[READY] == ready, reason
    assert got[SYNCED] == synced, reason
    assert got.get(ATTACHED) == attached, reason
    if message_has:
        assert message_has in getattr(step, "message", ""), reason


def test_each_volume_call_carries_its_own_refusal_reason() -> None:
    assert steps.resize(200, 100).refusal == Reason.RESIZE_BLOCKED  # never AttachBlocked
    assert steps.attach(WEB1, "web-1").refusal == Reason.ATTACH_BLOCKED
    assert steps.detach(WEB1, "web-1").refusal == Reason.DETACH_BLOCKED
    assert steps.power("stop", "ACTIVE", "SHUTOFF").refusal == Reason.POWER_BLOCKED


def test_a_clone_must_match_its_source() -> None:
    source = vol(region="CANADA-1", volume_type="HDD")
    why = clone_mismatch(vspec(source={"volumeId": "BRK-1V"}), source)
    assert why is not None and "region US-1" in why and "volumeType NVMe" in why
    assert clone_mismatch(vspec(source={"volumeId": "BRK-1V"}), vol()) is None


# Every kind: Barrack's state word first --------------------------------------------------------------

STATE_CASES = [
    ("ERROR is never Ready, for a volume", "volume", "ERROR", m.VolumeState, Reason.ERROR),
    ("ERROR is never Ready, for an instance", "instance", "ERROR", m.InstanceState, Reason.ERROR),
    ("ERROR is never Ready, for a firewall", "firewall", "ERROR", m.FirewallState, Reason.ERROR),
    (
        "a word the operator does not know is UnknownState, not an exception",
        "instance",
        "SUSPENDED",
        m.InstanceState,
        Reason.UNKNOWN_STATE,
    ),
    ("an unknown volume state too", "volume", "IN-USE-MAYBE", m.VolumeState, Reason.UNKNOWN_STATE),
]


@pytest.mark.parametrize(
    ("reason", "what", "state", "states", "expected"), STATE_CASES, ids=[c[0] for c in STATE_CASES]
)
def test_state_comes_before_the_plan(
    reason: str, what: str, state: str, states: Any, expected: Reason
) -> None:
    step = state_step(what, "BRK-1X", state, states)
    assert isinstance(step, steps.Blocked) and step.reason == expected, reason
    got = conditions_of(step)
    assert got[READY] == (False, expected) and got[SYNCED] == (False, expected), reason


def test_a_transitional_state_waits_with_the_state_as_reason() -> None:
    step = state_step("instance", "BRK-1D", "STOPPING", m.InstanceState)
    assert isinstance(step, steps.Wait) and step.reason == "Stopping"
    assert conditions_of(step) == {READY: (False, "Stopping"), SYNCED: (True, "Reconciled")}
    assert state_step("instance", "BRK-1D", "ACTIVE", m.InstanceState) is None


# Instances ---------------------------------------------------------------------------------------


def ispec(**kw: Any) -> specs.BarrackInstanceSpec:
    base = {"region": "US-1", "gpuModel": "A40", "imageId": "BRK-1I", "sshKeyRefs": [{"name": "k"}]}
    return specs.BarrackInstanceSpec.model_validate({**base, **kw})


INSTANCE_CASES = [
    (
        "an ACTIVE instance asked to stop gets a stop",
        ispec(powerState="Stopped"),
        vm(public_ip="1.2.3.4"),
        steps.Power,
        "stop",
    ),
    (
        "a HIBERNATED instance asked to run is restored",
        ispec(powerState="Running"),
        vm(status="HIBERNATED"),
        steps.Power,
        "restore",
    ),
    (
        "a HIBERNATED instance whose spec leaves powerState out is left as it is",
        ispec(),
        vm(status="HIBERNATED"),
        steps.Done,
        "",
    ),
    (
        "a SHUTOFF instance asked to hibernate starts first",
        ispec(powerState="Hibernated"),
        vm(status="SHUTOFF"),
        steps.Power,
        "start",
    ),
    (
        "an ACTIVE instance without the public IP it asks for gets one",
        ispec(publicIP=True),
        vm(public_ip=None),
        steps.SetPublicIP,
        "",
    ),
    (
        "an instance whose spec leaves publicIP out keeps what it has",
        ispec(),
        vm(public_ip=None),
        steps.Done,
        "",
    ),
    (
        "an instance whose spec leaves securityRules out keeps its rules",
        ispec(),
        vm(
            public_ip="1.2.3.4",
            security_rules=[m.FirewallRule(id="r1", direction="ingress", protocol="icmp")],
        ),
        steps.Done,
        "",
    ),
    (
        "a missing security rule is added",
        ispec(
            securityRules=[
                {"direction": "ingress", "protocol": "tcp", "portRangeMin": 22, "portRangeMax": 22}
            ]
        ),
        vm(public_ip="1.2.3.4"),
        steps.SetRules,
        "",
    ),
    ("an instance as asked is Done", ispec(), vm(public_ip="1.2.3.4"), steps.Done, ""),
]


@pytest.mark.parametrize(
    ("reason", "spec", "instance", "step_type", "action"), INSTANCE_CASES, ids=[c[0] for c in INSTANCE_CASES]
)
def test_instance_plan(
    reason: str, spec: specs.BarrackInstanceSpec, instance: m.VMInstance, step_type: type, action: str
) -> None:
    step = plan_instance(spec, instance)
    assert isinstance(step, step_type), reason
    if action:
        assert isinstance(step, steps.Power) and step.action == action, reason


# Firewalls ---------------------------------------------------------------------------------------


def fw(attached: list[str], status: str = "SUCCESS") -> m.Firewall:
    return m.Firewall(
        id="BRK-1F",
        name="web",
        status=status,
        region="US-1",
        attachments=[m.FirewallAttachment(instance_id=i, status="SUCCESS") for i in attached],
    )


def fspec(*names: str) -> specs.BarrackFirewallSpec:
    return specs.BarrackFirewallSpec.model_validate(
        {"region": "US-1", "instanceRefs": [{"name": n} for n in names]}
    )


def known(instance_id: str | None) -> RefInfo:
    return RefInfo("uid", instance_id, instance_id is not None, None)


FIREWALL_CASES = [
    (
        "an instance that landed in another region is never attached, and says so",
        fspec("far"),
        fw([]),
        (("far", known(WEB2)),),
        [vm(WEB2, region="NORWAY-1")],
        steps.Blocked,
        (False, "InvalidSpec"),
        (False, "InvalidSpec"),
    ),
    (
        "an ACTIVE referenced instance is attached",
        fspec("a"),
        fw([]),
        (("a", known(WEB1)),),
        [vm()],
        steps.SetAttachments,
        (False, "Progressing"),
        (True, "Reconciled"),
    ),
    (
        "a pending reference keeps every attached instance and detaches none",
        fspec("a", "b"),
        fw([WEB1, WEB2]),
        (("a", known(WEB1)), ("b", known(None))),
        [vm(), vm(WEB2)],
        steps.Blocked,
        (False, "ReferenceNotReady"),
        (False, "ReferenceNotReady"),
    ),
    (
        "a missing object is a pending reference too",
        fspec("a", "gone"),
        fw([WEB1, WEB2]),
        (("a", known(WEB1)), ("gone", None)),
        [vm(), vm(WEB2)],
        steps.Blocked,
        (False, "ReferenceNotReady"),
        (False, "ReferenceNotReady"),
    ),
    (
        "an instance removed from instanceRefs is detached once every reference resolves",
        fspec("a"),
        fw([WEB1, WEB2]),
        (("a", known(WEB1)),),
        [vm(), vm(WEB2)],
        steps.SetAttachments,
        (False, "Progressing"),
        (True, "Reconciled"),
    ),
    (
        "an instance that is not ACTIVE waits: AttachBlocked",
        fspec("a"),
        fw([]),
        (("a", known(WEB1)),),
        [vm(status="SHUTOFF")],
        steps.Wait,
        (False, "AttachBlocked"),
        (True, "Reconciled"),
    ),
    (
        "attachments as asked are Done",
        fspec("a"),
        fw([WEB1]),
        (("a", known(WEB1)),),
        [vm()],
        steps.Done,
        (True, "Available"),
        (True, "Reconciled"),
    ),
]


@pytest.mark.parametrize(
    ("reason", "spec", "firewall", "refs", "instances", "step_type", "ready", "synced"),
    FIREWALL_CASES,
    ids=[c[0] for c in FIREWALL_CASES],
)
def test_firewall_plan(
    reason: str,
    spec: specs.BarrackFirewallSpec,
    firewall: m.Firewall,
    refs: tuple[tuple[str, RefInfo | None], ...],
    instances: list[m.VMInstance],
    step_type: type,
    ready: tuple[bool, str],
    synced: tuple[bool, str],
) -> None:
    step = plan_firewall(spec, firewall, FirewallInputs(refs, {i.id: i for i in instances}))
    assert isinstance(step, step_type), reason
    if isinstance(step, steps.SetAttachments):
        assert set(step.instance_ids) == {i for name, info in refs if info and info.id for i in [info.id]}, (
            reason
        )
    got = conditions_of(step)
    assert got[READY] == ready and got[SYNCED] == synced, reason


def test_a_firewall_attaches_the_instances_of_its_region_and_names_the_others() -> None:
    refs = (("near", known(WEB1)), ("far", known(WEB2)))
    step = plan_firewall(
        fspec("near", "far"),
        fw([]),
        FirewallInputs(refs, {i.id: i for i in [vm(), vm(WEB2, region="NORWAY-1")]}),
    )
    assert isinstance(step, steps.SetAttachments) and set(step.instance_ids) == {WEB1}
    assert isinstance(step.then, steps.Blocked) and "far (BRK-2D) is in NORWAY-1" in step.then.message


def test_a_pending_reference_sends_no_set_that_leaves_an_attached_instance_out() -> None:
    step = plan_firewall(
        fspec("a", "c"),
        fw([WEB2]),
        FirewallInputs((("a", known(WEB1)), ("c", known(None))), {WEB1: vm(), WEB2: vm(WEB2)}),
    )
    assert isinstance(step, steps.SetAttachments) and set(step.instance_ids) == {WEB1, WEB2}
    assert conditions_of(step)[SYNCED] == (False, "ReferenceNotReady")


def _with_ssh_rule(spec: specs.BarrackFirewallSpec) -> specs.BarrackFirewallSpec:
    rule = {"direction": "ingress", "protocol": "tcp", "portRangeMin": 22, "portRangeMax": 22}
    return specs.BarrackFirewallSpec.model_validate({**spec.model_dump(exclude_none=True), "rules": [rule]})


def test_rules_and_an_attach_due_together_are_one_pass_rules_first() -> None:
    step = plan_firewall(
        _with_ssh_rule(fspec("a")), fw([]), FirewallInputs((("a", known(WEB1)),), {WEB1: vm()})
    )
    assert isinstance(step, steps.SetRules) and len(step.add) == 1
    assert isinstance(step.then, steps.SetAttachments) and step.then.instance_ids == (WEB1,)
    assert step.refusal == step.then.refusal  # a 409 in that pass is the attach's (an instance not ACTIVE)
    assert conditions_of(step)[READY] == (False, "Progressing")


def test_rules_while_no_attach_is_due_are_a_pass_of_rules_alone() -> None:
    creating = vm(status="CREATING")
    step = plan_firewall(
        _with_ssh_rule(fspec("a")), fw([]), FirewallInputs((("a", known(WEB1)),), {WEB1: creating})
    )
    assert isinstance(step, steps.SetRules) and step.then is None
    assert conditions_of(step)[READY] == (False, "Progressing")


# SSH keys ----------------------------------------------------------------------------------------


def test_ssh_key_plan_and_a_key_that_differs_is_a_mismatch_not_a_change() -> None:
    spec = specs.BarrackSSHKeySpec.model_validate({"publicKey": SSH_PUBLIC_KEY})
    key = m.SSHKey(id="BRK-1K", name="k", public_key=SSH_PUBLIC_KEY, fingerprint="f")
    assert isinstance(plan_ssh_key(spec, key), steps.Done)
    assert SSHKeyReconciler().mismatches(spec, key) == []
    other = m.SSHKey(id="BRK-1K", name="k", public_key="ssh-ed25519 AAAAother x", fingerprint="SHA256:x")
    assert SSHKeyReconciler().mismatches(spec, other)[0].startswith("publicKey: spec ssh-ed25519")


ADOPTION_CASES = [
    ("a volume in another region", VolumeReconciler(), vspec(), vol(region="CANADA-1"), ["region: spec US-1, Barrack CANADA-1"]),
    ("a volume of another type", VolumeReconciler(), vspec(), vol(volume_type="HDD"), ["volumeType: spec NVMe, Barrack HDD"]),
    ("a sizeGB below Barrack's", VolumeReconciler(), vspec(), vol(size_gb=500), ["sizeGB: spec 100, Barrack 500 (volumes never shrink)"]),
    ("a larger sizeGB is a resize, not a mismatch", VolumeReconciler(), vspec(sizeGB=500), vol(), []),
    ("an instance of another GPU model and count", InstanceReconciler(), ispec(gpuCount=2), vm(gpu_model="L40"),
     ["gpuModel: spec A40, Barrack L40", "gpuCount: spec 2, Barrack 1"]),
    ("a firewall in another region", FirewallReconciler(), fspec(), fw([]).model_copy(update={"region": "NORWAY-1"}),
     ["region: spec US-1, Barrack NORWAY-1"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("reason", "kind", "spec", "item", "expected"), ADOPTION_CASES, ids=[c[0] for c in ADOPTION_CASES]
)
def test_what_barrack_cannot_change_is_a_mismatch(
    reason: str, kind: Any, spec: Any, item: Any, expected: list[str]
) -> None:
    assert kind.mismatches(spec, item) == expected, reason


def test_late_initialization_takes_barracks_values_for_fields_left_out() -> None:
    rule = m.FirewallRule(id="r1", direction="ingress", protocol="tcp", port_range_min=22, port_range_max=22)
    adopted = vm(status="HIBERNATED", public_ip=None, security_rules=[rule])
    plain = InstanceInputs((), None, ())
    values = InstanceReconciler().late_init(ispec(), adopted, plain)
    assert values == {
        "powerState": "Hibernated",
        "securityRules": [
            {"direction": "ingress", "protocol": "tcp", "ethertype": "IPv4", "remoteIPPrefix": "0.0.0.0/0",
             "portRangeMin": 22, "portRangeMax": 22}
        ],
    }  # fmt: skip
    # publicIP is read only from an ACTIVE instance (a stopped one may hold no address either way).
    assert InstanceReconciler().late_init(ispec(), vm(public_ip="1.2.3.4"), plain)["publicIP"] is True
    assert (
        InstanceReconciler().late_init(
            ispec(powerState="Running", publicIP=False, securityRules=[]), vm(), plain
        )
        == {}
    )
    # Hibernated by a power schedule's off-hours: that is the schedule's state, not the instance's own.
    off = replace(plain, power=PowerOverride("nights", True, "Hibernated", None))
    assert "powerState" not in InstanceReconciler().late_init(ispec(), adopted, off)
    assert (
        FirewallReconciler().late_init(
            fspec(), fw([]).model_copy(update={"rules": [rule]}), FirewallInputs((), {})
        )["rules"][0]["portRangeMin"]
        == 22
    )
