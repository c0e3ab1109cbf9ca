"""Every reason docs/conditions.md promises, reached end to end (issue 26): Barrack's refusals
through the simulator's ``refuse`` fault (a route answered with a refusal instead of acting),
Kubernetes' refusal of the create mark through a ValidatingAdmissionPolicy, and the states and
faults that lead to the others. Each object reads its own reason, and converges once the cause
goes."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.conftest import (
    OPERATOR_SETTINGS,
    Kube,
    Operator,
    Sim,
    barrack_named,
    instance,
    running_operator,
    ssh_key,
    volume,
    wait_for,
)
from tests.integration.test_backups import _active_source, image, snapshot

pytestmark = pytest.mark.integration


@pytest.fixture
def operator_settings(kube: Kube) -> dict[str, str]:
    # The operator's own namespace (where a BarrackAccount's Secret is read) is the test's.
    return {**OPERATOR_SETTINGS, "LEADER_ELECTION_NAMESPACE": kube.namespace}


def refuse(sim: Sim, **routes: dict[str, Any]) -> None:
    sim.admin("faults", {"refuse": routes})


def conflict(message: str) -> dict[str, Any]:
    return {"status": 409, "error_code": "busy", "message": message}


def firewall(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "barrack.ai/v1alpha1", "kind": "BarrackFirewall", "metadata": {"name": name},
            "spec": {"region": "US-1", **spec}}  # fmt: skip


def test_barracks_refusals_each_read_as_their_own_reason(kube: Kube, sim: Sim, operator: Operator) -> None:
    kube.apply(ssh_key())
    kube.apply(volume("grow"))
    kube.apply(volume("late"))
    kube.apply(instance("gpu", sim.image()))
    kube.apply(instance("ip", sim.image(), publicIP=True))
    for kind, name in (("bvol", "grow"), ("bvol", "late"), ("binst", "gpu"), ("binst", "ip")):
        kube.wait_condition(kind, name, "Ready", "True", timeout=90)
    refuse(
        sim,
        resize_volume=conflict("the volume is being backed up"),
        stop_instance=conflict("a maintenance task runs on the host"),
        set_public_ip=conflict("the address pool is being rebalanced"),
        attach_volumes=conflict("the host's attach slots are all in use"),
        create_volume={"status": 409, "error_code": "quota_exceeded", "message": "volume quota reached"},
        create_firewall={"status": 400, "error_code": "bad_request", "message": "description is not allowed"},
    )
    kube.patch("bvol", "grow", {"spec": {"sizeGB": 200}})
    kube.patch("binst", "gpu", {"spec": {"powerState": "Stopped"}})
    kube.patch("binst", "ip", {"spec": {"publicIP": False}})
    kube.patch("bvol", "late", {"spec": {"instanceRef": {"name": "ip"}}})
    kube.apply(volume("more"))
    kube.apply(firewall("bad", description="edge"))
    expected = [
        ("bvol", "grow", "ResizeBlocked", "the volume is being backed up"),
        ("binst", "gpu", "PowerBlocked", "a maintenance task runs on the host"),
        ("binst", "ip", "PreconditionFailed", "the address pool is being rebalanced"),
        ("bvol", "late", "AttachBlocked", "the host's attach slots are all in use"),
        ("bvol", "more", "CreateBlocked", "volume quota reached"),
        ("bfw", "bad", "InvalidSpec", "description is not allowed"),
    ]
    for kind, name, reason, words in expected:
        synced = kube.wait_condition(kind, name, "Synced", "False", reason=reason, timeout=60)
        assert words in synced["message"], synced["message"]
        assert any(e["reason"] == reason and e["type"] == "Warning" for e in kube.events(name)), name
    assert kube.condition("bvol", "late", "Attached")["status"] == "False"  # type: ignore[index]
    refuse(sim)  # the causes go: each converges
    for kind, name, _, _ in expected:
        kube.wait_condition(kind, name, "Ready", "True", timeout=120)
    assert kube.get("bvol", "grow")["status"]["sizeGB"] == 200  # type: ignore[index]
    assert kube.condition("bvol", "late", "Attached")["status"] == "True"  # type: ignore[index]


def test_a_rate_limited_call_waits_as_barrack_says(kube: Kube, sim: Sim, operator: Operator) -> None:
    refuse(sim, create_ssh_key={"status": 429, "error_code": "rate_limited", "message": "slow down",
                                "retry_after": 2})  # fmt: skip
    kube.apply(ssh_key())
    limited = kube.wait_condition("bkey", "ops-key", "Synced", "False", reason="RateLimited", timeout=90)
    assert "retrying after 2s" in limited["message"], limited["message"]
    assert sim.calls().get("create_ssh_key 429", 0) >= 2  # the client waited and asked again
    refuse(sim)
    kube.wait_condition("bkey", "ops-key", "Ready", "True", timeout=60)


DENY_MARK = """
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: deny-create-mark-NS}
spec:
  failurePolicy: Fail
  matchConstraints:
    resourceRules:
    - apiGroups: [barrack.ai]
      apiVersions: [v1alpha1]
      operations: [UPDATE]
      resources: [barrackvolumes]
  validations:
  - expression: >-
      !has(object.metadata.annotations) ||
      !('barrack.ai/create-requested' in object.metadata.annotations)
    message: the create mark is refused here
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: deny-create-mark-NS}
spec:
  policyName: deny-create-mark-NS
  validationActions: [Deny]
  matchResources:
    namespaceSelector:
      matchLabels: {kubernetes.io/metadata.name: NS}
    objectSelector:
      matchLabels: {marks: refused}
