"""The operator as a real process, against the real apiserver and the simulator over HTTP."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from barrack_operator.barrack.routes import ROUTES
from barrack_operator.devcluster.cluster import free_port
from barrack_operator.inventory import Inventory
from barrack_operator.resources.kinds import KINDS
from barrack_operator.resources.specs import DNS_SUBDOMAIN_PATTERN
from tests.integration.conftest import (
    API_KEY,
    OPERATOR_SETTINGS,
    WRONG_KEY,
    Kube,
    Operator,
    Sim,
    assert_no_secret,
    instance,
    running_operator,
    ssh_key,
    volume,
    wait_for,
)
from tests.integration.scenarios import barrack_volume, create_attach_blocked_detach_delete
from tests.integration.test_chart import monitoring_docs, monitoring_queries

pytestmark = pytest.mark.integration


def _ready_instance(kube: Kube, sim: Sim, name: str = "web-1", **spec: Any) -> str:
    kube.apply(ssh_key())
    kube.apply(instance(name, sim.image(), **spec))
    kube.wait_condition("binst", name, "Ready", "True")
    return str(kube.get("binst", name)["status"]["id"])  # type: ignore[index]


def test_create_attach_blocked_detach_and_delete(kube: Kube, sim: Sim, operator: Operator) -> None:
    create_attach_blocked_detach_delete(kube, sim)


def test_delete_while_attached_waits_for_shutoff_logged_as_a_wait(
    kube: Kube, sim: Sim, api_key_file: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The blocked deletion, with JSON logs: every line is one JSON object with a zoned timestamp,
    lines about an object carry its reference, the expected wait is INFO (never ERROR), and the
    events name the operator, its pod and what it did."""
    settings = {**OPERATOR_SETTINGS, "LOG_FORMAT": "json", "LOG_LEVEL": "info"}
    with running_operator(
        kube, sim, api_key_file, tmp_path, settings, extra_env={"POD_NAME": "barrack-operator-7d9f-abcde"},
        request=request,
    ) as op:  # fmt: skip
        _ready_instance(kube, sim)
        kube.apply(volume("data", instanceRef={"name": "web-1"}))
        kube.wait_condition("bvol", "data", "Attached", "True")
        volume_id = kube.get("bvol", "data")["status"]["id"]  # type: ignore[index]
        kube.run("delete", "bvol", "data", "--wait=false")
        held = kube.wait_condition("bvol", "data", "Synced", "False", reason="DeletionBlocked")
        # The detach rule knows the BarrackInstance that manages the instance, in deletion too.
        assert "set spec.powerState: Stopped on BarrackInstance web-1" in held["message"], held["message"]
        assert kube.get("bvol", "data")["metadata"]["finalizers"] == ["barrack.ai/finalizer"]  # type: ignore[index]
        assert barrack_volume(sim, volume_id) is not None
        wait_for(lambda: "The deletion waits: " in op.log(), 30, what="the blocked deletion's log line")
        kube.patch("binst", "web-1", {"spec": {"powerState": "Stopped"}})
        wait_for(lambda: kube.get("bvol", "data") is None, 60, what="the volume object to go")
        assert barrack_volume(sim, volume_id) is None
        events = json.loads(kube.run("get", "events", "-o", "json").stdout)["items"]
    lines = [json.loads(line) for line in op.log().splitlines() if line.strip()]
    assert lines and all(re.search(r"[+-]\d\d:\d\d$|Z$", line["timestamp"]) for line in lines)
    waits = [line for line in lines if line["message"].startswith("The deletion waits: ")]
    assert waits and all(line["severity"] == "info" for line in waits), waits[:3]
    # Each says what it waits for, and the reason: never a bare "waiting".
    assert all(re.search(r"waits: \S.* \([A-Z]\w+\); next look in", line["message"]) for line in waits), (
        waits[:3]
    )
    assert all(
        line["object"]["name"] == "data" and line["object"]["namespace"] == kube.namespace for line in waits
    )
    assert not [line for line in lines if line["severity"] in ("error", "fatal")], (
        "an expected wait logged an error"
    )
    ours = [e for e in events if e["involvedObject"]["name"] in ("data", "web-1")]
    assert ours and all(e["reportingComponent"] == "barrack-operator" for e in ours)
    assert all(e["reportingInstance"] == "barrack-operator-7d9f-abcde" for e in ours)
    actions = {(e["reason"], e["action"]) for e in ours}
    assert {("Created", "Create"), ("DeletionBlocked", "Delete"), ("Deleting", "Delete")} <= actions, actions


