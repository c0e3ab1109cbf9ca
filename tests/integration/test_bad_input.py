"""Suite 4 of the reliability work: bad input. What the schema can judge is refused by the API
server with a message naming the field (and nothing reaches the operator); what only Barrack can
judge (stock, regions, credit) ends as Synced=False with a reason and a next step, and nothing
is created on Barrack."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from tests.integration.conftest import Kube, Operator, Sim, barrack_named, instance, ssh_key, volume

pytestmark = pytest.mark.integration

RULE = {"direction": "ingress", "protocol": "tcp", "portRangeMin": 22, "portRangeMax": 22}


def firewall(name: str = "fw", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "barrack.ai/v1alpha1",
        "kind": "BarrackFirewall",
        "metadata": {"name": name},
        "spec": {"region": "US-1", "rules": [RULE], **spec},
    }


def without(manifest: dict[str, Any], *path: str) -> dict[str, Any]:
    """The manifest with the field at ``path`` (under spec) removed."""
    changed = copy.deepcopy(manifest)
    node = changed["spec"]
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    return changed


def with_spec(manifest: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """The manifest with ``fields`` set in its spec (for names the builders take themselves)."""
    return {**manifest, "spec": {**manifest["spec"], **fields}}


PLACES = [{"region": "US-1", "gpuModel": "A40", "gpuCount": 1}]


def placed(places: list[dict[str, Any]]) -> dict[str, Any]:
    """A BarrackInstance with placement (and an imageId): no region, gpuModel or gpuCount."""
    manifest = without(without(instance("i", "img", placement=places), "region"), "gpuModel")
    return manifest


def rule(**fields: Any) -> list[dict[str, Any]]:
    return [{**RULE, **fields}]


# (case id, manifest, text the refusal must contain: the field's path)
INVALID: list[tuple[str, dict[str, Any], str]] = [
    # BarrackVolume
    ("volume-size-too-small", volume("v", sizeGB=10), "spec.sizeGB"),
    ("volume-size-too-large", volume("v", sizeGB=1_048_577), "spec.sizeGB"),
    ("volume-size-string", volume("v", sizeGB="100"), "spec.sizeGB"),
    ("volume-size-fraction", volume("v", sizeGB=100.5), "spec.sizeGB"),
    ("volume-size-missing", without(volume("v"), "sizeGB"), "spec.sizeGB"),
    ("volume-region-unknown", volume("v", region="MARS-1"), "spec.region"),
    ("volume-region-lowercase", volume("v", region="us-1"), "spec.region"),
    ("volume-region-missing", without(volume("v"), "region"), "region is required, unless instanceRef"),
    ("volume-bootable-follows-instance", without(volume("v", bootable=True, imageId="BRK-1I", instanceRef={"name": "i"}), "region"), "region is required"),
    ("volume-type-unknown", volume("v", volumeType="Floppy"), "spec.volumeType"),
    ("volume-name-slash", with_spec(volume("v"), name="bad/name"), "spec.name"),
    ("volume-name-too-long", with_spec(volume("v"), name="n" * 51), "spec.name"),
    ("volume-policy-unknown", volume("v", deletionPolicy="Keep"), "spec.deletionPolicy"),
    ("volume-adopt-id-malformed", volume("v", adoptId="vol-1"), "spec.adoptId"),
    ("volume-instance-id-malformed", volume("v", instanceId="12345"), "spec.instanceId"),
    ("volume-instance-ref-and-id", volume("v", instanceRef={"name": "a"}, instanceId="BRK-1D"), "instanceRef or instanceId"),
    ("volume-instance-ref-no-name", volume("v", instanceRef={}), "spec.instanceRef.name"),
    ("volume-instance-ref-empty-name", volume("v", instanceRef={"name": ""}), "spec.instanceRef.name"),
    ("volume-bootable-string", volume("v", bootable="yes"), "spec.bootable"),
    ("volume-bootable-without-image", volume("v", bootable=True), "imageId"),
    ("volume-source-id-malformed", volume("v", source={"volumeId": "abc"}), "spec.source.volumeId"),
    ("volume-source-both", volume("v", source={"volumeId": "BRK-1V", "volumeRef": {"name": "a"}}), "volumeRef and volumeId"),
    ("volume-field-typo", volume("v", sizeGb=100), "spec.sizeGb"),
    ("volume-no-spec", {**volume("v"), "spec": None}, "spec"),
    ("volume-metadata-name", {**volume("v"), "metadata": {"name": "Bad_Name"}}, "metadata.name"),
    # BarrackInstance
    ("instance-gpu-count-3", instance("i", "img", gpuCount=3), "spec.gpuCount"),
    ("instance-gpu-count-string", instance("i", "img", gpuCount="one"), "spec.gpuCount"),
    ("instance-gpu-model-unknown", instance("i", "img", gpuModel="GTX-1080"), "spec.gpuModel"),
    ("instance-gpu-model-missing", without(instance("i", "img"), "gpuModel"), "region and gpuModel go together"),
    ("instance-placement-and-region", instance("i", "img", placement=PLACES), "exactly one of the two"),
    ("instance-neither-form", without(without(instance("i", "img"), "region"), "gpuModel"), "exactly one of the two"),
    ("instance-placement-gpu-count", without(without(instance("i", "img", placement=PLACES, gpuCount=2), "region"), "gpuModel"), "each alternative names its gpuCount"),
    ("instance-nine-alternatives", placed(PLACES * 9), "spec.placement"),
    ("instance-no-alternative", placed([]), "spec.placement"),
    ("instance-placement-gpu-unknown", placed([{"region": "US-1", "gpuModel": "GTX-1080"}]), "spec.placement[0].gpuModel"),
    ("instance-placement-region-unknown", placed([{"region": "MARS-1", "gpuModel": "A40"}]), "spec.placement[0].region"),
    ("instance-max-price-zero", with_spec(placed(PLACES), maxHourlyPrice=0), "spec.maxHourlyPrice"),
    ("instance-image-and-image-id", with_spec(placed(PLACES), image={"name": "Ubuntu 22.04"}), "exactly one boot source"),
    ("instance-power-unknown", instance("i", "img", powerState="Sleeping"), "spec.powerState"),
    ("instance-power-lowercase", instance("i", "img", powerState="running"), "spec.powerState"),
    ("instance-ssh-keys-empty", instance("i", "img", sshKeyRefs=[]), "spec.sshKeyRefs"),
    ("instance-ssh-keys-missing", without(instance("i", "img"), "sshKeyRefs"), "spec.sshKeyRefs"),
    ("instance-public-ip-string", instance("i", "img", publicIP="yes"), "spec.publicIP"),
    ("instance-no-boot-source", without(instance("i", "img"), "imageId"), "exactly one boot source"),
    ("instance-two-boot-sources", instance("i", "img", bootVolumeRef={"name": "b"}), "exactly one boot source"),
    ("instance-rule-ports-reversed", instance("i", "img", securityRules=rule(portRangeMin=80, portRangeMax=22)), "portRangeMin"),
    ("instance-rule-port-zero", instance("i", "img", securityRules=rule(portRangeMin=0)), "portRangeMin"),
    ("instance-rule-port-too-high", instance("i", "img", securityRules=rule(portRangeMax=70000)), "portRangeMax"),
    ("instance-rule-protocol-unknown", instance("i", "img", securityRules=rule(protocol="http")), "protocol"),
    ("instance-rule-direction-unknown", instance("i", "img", securityRules=rule(direction="inbound")), "direction"),
    ("instance-rule-icmp-with-ports", instance("i", "img", securityRules=rule(protocol="icmp")), "icmp rules take no ports"),
    ("instance-rule-cidr-no-prefix", instance("i", "img", securityRules=rule(remoteIPPrefix="10.0.0.0")), "remoteIPPrefix"),
    ("instance-rule-cidr-prefix-33", instance("i", "img", securityRules=rule(remoteIPPrefix="10.0.0.0/33")), "remoteIPPrefix"),
    ("instance-rule-cidr-octet-300", instance("i", "img", securityRules=rule(remoteIPPrefix="300.1.1.0/24")), "remoteIPPrefix"),
    ("instance-rule-cidr-family", instance("i", "img", securityRules=rule(remoteIPPrefix="2001:db8::/32")), "remoteIPPrefix"),
    ("instance-rule-ethertype-unknown", instance("i", "img", securityRules=rule(ethertype="IPv5")), "ethertype"),
    # BarrackFirewall
    ("firewall-description-too-long", firewall(description="d" * 256), "spec.description"),
    ("firewall-region-missing", without(firewall(), "region"), "spec.region"),
    ("firewall-rule-protocol-missing", firewall(rules=[{k: v for k, v in RULE.items() if k != "protocol"}]), "protocol"),
    ("firewall-instance-ref-empty-name", firewall(instanceRefs=[{"name": ""}]), "name"),
    ("firewall-name-slash", with_spec(firewall(), name="web/ssh"), "spec.name"),
    # BarrackSSHKey
    ("ssh-key-not-a-key", {**ssh_key(), "spec": {"publicKey": "not a key"}}, "spec.publicKey"),
    ("ssh-key-dss", {**ssh_key(), "spec": {"publicKey": "ssh-dss AAAAB3NzaC1kc3M= old@example"}}, "spec.publicKey"),
    ("ssh-key-missing", {**ssh_key(), "spec": {}}, "spec.publicKey"),
    ("ssh-key-name-with-space", with_spec(ssh_key(), name="ops key"), "spec.name"),
]  # fmt: skip


@pytest.mark.parametrize(("manifest", "field"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_manifest_is_refused_naming_the_field(
    kube: Kube, manifest: dict[str, Any], field: str
) -> None:
    result = kube.run("apply", "-f", "-", input_text=yaml.safe_dump(manifest), check=False)
    assert result.returncode != 0, f"accepted: {manifest}"
    assert field in result.stderr, result.stderr
    assert kube.run("get", "barrack", "-o", "name").stdout == ""  # nothing was stored


# (case id, valid manifest, merge patch of its spec, text the refusal must contain)
IMMUTABLE: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("volume-region", volume("v"), {"region": "CANADA-1"}, "region is immutable"),
    ("volume-type", volume("v"), {"volumeType": "HDD"}, "volumeType is immutable"),
    ("volume-bootable", volume("v"), {"bootable": True, "imageId": "BRK-1I"}, "bootable is immutable"),
    ("volume-shrink", volume("v", sizeGB=200), {"sizeGB": 100}, "sizeGB can only grow"),
    ("volume-source", volume("v"), {"source": {"volumeId": "BRK-1V"}}, "source is immutable"),
    ("instance-region", instance("i", "img"), {"region": "NORWAY-1"}, "region is immutable"),
    ("instance-gpu-model", instance("i", "img"), {"gpuModel": "L40"}, "gpuModel is immutable"),
    ("instance-gpu-count", instance("i", "img"), {"gpuCount": 2}, "gpuCount is immutable"),
    ("instance-image", instance("i", "img"), {"imageId": "other"}, "imageId is immutable"),
    ("ssh-key-public-key", ssh_key(), {"publicKey": "ssh-ed25519 AAAAother other@example"}, "publicKey is immutable"),
    ("firewall-region", firewall(), {"region": "CANADA-1"}, "region is immutable"),
    ("volume-name", barrack_named(volume("v"), "data"), {"name": "other"}, "name is immutable"),
    ("volume-name-added", volume("v"), {"name": "other"}, "name is immutable"),
    ("volume-adopt-id-changed", volume("v", adoptId="BRK-1V"), {"adoptId": "BRK-2V"}, "adoptId cannot change"),
    ("instance-name", barrack_named(instance("i", "img"), "gpu"), {"name": "other"}, "name is immutable"),
    ("instance-ssh-keys", instance("i", "img"), {"sshKeyRefs": [{"name": "other-key"}]}, "sshKeyRefs is immutable"),
    ("instance-startup-script", instance("i", "img"), {"startupScript": "BRK-1S"}, "startupScript is immutable"),
    ("instance-cloud-init", instance("i", "img", cloudInit="#cloud-config"), {"cloudInit": "#cloud-config\n"}, "cloudInit is immutable"),
    ("instance-boot-volume", instance("i", "img"), {"imageId": None, "bootVolumeRef": {"name": "boot"}}, "bootVolumeRef is immutable"),
    ("instance-placement", placed(PLACES), {"placement": [{"region": "NORWAY-1", "gpuModel": "A40"}]}, "placement is immutable"),
    ("instance-image-by-name", with_spec(without(instance("i", "img"), "imageId"), image={"name": "a"}), {"image": {"name": "b"}}, "image is immutable"),
    ("firewall-description", firewall(), {"description": "other"}, "description is immutable"),
    ("firewall-name", firewall(), {"name": "other"}, "name is immutable"),
    ("ssh-key-name", ssh_key(), {"name": "other"}, "name is immutable"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("manifest", "patch", "message"), [c[1:] for c in IMMUTABLE], ids=[c[0] for c in IMMUTABLE]
)
def test_changing_an_immutable_field_is_refused(
    kube: Kube, manifest: dict[str, Any], patch: dict[str, Any], message: str
) -> None:
    kube.apply(manifest)
    kind, name = manifest["kind"].lower(), manifest["metadata"]["name"]
    before = kube.get(kind, name)
    result = kube.run("patch", kind, name, "--type=merge", "-p", yaml.safe_dump({"spec": patch}), check=False)
    assert result.returncode != 0 and message in result.stderr, result.stderr
    assert kube.get(kind, name)["spec"] == before["spec"]  # type: ignore[index]


# What only Barrack can judge --------------------------------------------------------------------


def created_names(sim: Sim) -> set[str]:
    return {entry["name"] for entry in sim.admin("created")}


def test_gpu_out_of_stock_waits_as_no_capacity_and_creates_nothing(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    sim.admin("config", {"stock": [{"region": "US-1", "gpu_model": "H100-PCIe-80GB", "available": 0}]})
    kube.apply(ssh_key())
    kube.apply(instance("trainer", sim.image(), gpuModel="H100-PCIe-80GB"))
    condition = kube.wait_condition("binst", "trainer", "Synced", "False", reason="NoCapacity")
    assert "H100-PCIe-80GB x1 in US-1: stock 0 of 1" in condition["message"]
    assert "creates this one as soon as an alternative fits" in condition["message"]
    assert "trainer" not in created_names(sim) and not sim.inventory()["instances"]
    assert not [k for k in sim.calls() if k.startswith("create_instance ")], "no create while none fits"
    # The next step works: stock comes back, and the next stock read creates it.
    sim.admin("config", {"stock": [{"region": "US-1", "gpu_model": "H100-PCIe-80GB", "available": 8}]})
    kube.wait_condition("binst", "trainer", "Ready", "True", timeout=60)


def test_volume_in_another_region_than_its_instance_is_not_created(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    kube.apply(ssh_key())
    kube.apply(instance("web-1", sim.image()))
    kube.wait_condition("binst", "web-1", "Ready", "True")
    kube.apply(volume("far", region="CANADA-1", instanceRef={"name": "web-1"}))
    condition = kube.wait_condition("bvol", "far", "Synced", "False", reason="InvalidSpec")
    assert "CANADA-1" in condition["message"] and "US-1" in condition["message"]
    assert "point instanceRef at an instance in CANADA-1" in condition["message"]
    assert "far" not in created_names(sim) and not sim.inventory()["volumes"]
    assert not any(k.startswith(("create_volume", "attach_volumes")) for k in sim.calls())


def test_too_little_credit_is_synced_false_and_creates_nothing(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    sim.admin("config", {"balance": 0})
    kube.apply(volume("data"))
    condition = kube.wait_condition("bvol", "data", "Synced", "False", reason="InsufficientCredits")
    assert "top up the Barrack account" in condition["message"]
    assert "data" not in created_names(sim) and not sim.inventory()["volumes"]
    sim.admin("config", {"balance": 1000})
    kube.wait_condition("bvol", "data", "Ready", "True", timeout=60)
