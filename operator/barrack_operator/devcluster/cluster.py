"""Start and stop etcd, kube-apiserver and kube-controller-manager on 127.0.0.1, with generated
certificates, RBAC authorization, an admin client certificate and a kubeconfig.

The controller-manager runs the garbage collector and the namespace controller only, so
ownerReferences and namespace deletion behave as in a real cluster (envtest runs neither). It
differs from a full cluster in what needs nodes: no scheduler or kubelet, so pods never start, and
no controller of Deployments, ReplicaSets, service accounts' tokens or cloud resources. Everything
the operator relies on (CRDs, CEL validation, the status subresource, finalizers, watches,
resourceVersion conflicts, RBAC, events, garbage collection, namespace lifecycle) is real.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import yaml

from barrack_operator.devcluster import pki as pki_mod
from barrack_operator.devcluster.binaries import find_binary

READY_TIMEOUT = 90.0


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports (all held open together while they are chosen, so
    the kernel cannot hand out one twice)."""
    with contextlib.ExitStack() as stack:
        sockets = [
            stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) for _ in range(count)
        ]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]


@dataclass
class ControlPlane:
    """One etcd and one kube-apiserver. ``data_dir`` keeps etcd's data across an apiserver restart;
    without it a temporary directory is used and removed on :meth:`stop`."""

    work_dir: Path | None = None
    log_dir: Path | None = None
    apiserver_port: int = 0
    etcd_port: int = 0
    _etcd_peer_port: int = 0
    _owns_work_dir: bool = False
    _etcd: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _apiserver: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _controller_manager: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    _logs: list[IO[bytes]] = field(default_factory=list, repr=False)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    @property
    def kubeconfig(self) -> Path:
        assert self.work_dir is not None
        return self.work_dir / "kubeconfig"

    def start(self) -> None:
        if self.work_dir is None:
            self.work_dir = Path(tempfile.mkdtemp(prefix="barrack-dev-cluster-"))
            self._owns_work_dir = True
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir = self.log_dir or self.work_dir
        etcd_port, apiserver_port, self._etcd_peer_port = free_ports(3)
        self.etcd_port = self.etcd_port or etcd_port
        self.apiserver_port = self.apiserver_port or apiserver_port
        self.pki = pki_mod.generate(self.work_dir / "pki")
        self._start_etcd()
        self.start_apiserver()
        self.write_kubeconfig(self.kubeconfig)
        self._start_controller_manager()

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        assert self.log_dir is not None
        log = (self.log_dir / f"{name}.log").open("ab")
        self._logs.append(log)
        return subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent,  # noqa: PLW1509
        )

    def _start_etcd(self) -> None:
        assert self.work_dir is not None
        peer = self._etcd_peer_port
        client_url = f"http://127.0.0.1:{self.etcd_port}"
        peer_url = f"http://127.0.0.1:{peer}"
        self._etcd = self._spawn(
            "etcd",
            [
                str(find_binary("etcd")),
                f"--data-dir={self.work_dir / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ],
        )
        self._wait(lambda: self._http_ok(f"{client_url}/health"), "etcd", self._etcd)

    def start_apiserver(self) -> None:
        """Start (or restart, after :meth:`stop_apiserver`) the apiserver on the same port and etcd."""
        pki = self.pki
        self._apiserver = self._spawn(
            "kube-apiserver",
            [
                str(find_binary("kube-apiserver")),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.apiserver_port}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--client-ca-file={pki.ca_cert}",
                f"--service-account-key-file={pki.sa_pub}",
                f"--service-account-signing-key-file={pki.sa_key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                "--service-cluster-ip-range=10.0.0.0/24",
                "--authorization-mode=RBAC",
                "--allow-privileged=true",
                "--disable-admission-plugins=ServiceAccount",
                "--enable-priority-and-fairness=false",
                "--storage-backend=etcd3",
                "--v=1",
            ],
        )
        self._wait(self._apiserver_ready, "kube-apiserver", self._apiserver)

    CONTROLLERS = ("garbagecollector", "namespace")
    """The controller-manager's controllers the test cluster runs (it needs no others)."""

    def _start_controller_manager(self) -> None:
        """The garbage collector and the namespace controller, as the admin, serving nothing (they
        survive an apiserver restart: they watch it again)."""
        self._controller_manager = self._spawn(
            "kube-controller-manager",
            [
                str(find_binary("kube-controller-manager")),
                f"--kubeconfig={self.kubeconfig}",
                f"--controllers={','.join(self.CONTROLLERS)}",
                "--leader-elect=false",
                "--secure-port=0",
                "--concurrent-gc-syncs=5",
                "--concurrent-namespace-syncs=5",
                "--v=1",
            ],
        )
        time.sleep(0.5)  # it exits at once on a bad flag: say so here, not in a test much later
        if self._controller_manager.poll() is not None:
            raise RuntimeError(
                f"kube-controller-manager exited with {self._controller_manager.returncode}; see "
                f"{self.log_dir}/kube-controller-manager.log"
            )

    def stop_apiserver(self) -> None:
        self._terminate(self._apiserver)
        self._apiserver = None

    def stop(self) -> None:
        self._terminate(self._controller_manager)
        self._controller_manager = None
        self.stop_apiserver()
        self._terminate(self._etcd)
        self._etcd = None
        for log in self._logs:
            log.close()
        self._logs.clear()
        if self._owns_work_dir and self.work_dir is not None:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Readiness -----------------------------------------------------------------------------------

    @staticmethod
    def _terminate(process: subprocess.Popen[bytes] | None) -> None:
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def _wait(self, ready: Callable[[], bool], name: str, process: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with {process.returncode}; see {self.log_dir}/{name}.log")
            if ready():
                return
            time.sleep(0.2)
        raise RuntimeError(f"{name} was not ready within {READY_TIMEOUT:.0f}s; see {self.log_dir}/{name}.log")

    @staticmethod
    def _http_ok(url: str, context: ssl.SSLContext | None = None) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        context.load_cert_chain(str(self.pki.admin_cert), str(self.pki.admin_key))
        return context

    def _apiserver_ready(self) -> bool:
        return self._http_ok(f"{self.url}/readyz", self.ssl_context())

    # Kubeconfig ----------------------------------------------------------------------------------

    def kubeconfig_dict(self) -> dict[str, object]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "barrack-dev",
                    "cluster": {"server": self.url, "certificate-authority": str(self.pki.ca_cert)},
                }
            ],
            "users": [
                {
                    "name": "admin",
                    "user": {
                        "client-certificate": str(self.pki.admin_cert),
                        "client-key": str(self.pki.admin_key),
                    },
                }
            ],
            "contexts": [{"name": "barrack-dev", "context": {"cluster": "barrack-dev", "user": "admin"}}],
            "current-context": "barrack-dev",
        }

    def write_kubeconfig(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.kubeconfig_dict(), sort_keys=False))
        path.chmod(0o600)
        return path

    def kubectl(
        self, *args: str, input_text: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(find_binary("kubectl")), f"--kubeconfig={self.kubeconfig}", *args],
            input=input_text,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if check and result.returncode != 0:  # what kubectl said is the point of the failure
            raise subprocess.CalledProcessError(
                result.returncode, result.args, result.stdout, f"{result.stderr}"
            ) from RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return result

    def apply_files(self, *paths: Path) -> None:
        for path in paths:
            self.kubectl("apply", "--server-side", "-f", str(path))

    def install_crds(self, directory: Path, timeout: float = 60.0) -> None:
        """Apply the CRDs in ``directory`` and wait until each is Established and its objects can be
        listed (right after Established the apiserver may still answer 429 "storage is
        (re)initializing", which a watcher started then would meet)."""
        self.apply_files(directory)
        self.kubectl("wait", "--for=condition=Established", "crd", "--all", f"--timeout={timeout:.0f}s")
        names = self.kubectl("get", "crd", "-o", "name").stdout.split()
        resources = [name.removeprefix("customresourcedefinition.apiextensions.k8s.io/") for name in names]
        deadline = time.monotonic() + timeout
        while any(self.kubectl("get", r, "-A", check=False).returncode != 0 for r in resources):
            if time.monotonic() > deadline:
                raise RuntimeError(f"CRDs in {directory} were not served within {timeout:.0f}s")
            time.sleep(0.2)
        # kubectl keeps what discovery said (kinds, short names, categories) on disk for minutes:
        # read it again, so that a CRD installed anew is known by its category at once.
        self.kubectl("api-resources", "--cached=false", "-o", "name")


PR_SET_PDEATHSIG = 1
try:  # loaded once, before any fork
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
except OSError:
    _LIBC = None


def die_with_parent() -> None:
    """In a child before it runs its program (Linux): the kernel sends it SIGKILL when the thread
    that started it ends, however the process dies (SIGKILL included), so etcd and kube-apiserver
    never outlive ``barrack-operator dev-cluster`` or a test run. One system call, no lock taken:
    safe between fork and exec. Elsewhere, a no-op."""
    if _LIBC is not None and hasattr(_LIBC, "prctl"):
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
