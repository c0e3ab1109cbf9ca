"""The simulator and the operator as real local processes: what the integration tests, the
benchmark, the soak and the demo start next to a :class:`ControlPlane`. Each process runs in its
own session and is stopped by its own process group, never by name."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from barrack_operator.devcluster.cluster import ControlPlane, free_port

CLI = [sys.executable, "-m", "barrack_operator.cli"]


def wait_for(
    predicate: Callable[[], Any], timeout: float = 60.0, interval: float = 0.3, what: str = "condition"
) -> Any:
    """Poll ``predicate`` until it returns something truthy; raise AssertionError on timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last value: {last!r}")


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not gone within ``timeout``."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _spawn(args: list[str], log_path: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen[bytes]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env=dict(env) if env else None, start_new_session=True
        )


@dataclass
class SimProcess:
    """``barrack-operator sim`` on a free loopback port, with its admin API at hand."""

    url: str
    api_key: str
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, log_dir: Path, api_key: str, *extra: str, transition_seconds: float = 1.0) -> SimProcess:
        port = free_port()
        args = [*CLI, "sim", "--port", str(port), "--api-key", api_key]
        args += ["--transition-seconds", str(transition_seconds), "--seed", "3", *extra]
        sim = cls(f"http://127.0.0.1:{port}", api_key, _spawn(args, log_dir / f"sim-{port}.log"))
        wait_for(sim.healthy, 30, what="simulator")
        return sim

    @property
    def api(self) -> str:
        return f"{self.url}/api"

    def healthy(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"simulator exited with {self.process.returncode}")
        try:
            return bool(self.admin("healthz")["ok"])
        except OSError:
            return False

    def admin(self, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.url}/_sim/{path}", data=data, method="POST" if data is not None else "GET"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, key: str | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.api}{path}",
            data=data,
            method=method,
            headers={  # both dialects' auth headers, so it reads a simulator of either
                "Authorization": f"Bearer {key or self.api_key}",
                "api_key": key or self.api_key,
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def inventory(self) -> dict[str, Any]:
        return self.admin("inventory")  # type: ignore[no-any-return]

    def calls(self) -> dict[str, int]:
        return self.admin("calls")  # type: ignore[no-any-return]

    def image(self, region: str = "US-1") -> str:
        return str(self.call("GET", f"/os-images/?region={region}")["os_images"][0]["id"])

    def stop(self) -> None:
        stop_process(self.process)


def operator_env(kubeconfig: Path, api_url: str, api_key_file: Path, **settings: str) -> dict[str, str]:
    """The operator's environment: this machine's, the cluster, the API and key file, and any
    ``BARRACK_*`` settings (given without the prefix, e.g. ``POLL_INTERVAL="0.5"``)."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "BARRACK_API_URL": api_url}
    env["BARRACK_API_KEY_FILE"] = str(api_key_file)
    env.pop("BARRACK_API_KEY", None)
    env.update({f"BARRACK_{name}": value for name, value in settings.items()})
    return env


@dataclass
class OperatorProcess:
    """``barrack-operator run`` as a process that can be started, SIGKILLed and started again."""

    log_path: Path
    env: dict[str, str]
    args: list[str]
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def start(self) -> None:
        self.process = _spawn([*CLI, "run", *self.args], self.log_path, self.env)

    def kill(self) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        stop_process(self.process)

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@dataclass
class DevStack:
    """A control plane with the CRDs installed, the simulator and the operator, as the scripts
    (demo, benchmark, soak) run them."""

    work: Path
    plane: ControlPlane
    sim: SimProcess
    operator: OperatorProcess


@contextlib.contextmanager
def dev_stack(
    work: Path,
    crds: Path,
    api_key: str,
    *,
    namespace: str | None = None,
    sim_args: Sequence[str] = (),
    transition_seconds: float = 1.0,
    settings: Mapping[str, str] | None = None,
    metrics_port: int = 0,
) -> Iterator[DevStack]:
    """Start the three in ``work`` (the operator watching ``namespace``, created here, or all
    namespaces) and stop every one of them on the way out, whatever happens."""
    plane = ControlPlane(work_dir=work / "control-plane")
    sim: SimProcess | None = None
    operator: OperatorProcess | None = None
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)  # so that the finally below runs
    try:
        plane.start()
        plane.install_crds(crds)
        if namespace:
            plane.kubectl("create", "namespace", namespace)
        sim = SimProcess.start(work, api_key, *sim_args, transition_seconds=transition_seconds)
        key_file = work / "api-key"
        key_file.write_text(api_key)
        args = ["--namespace", namespace] if namespace else []
        args += ["--liveness-port", "0", "--metrics-port", str(metrics_port)]
        env = operator_env(plane.kubeconfig, sim.api, key_file, **(settings or {}))
        operator = OperatorProcess(work / "operator.log", env, args)
        operator.start()
        yield DevStack(work, plane, sim, operator)
    finally:
        if operator is not None:
            operator.stop()
        if sim is not None:
            sim.stop()
        plane.stop()
        signal.signal(signal.SIGTERM, previous)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)