def test_retain_keeps_thebarrack_volume(kube: Kube, sim: Sim, operator: Operator) -> None:
    kube.apply(volume("kept", deletionPolicy="Retain"))
    kube.wait_condition("bvol", "kept", "Ready", "True")
    volume_id = kube.get("bvol", "kept")["status"]["id"]  # type: ignore[index]
    kube.run("delete", "bvol", "kept", "--timeout=60s")
    assert barrack_volume(sim, volume_id) is not None


def test_attach_waits_while_instance_hibernated(kube: Kube, sim: Sim, operator: Operator) -> None:
    _ready_instance(kube, sim, powerState="Hibernated")
    wait_for(
        lambda: (kube.get("binst", "web-1") or {}).get("status", {}).get("state") == "HIBERNATED",
        60,
        what="HIBERNATED",
    )
    kube.apply(volume("data", instanceRef={"name": "web-1"}))
    blocked = kube.wait_condition("bvol", "data", "Attached", "False", reason="AttachBlocked")
    assert "HIBERNATED" in blocked["message"]
    kube.patch("binst", "web-1", {"spec": {"powerState": "Running"}})
    kube.wait_condition("bvol", "data", "Attached", "True", timeout=60)


def test_boot_volume_reads_as_attached_and_never_gets_a_detach_call(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    kube.apply(ssh_key())
    kube.apply(volume("boot", bootable=True, imageId=sim.image()))
    kube.wait_condition("bvol", "boot", "Ready", "True")
    spec = instance("vm", sim.image())
    del spec["spec"]["imageId"]
    spec["spec"]["bootVolumeRef"] = {"name": "boot"}
    spec["spec"]["powerState"] = "Stopped"
    kube.apply(spec)
    kube.wait_condition("binst", "vm", "Ready", "True", timeout=60)
    inst_id = kube.get("binst", "vm")["status"]["id"]  # type: ignore[index]
    # The boot volume, with no instanceRef of its own, reads as what it is: attached, as a boot volume.
    boot = kube.wait_condition("bvol", "boot", "Attached", "True", reason="BootVolume")
    assert inst_id in boot["message"]
    kube.wait_condition("bvol", "boot", "Ready", "True")
    kube.patch("bvol", "boot", {"spec": {"instanceId": "BRK-000000D"}})
    refused = kube.wait_condition("bvol", "boot", "Synced", "False", reason="InvalidSpec")
    assert "is the boot volume of instance" in refused["message"] and inst_id in refused["message"]
    assert "never detaches" in refused["message"]
    assert not any(k.startswith("detach_volumes") for k in sim.calls())


@pytest.mark.parametrize("sim_args", [["--detach-rule", "active"]])
def test_api_refusal_maps_like_the_precheck_under_the_older_rule(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    _ready_instance(kube, sim, powerState="Stopped")
    kube.apply(volume("data", instanceRef={"name": "web-1"}))
    kube.wait_condition("bvol", "data", "Attached", "True", timeout=60)
    kube.patch("bvol", "data", [{"op": "remove", "path": "/spec/instanceRef"}], "json")
    blocked = kube.wait_condition("bvol", "data", "Synced", "False", reason="DetachBlocked")
    assert "must be ACTIVE" in blocked["message"]
    assert sim.calls().get("detach_volumes 409", 0) >= 1
    assert kube.condition("bvol", "data", "Attached")["status"] == "True"  # type: ignore[index]


def test_power_state_drift_is_reverted_with_an_event(kube: Kube, sim: Sim, operator: Operator) -> None:
    inst_id = _ready_instance(kube, sim)
    sim.call("POST", f"/instances/{inst_id}/stop/")  # someone stops it behind the operator's back
    wait_for(
        lambda: any(e["reason"] == "PowerStateChanged" for e in kube.events("web-1")),
        60,
        what="a correction event",
    )
    wait_for(
        lambda: next(i for i in sim.inventory()["instances"] if i["id"] == inst_id)["status"] == "ACTIVE",
        60,
        what="ACTIVE again",
    )


def test_firewall_rules_as_a_set_and_attachments(kube: Kube, sim: Sim, operator: Operator) -> None:
    _ready_instance(kube, sim)
    ssh = {"direction": "ingress", "protocol": "tcp", "portRangeMin": 22, "portRangeMax": 22}
    icmp = {"direction": "ingress", "protocol": "icmp"}
    firewall = {
        "apiVersion": "barrack.ai/v1alpha1",
        "kind": "BarrackFirewall",
        "metadata": {"name": "fw"},
        "spec": {"region": "US-1", "rules": [ssh, icmp], "instanceRefs": [{"name": "web-1"}]},
    }
    kube.apply(firewall)
    kube.wait_condition("bfw", "fw", "Ready", "True", timeout=60)
    fw_id = kube.get("bfw", "fw")["status"]["id"]  # type: ignore[index]
    barrack_fw = next(f for f in sim.inventory()["firewalls"] if f["id"] == fw_id)
    assert sorted(r["protocol"] for r in barrack_fw["rules"]) == ["icmp", "tcp"]
    assert [a["instance_id"] for a in barrack_fw["attachments"]] == [
        kube.get("binst", "web-1")["status"]["id"]
    ]  # type: ignore[index]
    kube.patch("bfw", "fw", {"spec": {"rules": [icmp]}})
    wait_for(
        lambda: (
            [
                r["protocol"]
                for r in next(f for f in sim.inventory()["firewalls"] if f["id"] == fw_id)["rules"]
            ]
            == ["icmp"]
        ),
        30,
        what="rule removed",
    )
    kube.run("delete", "bfw", "fw", "--timeout=60s")
    assert not sim.inventory()["firewalls"]


def test_instance_waits_for_its_ssh_key(kube: Kube, sim: Sim, operator: Operator) -> None:
    kube.apply(instance("web-1", sim.image()))
    kube.wait_condition("binst", "web-1", "Synced", "False", reason="ReferenceNotReady")
    assert not sim.inventory()["instances"]
    kube.apply(ssh_key())
    kube.wait_condition("binst", "web-1", "Ready", "True", timeout=60)


def test_adopt_id_takes_over_without_creating(kube: Kube, sim: Sim, operator: Operator) -> None:
    existing = sim.call(
        "POST", "/volumes/", {"name": "legacy-data", "region": "US-1", "size_gb": 100, "volume_type": "NVMe"}
    )["volume"]
    kube.apply(volume("adopted", adoptId=existing["id"]))
    kube.wait_condition("bvol", "adopted", "Ready", "True")
    assert kube.get("bvol", "adopted")["status"]["id"] == existing["id"]  # type: ignore[index]
    assert len(sim.inventory()["volumes"]) == 1


def create_on_barrack(sim: Sim, name: str) -> dict[str, Any]:
    body = {"name": name, "region": "US-1", "size_gb": 100, "volume_type": "NVMe"}
    return sim.call("POST", "/volumes/", body)["volume"]  # type: ignore[no-any-return]


def test_lost_create_reply_is_found_by_name_not_created_twice(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    # An operator that marked the object, sent the create, and crashed before the reply or the
    # status write leaves exactly this: the mark, and a volume of the name on Barrack.
    lost = create_on_barrack(sim, "data")
    marked = volume("data")
    marked["metadata"]["annotations"] = {"barrack.ai/create-requested": "data"}
    kube.apply(marked)
    kube.wait_condition("bvol", "data", "Ready", "True")
    assert kube.get("bvol", "data")["status"]["id"] == lost["id"]  # type: ignore[index]
    assert [v["id"] for v in sim.inventory()["volumes"]] == [lost["id"]]
    assert sim.calls().get("create_volume 200") == 1  # the test's own call only


def test_a_resource_of_the_name_made_by_someone_else_is_neither_taken_nor_deleted(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    theirs = create_on_barrack(sim, "data")  # another cluster's, or a person's
    kube.apply(volume("data"))
    condition = kube.wait_condition("bvol", "data", "Synced", "False", reason="NameTaken")
    assert theirs["id"] in condition["message"] and f"spec.adoptId: {theirs['id']}" in condition["message"]
    assert sim.calls().get("create_volume 200") == 1 and "create_volume 400" not in sim.calls()
    kube.run("delete", "bvol", "data", "--timeout=60s")
    assert barrack_volume(sim, theirs["id"]) is not None  # their data is still there
    # A marked object records the mark before its create, with its Barrack name.
    kube.apply(volume("mine"))
    kube.wait_condition("bvol", "mine", "Ready", "True")
    assert kube.get("bvol", "mine")["metadata"]["annotations"]["barrack.ai/create-requested"] == "mine"  # type: ignore[index]


def test_wrong_key_is_unauthorized_without_crash_or_leak(
    kube: Kube, sim: Sim, operator: Operator, api_key_file: Any
) -> None:
    api_key_file.write_text(WRONG_KEY)
    kube.apply(ssh_key())
    kube.apply(volume("data"))
    kube.wait_condition("bvol", "data", "Synced", "False", reason="Unauthorized")
    kube.wait_condition("bkey", "ops-key", "Synced", "False", reason="Unauthorized")
    assert operator.process is not None and operator.process.poll() is None
    texts = [
        operator.log(),
        kube.run("get", "events", "-o", "yaml").stdout,
        kube.run("get", "barrack", "-o", "yaml").stdout,
    ]
    for text in texts:
        assert_no_secret(text, "the log, events or status")
    api_key_file.write_text(API_KEY)  # the file is re-read: a fixed key heals without a restart
    kube.wait_condition("bvol", "data", "Ready", "True", timeout=90)


def test_metrics_count_objects_by_kind_and_readiness(
    kube: Kube, sim: Sim, api_key_file: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    port = free_port()
    with running_operator(
        kube, sim, api_key_file, tmp_path, OPERATOR_SETTINGS, metrics_port=port, request=request
    ):
        kube.apply(volume("data"))
        kube.apply(volume("waiting", instanceRef={"name": "no-such-instance"}))
        kube.wait_condition("bvol", "data", "Ready", "True")
        kube.wait_condition("bvol", "waiting", "Synced", "False", reason="ReferenceNotReady")

        def scrape() -> str:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
                return str(response.read().decode())

        expected = [
            'barrack_objects{kind="BarrackVolume",ready="true"} 1.0',
            'barrack_objects{kind="BarrackVolume",ready="false"} 1.0',
            'barrack_objects{kind="BarrackInstance",ready="true"} 0.0',
        ]

        def complete() -> str | None:  # the objects counted, and the default account's money read
            text = scrape()
            return (
                text
                if all(line in text for line in expected) and "barrack_account_credits_low{" in text
                else None
            )

        text = wait_for(complete, 30, what="the metrics to count both volumes")
        assert 'route="create_volume"' in text and "barrack_rate_limiter_queued" in text
        queue = {
            s.labels["state"]: s.value
            for f in text_string_to_metric_families(text)
            if f.name == "barrack_reconcile_queue"
            for s in f.samples
        }
        assert queue.keys() == {"running", "waiting"} and sum(queue.values()) == 2  # both volumes
        assert_prometheus_conventions(text)
        # Every series the chart's alerts and dashboard query is one the operator exports.
        families = list(text_string_to_metric_families(text))  # a series with no sample yet is declared
        exported = {s.name for f in families for s in f.samples} | {f"{f.name}_total" for f in families}
        exported |= {f.name for f in families}  # e.g. the monthly budget of an account that sets none
        queried = {
            m
            for q in monitoring_queries(monitoring_docs(kube.namespace))
            for m in re.findall(r"barrack_[a-z_]+", q)
        }
        assert queried and queried <= exported, queried - exported


BOUNDED_LABELS: dict[str, Callable[[str], bool]] = {
    "route": lambda v: v in ROUTES,
    "code": lambda v: v == "error" or (v.isdigit() and len(v) == 3),
    "kind": lambda v: v in {k.kind for k in KINDS} | set(Inventory.KINDS),
    "ready": lambda v: v in {"true", "false"},
    "reason": lambda v: v.isidentifier() and v[0].isupper(),
    "le": lambda v: True,  # histogram buckets: a fixed set
    "account": lambda v: re.fullmatch(DNS_SUBDOMAIN_PATTERN, v) is not None,  # one per BarrackAccount
    "currency": lambda v: v in ("USD", "EUR", "INR"),
    "state": lambda v: v in ("running", "waiting"),
}
"""Every label the operator's metrics may carry, and the values it may take: a bounded set each
(an object's name, namespace or Barrack id as a label would grow without bound)."""


def assert_prometheus_conventions(text: str) -> None:
    """Parse a scrape with prometheus-client's own parser and hold every barrack_ family to
    Prometheus' naming conventions: counters end in _total, nothing else does, durations are in
    seconds, labels are bounded."""
    families = list(text_string_to_metric_families(text))
    ours = [f for f in families if not f.name.startswith(("python_", "process_"))]
    assert ours and all(f.name.startswith("barrack_") for f in ours), [f.name for f in ours]
    for family in ours:
        names = {sample.name for sample in family.samples}
        if family.type == "counter":
            assert names <= {f"{family.name}_total", f"{family.name}_created"}, (family.name, names)
        else:
            assert not family.name.endswith("_total"), (
                f"{family.name} is a {family.type} named like a counter"
            )
        if family.type == "histogram" or any(w in family.name for w in ("wait", "duration", "age")):
            assert "_seconds" in family.name, f"{family.name}: a duration names its unit"
        for sample in family.samples:
            for label, value in sample.labels.items():
                assert label in BOUNDED_LABELS, f"{family.name} has the unbounded label {label}"
                assert BOUNDED_LABELS[label](value), f"{family.name}{{{label}={value!r}}}"