"""


def test_a_refused_create_mark_creates_nothing_and_says_kubernetes_refused(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    """The create mark is the write before every create: refused (here by an admission policy on
    the object, not on its status), no create is sent and the object reads KubernetesUnavailable."""
    policy = DENY_MARK.replace("NS", kube.namespace)
    kube.plane.kubectl("apply", "-f", "-", input_text=policy)
    try:
        # A paused probe (the operator leaves it alone) shows when the policy is enforced: a mark
        # written on it by hand is refused.
        probe = volume("probe")
        probe["metadata"].update(labels={"marks": "refused"}, annotations={"barrack.ai/paused": "true"})
        kube.apply(probe)

        def enforced() -> bool:
            marked = kube.run("annotate", "bvol", "probe", "barrack.ai/create-requested=probe", check=False)
            return marked.returncode != 0 and "the create mark is refused here" in marked.stderr

        wait_for(enforced, 60, what="the admission policy to be enforced")
        denied = volume("denied")
        denied["metadata"]["labels"] = {"marks": "refused"}
        kube.apply(denied)
        kube.wait_condition("bvol", "denied", "Synced", "False", reason="KubernetesUnavailable", timeout=60)
        message = kube.condition("bvol", "denied", "Synced")["message"]  # type: ignore[index]
        assert "the create mark is refused here" in message and "the operator retries" in message
        assert not [c for c in sim.admin("created") if c["name"] == "denied"]
    finally:
        kube.plane.kubectl("delete", "-f", "-", "--ignore-not-found", input_text=policy)
    kube.wait_condition("bvol", "denied", "Ready", "True", timeout=60)
    assert len([c for c in sim.admin("created") if c["name"] == "denied"]) == 1


def test_deletion_waits_for_an_attached_firewall_and_a_key_in_use(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    """A firewall is detached from its instances before it goes; when Barrack refuses (409) that
    reads DeletionBlocked. A key in use by an instance: Barrack refuses its deletion (409) until
    the instance goes."""
    kube.apply(ssh_key())
    kube.apply(instance("gpu", sim.image()))
    kube.apply(firewall("edge", instanceRefs=[{"name": "gpu"}]))
    kube.wait_condition("binst", "gpu", "Ready", "True", timeout=90)
    kube.wait_condition("bfw", "edge", "Ready", "True", timeout=60)
    refuse(sim, attach_firewall=conflict("the firewall is being applied to the host"))
    kube.run("delete", "bfw", "edge", "--wait=false")
    held = kube.wait_condition("bfw", "edge", "Synced", "False", reason="DeletionBlocked", timeout=60)
    assert "the firewall is being applied to the host" in held["message"]
    refuse(sim)
    wait_for(lambda: kube.get("bfw", "edge") is None, 60, what="the firewall to go once free")
    kube.run("delete", "bkey", "ops-key", "--wait=false")
    in_use = kube.wait_condition("bkey", "ops-key", "Synced", "False", reason="DeletionBlocked", timeout=60)
    gpu_id = kube.get("binst", "gpu")["status"]["id"]  # type: ignore[index]
    assert "is used by" in in_use["message"] and gpu_id in in_use["message"], in_use["message"]
    kube.run("delete", "binst", "gpu", "--timeout=90s")
    wait_for(lambda: kube.get("bkey", "ops-key") is None, 60, what="the key to go once unused")
    assert sim.inventory()["ssh_keys"] == []


def test_a_volume_clone_end_to_end(kube: Kube, sim: Sim, operator: Operator) -> None:
    kube.apply(volume("source", sizeGB=300, volumeType="NVMe"))
    kube.wait_condition("bvol", "source", "Ready", "True", timeout=60)
    kube.apply(volume("copy", sizeGB=300, volumeType="NVMe", source={"volumeRef": {"name": "source"}}))
    kube.wait_condition("bvol", "copy", "Ready", "True", timeout=90)
    source_id = kube.get("bvol", "source")["status"]["id"]  # type: ignore[index]
    copy = kube.get("bvol", "copy")["status"]  # type: ignore[index]
    assert copy["id"] != source_id and copy["sizeGB"] == 300
    assert sim.calls().get("clone_volume 200", 0) == 1 and "create_volume 200" in sim.calls()
    made = [c for c in sim.admin("created") if c["name"] == "copy"]
    assert len(made) == 1


def test_an_image_or_restore_from_another_region_is_invalid_and_calls_nothing(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    _active_source(kube, sim)
    kube.apply(snapshot("nightly", instanceRef={"name": "source"}))
    kube.wait_condition("bsnap", "nightly", "Ready", "True", timeout=60)
    kube.apply(image("golden", snapshotRef={"name": "nightly"}))
    kube.wait_condition("bimg", "golden", "Ready", "True", timeout=60)
    before = {k: n for k, n in sim.calls().items() if k.startswith(("create_instance", "restore_snapshot"))}
    for name, source in (("from-image", {"customImageRef": {"name": "golden"}}),
                         ("restored", {"restoreFrom": {"snapshotRef": {"name": "nightly"}}})):  # fmt: skip
        manifest = instance(name, "", region="CANADA-1", **source)
        del manifest["spec"]["imageId"]
        kube.apply(manifest)
        invalid = kube.wait_condition("binst", name, "Synced", "False", reason="InvalidSpec", timeout=60)
        assert "US-1" in invalid["message"] and "CANADA-1" in invalid["message"], invalid["message"]
    after = {k: n for k, n in sim.calls().items() if k.startswith(("create_instance", "restore_snapshot"))}
    assert after == before, "a boot source from another region was sent to Barrack"
    # A restore under a Barrack name another instance has: NameTaken, spec.name as the fix.
    clash = barrack_named(instance("clash", "", restoreFrom={"snapshotRef": {"name": "nightly"}}), "source")
    del clash["spec"]["imageId"]
    kube.apply(clash)
    taken = kube.wait_condition("binst", "clash", "Synced", "False", reason="NameTaken", timeout=60)
    assert "set spec.name" in taken["message"] and "managed by BarrackInstance" in taken["message"]
    assert not [k for k in sim.calls() if k.startswith("restore_snapshot")], "the restore was sent"


def _default_account(kube: Kube, sim: Sim, **spec: Any) -> str:
    """The BarrackAccount default, over the operator's own key (read from a Secret in the
    operator's namespace, which this module's operator has as the test's)."""
    kube.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "default-key"},
                "stringData": {"api-key": sim.api_key}})  # fmt: skip
    account = {"apiVersion": "barrack.ai/v1alpha1", "kind": "BarrackAccount", "metadata": {"name": "default"},
               "spec": {"secretRef": {"name": "default-key"}, "apiUrl": sim.api, **spec}}  # fmt: skip
    return json.dumps(account)


