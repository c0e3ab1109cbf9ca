"""Integration fixtures: a real etcd + kube-apiserver for the session, a fresh namespace per test,
the simulator as a real HTTP server, and the operator as a real process. Every process a fixture
starts is stopped by its own pid; the operator's log is printed when a test fails."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from barrack_operator.devcluster import ControlPlane
from barrack_testkit.stack import OperatorProcess, SimProcess, operator_env, wait_for

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "integration-key-9d41b7c2"
WRONG_KEY = "wrong-key-7f3e0a55"
SECRETS = (API_KEY, WRONG_KEY)
SSH_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGludGVncmF0aW9uLWtleQ== ops@example"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"rep_{report.when}", report)


@contextlib.contextmanager
def started_control_plane(work_dir: Path) -> Iterator[ControlPlane]:
    """etcd and kube-apiserver with the CRDs installed, stopped afterwards."""
    plane = ControlPlane(work_dir=work_dir)
    plane.start()
    try:
        plane.install_crds(ROOT / "crds")
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    with started_control_plane(tmp_path_factory.mktemp("control-plane")) as plane:
        yield plane


@dataclass
class Kube:
    plane: ControlPlane
    namespace: str

    def run(
        self, *args: str, input_text: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.plane.kubectl("-n", self.namespace, *args, input_text=input_text, check=check)

    def apply(self, manifest: dict[str, Any] | str) -> subprocess.CompletedProcess[str]:
        text = manifest if isinstance(manifest, str) else yaml.safe_dump(manifest)
        return self.run("apply", "-f", "-", input_text=text)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        result = self.run("get", kind, name, "-o", "json", check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def condition(self, kind: str, name: str, type_: str) -> dict[str, Any] | None:
        obj = self.get(kind, name) or {}
        return next((c for c in (obj.get("status") or {}).get("conditions", []) if c["type"] == type_), None)

    def wait_condition(
        self, kind: str, name: str, type_: str, status: str, reason: str | None = None, timeout: float = 60
    ) -> dict[str, Any]:
        """The condition once it reads so over the object's current spec: status.observedGeneration
        and the condition's own are the object's generation (a status from before a patch never
        passes)."""

        def check() -> dict[str, Any] | None:
            obj = self.get(kind, name) or {}
            generation = (obj.get("metadata") or {}).get("generation")
            current = obj.get("status") or {}
            if current.get("observedGeneration") != generation:
                return None
            c = next((c for c in current.get("conditions", []) if c["type"] == type_), None)
            if c is None or c.get("observedGeneration", generation) != generation:
                return None
            if c["status"] == status and (reason is None or c["reason"] == reason):
                return c
            return None

        return wait_for(check, timeout, what=f"{kind}/{name} {type_}={status} {reason or ''}")  # type: ignore[no-any-return]

    def events(self, name: str) -> list[dict[str, Any]]:
        out = self.run("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json")
        return json.loads(out.stdout)["items"]  # type: ignore[no-any-return]

    def patch(self, kind: str, name: str, patch: dict[str, Any], patch_type: str = "merge") -> None:
        self.run("patch", kind, name, f"--type={patch_type}", "-p", json.dumps(patch))


@pytest.fixture
def kube(control_plane: ControlPlane, request: pytest.FixtureRequest) -> Iterator[Kube]:
    """A fresh namespace. Afterwards, nothing in it (objects with their status, events) may hold
    the API key."""
    name = (
        re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-")
        + f"-{os.getpid() % 1000}-{int(time.time() * 1000) % 100000}"
    )
    control_plane.kubectl("create", "namespace", name)
    kube = Kube(control_plane, name)
    yield kube
    assert_no_secret(kube.run("get", "events,barrack", "-o", "json").stdout, f"namespace {name}")


def assert_no_secret(text: str, where: str) -> None:
    """The API key (and a wrong key a test used) must never be written anywhere."""
    for secret in SECRETS:
        assert secret not in text, f"an API key appears in {where}"


Sim = SimProcess
Operator = OperatorProcess


@pytest.fixture
def sim_args() -> list[str]:
    return []


@pytest.fixture
def sim(tmp_path: Path, sim_args: list[str]) -> Iterator[Sim]:
    simulator = SimProcess.start(tmp_path, API_KEY, *sim_args)
    yield simulator
    simulator.stop()


@pytest.fixture
def api_key_file(tmp_path: Path) -> Path:
    path = tmp_path / "barrack-api-key"
    path.write_text(API_KEY + "\n")
    return path


OPERATOR_SETTINGS: dict[str, str] = {
    "POLL_INTERVAL": "0.5",
    "IDLE_POLL_INTERVAL": "3",
    "DRIFT_INTERVAL": "5",
    "BLOCKED_REQUEUE": "2",
    "REQUESTS_PER_SECOND": "50",
    "CREATE_QUIET": "0",  # every state is written: the tests watch the transitions
    "LOG_LEVEL": "debug",
}


@pytest.fixture
def operator_settings() -> dict[str, str]:
    """``BARRACK_*`` settings (without the prefix) of the ``operator`` fixture; a module overrides
    this fixture to run the operator otherwise."""
    return dict(OPERATOR_SETTINGS)


@contextlib.contextmanager
def running_operator(
    kube: Kube,
    sim: Sim,
    api_key_file: Path,
    log_dir: Path,
    settings: dict[str, str],
    *,
    kubeconfig: Path | None = None,
    metrics_port: int = 0,
    liveness_port: int = 0,
    extra_namespaces: list[str] | None = None,
    extra_env: dict[str, str] | None = None,
    request: pytest.FixtureRequest | None = None,
) -> Iterator[Operator]:
    """The operator watching the test's namespace, at the log level ``settings`` give (debug by
    default). Afterwards its log is printed if the test failed, and its whole log (every start of
    it, tracebacks included) may not hold the API key."""
    op = OperatorProcess(
        log_dir / "operator.log",
        {
            **operator_env(kubeconfig or kube.plane.kubeconfig, sim.api, api_key_file, **settings),
            **(extra_env or {}),
        },
        [
            *(f"--namespace={ns}" for ns in [kube.namespace, *(extra_namespaces or [])]),
            *("--liveness-port", str(liveness_port), "--metrics-port", str(metrics_port)),
        ],
    )
    op.start()
    try:
        yield op
    finally:
        op.stop()
    failed = getattr(request.node, "rep_call", None) if request is not None else None
    if failed is not None and failed.failed:
        print(f"\n----- operator log ({op.log_path}) -----\n{op.log()[-20000:]}")
    assert "DEBUG" in op.log() or settings.get("LOG_LEVEL") != "debug", "the operator logged no debug line"
    assert_no_secret(op.log(), "the operator log")


@pytest.fixture
def operator(
    kube: Kube,
    sim: Sim,
    api_key_file: Path,
    tmp_path: Path,
    operator_settings: dict[str, str],
    request: pytest.FixtureRequest,
) -> Iterator[Operator]:
    with running_operator(kube, sim, api_key_file, tmp_path, operator_settings, request=request) as op:
        yield op


def ssh_key(name: str = "ops-key") -> dict[str, Any]:
    return {
        "apiVersion": "barrack.ai/v1alpha1",
        "kind": "BarrackSSHKey",
        "metadata": {"name": name},
        "spec": {"publicKey": SSH_PUBLIC_KEY},
    }


def instance(name: str, image_id: str, region: str = "US-1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "barrack.ai/v1alpha1",
        "kind": "BarrackInstance",
        "metadata": {"name": name},
        "spec": {
            "region": region,
            "gpuModel": "A40",
            "imageId": image_id,
            "sshKeyRefs": [{"name": "ops-key"}],
            **spec,
        },
    }


def volume(name: str, region: str = "US-1", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "barrack.ai/v1alpha1",
        "kind": "BarrackVolume",
        "metadata": {"name": name},
        "spec": {"region": region, "sizeGB": 100, **spec},
    }


def barrack_named(manifest: dict[str, Any], barrack_name: str) -> dict[str, Any]:
    """The manifest with spec.name (the name on Barrack) set."""
    return {**manifest, "spec": {**manifest["spec"], "name": barrack_name}}
