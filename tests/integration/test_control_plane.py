"""The harness's control plane is a real kube-apiserver: CRDs, CEL, the status subresource."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from barrack_operator.devcluster import ControlPlane
from tests.integration.conftest import Kube, wait_for

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


def test_dev_cluster_killed_with_sigkill_takes_etcd_and_the_apiserver_with_it(tmp_path: Path) -> None:
    """Issue 19: ``barrack-operator dev-cluster`` SIGKILLed (no handler runs) leaves no etcd or
    kube-apiserver behind: the kernel kills its children with it. This process becomes the
    subreaper of the orphans meanwhile (as a shell or an init that reaps and never kills would
    be), so the children's end is the dev cluster's doing, not this machine's init's."""
    kubeconfig = tmp_path / "kubeconfig"
    _set_child_subreaper(True)
    children: list[int] = []
    try:
        cluster = subprocess.Popen(
            [sys.executable, "-m", "barrack_operator.cli", "dev-cluster", "--kubeconfig", str(kubeconfig),
             "--data-dir", str(tmp_path / "data"), "--crds", str(tmp_path / "no-crds")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            wait_for(kubeconfig.exists, 90, what="the dev cluster's kubeconfig")
            children = wait_for(lambda: _children(cluster.pid), 10, what="etcd and kube-apiserver")
            names = {Path(os.readlink(f"/proc/{pid}/exe")).name for pid in children}
            assert {"etcd", "kube-apiserver"} <= names, names
        finally:
            cluster.kill()
            cluster.wait()
        wait_for(lambda: not any(_running(pid) for pid in children), 15,
                 what="the dev cluster's children to die with it")  # fmt: skip
    finally:
        for pid in children:  # orphans are this process's now: reap, and never leave one running
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        _set_child_subreaper(False)


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    found = [int(child) for child in path.read_text().split()] if path.exists() else []
    return found if len(found) >= 2 else []


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _set_child_subreaper(on: bool) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, int(on)) == 0


PR_SET_CHILD_SUBREAPER = 36
