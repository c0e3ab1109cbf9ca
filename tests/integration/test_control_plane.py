"""The harness's control plane is a real kube-apiserver: CRDs, CEL, the status subresource."""

from __future__ import annotations

import json

import pytest

from barrack_operator.devcluster import ControlPlane
from tests.integration.conftest import Kube, instance, ssh_key, volume

pytestmark = pytest.mark.integration

WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.smoke.example.com}
spec:
  group: smoke.example.com
  names: {kind: Widget, plural: widgets, singular: widget}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
          status: {type: object, properties: {phase: {type: string}}}
"""


def test_kubectl_creates_reads_patches_status_and_deletes(control_plane: ControlPlane, kube: Kube) -> None:
    control_plane.kubectl("apply", "-f", "-", input_text=WIDGET_CRD)
    control_plane.kubectl(
        "wait", "--for=condition=Established", "crd/widgets.smoke.example.com", "--timeout=60s"
    )
    kube.apply(
        {
            "apiVersion": "smoke.example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"size": 3},
        }
    )
    assert kube.get("widget", "w")["spec"]["size"] == 3  # type: ignore[index]
    kube.run(
        "patch",
        "widget",
        "w",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"phase": "Done"}}),
    )
    assert kube.get("widget", "w")["status"]["phase"] == "Done"  # type: ignore[index]
    kube.run("delete", "widget", "w")
    assert kube.get("widget", "w") is None


def test_version_is_the_pinned_kubernetes(control_plane: ControlPlane) -> None:
    version = json.loads(control_plane.kubectl("get", "--raw", "/version").stdout)
    assert version["gitVersion"] == "v1.34.4"


INVALID = [
    (volume("v", sizeGB=10), "spec.sizeGB"),
    (volume("v", region="MARS-1"), "spec.region"),
    (volume("v", volumeType="Floppy"), "spec.volumeType"),
    ({**volume("v"), "spec": {"region": "US-1", "sizeGB": 100, "name": "bad/name"}}, "spec.name"),
    (volume("v", instanceRef={"name": "a"}, instanceId="BRK-1D"), "instanceRef or instanceId"),
    (instance("i", "img", gpuCount=3), "spec.gpuCount"),
    (instance("i", "img", gpuModel="GTX-1080"), "spec.gpuModel"),
    (instance("i", "img", powerState="Sleeping"), "spec.powerState"),
    (
        instance(
            "i",
            "img",
            securityRules=[
                {"direction": "ingress", "protocol": "tcp", "portRangeMin": 80, "portRangeMax": 22}
            ],
        ),
        "portRangeMin",
    ),
    (
        instance(
            "i",
            "img",
            securityRules=[
                {
                    "direction": "ingress",
                    "protocol": "tcp",
                    "portRangeMin": 22,
                    "portRangeMax": 22,
                    "remoteIPPrefix": "10.0.0.0",
                }
            ],
        ),
        "remoteIPPrefix",
    ),
    ({**ssh_key(), "spec": {"publicKey": "not a key"}}, "spec.publicKey"),
]


@pytest.mark.parametrize(("manifest", "field"), INVALID, ids=[f for _, f in INVALID])
def test_invalid_manifests_are_refused_naming_the_field(
    kube: Kube, manifest: dict[str, object], field: str
) -> None:
    import yaml

    result = kube.run("apply", "-f", "-", input_text=yaml.safe_dump(manifest), check=False)
    assert result.returncode != 0
    assert field in result.stderr, result.stderr


def test_immutable_region_is_refused(kube: Kube) -> None:
    kube.apply(volume("v"))
    result = kube.run(
        "patch", "bvol", "v", "--type=merge", "-p", '{"spec":{"region":"CANADA-1"}}', check=False
    )
    assert result.returncode != 0 and "region is immutable" in result.stderr