def test_budget_refuses_a_restore_and_a_power_on(kube: Kube, sim: Sim, operator: Operator) -> None:
    """The account's budget (maxHourlySpend) refuses what would raise the burn above it: a restore
    of a snapshot into a new instance, and powering a hibernated instance on (billed in full
    again); neither call is sent."""
    kube.apply(ssh_key())
    kube.apply(instance("gpu", sim.image(), gpuCount=2))
    kube.wait_condition("binst", "gpu", "Ready", "True", timeout=90)
    kube.apply(snapshot("nightly", instanceRef={"name": "gpu"}))
    kube.wait_condition("bsnap", "nightly", "Ready", "True", timeout=60)
    kube.patch("binst", "gpu", {"spec": {"powerState": "Hibernated"}})
    kube.wait_condition("binst", "gpu", "Ready", "True", timeout=60)
    account = _default_account(kube, sim, maxHourlySpend=0.5)
    kube.plane.kubectl("apply", "-f", "-", input_text=account)
    try:
        before = {
            k: n for k, n in sim.calls().items() if k.startswith(("restore_snapshot", "restore_instance"))
        }
        restored = instance("restored", "", gpuCount=2, restoreFrom={"snapshotRef": {"name": "nightly"}})
        del restored["spec"]["imageId"]
        kube.apply(restored)
        over = kube.wait_condition(
            "binst", "restored", "Synced", "False", reason="BudgetExceeded", timeout=60
        )
        assert "maxHourlySpend" in over["message"], over["message"]
        kube.patch("binst", "gpu", {"spec": {"powerState": "Running"}})
        held = kube.wait_condition("binst", "gpu", "Synced", "False", reason="BudgetExceeded", timeout=60)
        assert "maxHourlySpend" in held["message"], held["message"]
        after = {
            k: n for k, n in sim.calls().items() if k.startswith(("restore_snapshot", "restore_instance"))
        }
        assert after == before, "a call the budget refused was sent"
    finally:
        kube.plane.kubectl("delete", "barrackaccount", "default", "--ignore-not-found")


