"""The harness's control plane is a real kube-apiserver: CRDs, CEL, the status subresource."""

from __future__ import annotations

import json

import pytest

from barrack_operator.devcluster import ControlPlane
from tests.integration.conftest import Kube

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