def test_credits_ok_once_a_top_up_lengthens_the_runway(kube: Kube, sim: Sim, operator: Operator) -> None:
    sim.admin("config", {"balance": 2.0})
    kube.plane.kubectl("apply", "-f", "-", input_text=_default_account(kube, sim, creditsLowHours=24))
    try:
        kube.apply(ssh_key())
        kube.apply(instance("gpu", sim.image(), gpuCount=2))
        kube.wait_condition("binst", "gpu", "Ready", "True", timeout=90)

        def credits(reason: str) -> dict[str, Any] | None:
            out = kube.plane.kubectl("get", "bacct", "default", "-o", "json")
            status = json.loads(out.stdout).get("status") or {}
            return next((c for c in status.get("conditions", []) if c["type"] == "CreditsLow"
                         and c["reason"] == reason), None)  # fmt: skip

        wait_for(lambda: credits("CreditsLow"), 60, what="CreditsLow on the account")
        sim.admin("top-up", {"amount": 10_000})
        ok = wait_for(lambda: credits("CreditsOk"), 60, what="CreditsOk after the top-up")
        assert ok["status"] == "False" and "hours of credit left" in ok["message"]
    finally:
        kube.plane.kubectl("delete", "barrackaccount", "default", "--ignore-not-found")


def test_a_schedule_skips_an_instance_whose_last_snapshot_is_not_ready(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    sim.admin("config", {"transition_overrides": {"create_snapshot": 40}})  # the first stays CREATING
    kube.apply(ssh_key())
    kube.apply(instance("gpu", sim.image()))
    kube.wait_condition("binst", "gpu", "Ready", "True", timeout=90)
    kube.apply(
        yaml.safe_load(f"""
apiVersion: barrack.ai/v1alpha1
kind: BarrackSnapshotSchedule
metadata: {{name: often, namespace: {kube.namespace}}}
spec: {{schedule: "@every 10s", keep: 2, instanceRef: {{name: gpu}}}}
""")
    )

    def skipped() -> list[dict[str, Any]]:
        return [
            e for e in kube.events("often") if e["reason"] == "ScheduledRun" and "skipped" in e["message"]
        ]

    events = wait_for(skipped, 60, what="a run that skipped the instance")
    assert "is not Ready yet" in events[0]["message"]
    made = [c for c in sim.admin("created") if c["name"].startswith("gpu-")]
    assert len(made) == 1, "a second snapshot was asked for while the first was being made"


FAILPOINTS = Path(__file__).resolve().parent / "failpoints"


def test_an_unexpected_error_in_a_pass_reads_operator_error_and_recovers(
    kube: Kube,
    sim: Sim,
    api_key_file: Path,
    tmp_path: Path,
    operator_settings: dict[str, str],
    request: pytest.FixtureRequest,
) -> None:
    """The catch-all, end to end: a pass of one volume raises after its create was sent (the
    failpoint in ``failpoints/sitecustomize.py``, put into the operator process from outside). That
    volume reads Synced=False OperatorError with the traceback in the log, the operator and every
    other object go on, the pass is retried with backoff, and once the fault ends the volume is
    Ready over the one Barrack volume its first pass created."""
    failpoint = tmp_path / "failpoint"
    failpoint.write_text("flaky\n")
    path = os.pathsep.join(p for p in (str(FAILPOINTS), os.environ.get("PYTHONPATH", "")) if p)
    env = {"PYTHONPATH": path, "BARRACK_TEST_FAILPOINT": str(failpoint)}
    with running_operator(
        kube, sim, api_key_file, tmp_path, operator_settings, extra_env=env, request=request
    ) as op:
        kube.apply(volume("flaky"))
        kube.apply(volume("steady"))
        failed = kube.wait_condition("bvol", "flaky", "Synced", "False", reason="OperatorError", timeout=60)
        assert "unexpected RuntimeError" in failed["message"] and "retries" in failed["message"]
        kube.wait_condition("bvol", "steady", "Ready", "True", timeout=60)
        wait_for(lambda: op.log().count("failpoint: the reconcile of flaky") >= 2, 60, what="a retried pass")
        assert "Traceback" in op.log() and op.alive()
        ready_before = kube.condition("bvol", "flaky", "Ready")
        assert ready_before is None or ready_before["status"] != "True", "Ready=True over a failing pass"

        failpoint.unlink()
        kube.wait_condition("bvol", "flaky", "Ready", "True", reason="Available", timeout=90)
        kube.wait_condition("bvol", "flaky", "Synced", "True", reason="Reconciled", timeout=30)
        kube.wait_condition("bvol", "flaky", "Attached", "False", reason="Detached", timeout=30)
    creates = Counter(c["name"] for c in sim.admin("created") if "flaky" in c["name"])
    assert list(creates.values()) == [1], f"the failing passes created again: {creates}"
