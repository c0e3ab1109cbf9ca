"""The control-plane binaries (etcd, kube-apiserver, kube-controller-manager, kubectl, helm) at the
pinned versions: found in
``$KUBEBUILDER_ASSETS`` (the envtest convention) or in the cache, or built once into the cache with
the Go toolchain from the Go module proxy.

The pins travel with the package: ``tools/<name>/go.mod`` beside this file are small Go modules that
require exactly these versions (``tools/kube`` replaces Kubernetes' staging modules by their
published versions, so kube-apiserver can be built outside its repository). A unit test checks that
the constants below agree with them. ``barrack-operator dev-cluster`` and ``hack/control-plane.sh``
(through :func:`main`) both build through :func:`ensure_binaries`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

KUBERNETES_VERSION = "1.34.4"
ETCD_VERSION = "3.5.35"
HELM_VERSION = "3.19.2"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl", "helm")
TOOLS = Path(__file__).resolve().parent / "tools"


class MissingBinary(Exception):
    pass


@dataclass(frozen=True)
class Build:
    module_dir: str
    package: str
    ldflags: str = ""


def _kube_ldflags() -> str:
    minor = KUBERNETES_VERSION.split(".")[1]
    version = f"v{KUBERNETES_VERSION}"
    return " ".join(
        [
            f"-X k8s.io/component-base/version.gitVersion={version}",
            "-X k8s.io/component-base/version.gitMajor=1",
            f"-X k8s.io/component-base/version.gitMinor={minor}",
            "-X k8s.io/component-base/version.gitTreeState=clean",
            f"-X k8s.io/client-go/pkg/version.gitVersion={version}",
        ]
    )


def _helm_ldflags() -> str:
    """Helm's version, and the Kubernetes version a bare ``helm template`` and ``helm lint`` assume
    (helm's own release builds set it from its client-go; unset, it is 1.20)."""
    minor = KUBERNETES_VERSION.split(".")[1]
    return " ".join(
        [
            f"-X helm.sh/helm/v3/internal/version.version=v{HELM_VERSION}",
            *(
                f"-X helm.sh/helm/v3/pkg/{package}.k8sVersion{part}={value}"
                for package in ("chartutil", "lint/rules")
                for part, value in (("Major", "1"), ("Minor", minor))
            ),
        ]
    )


BUILDS: dict[str, Build] = {
    "etcd": Build("etcd", "go.etcd.io/etcd/server/v3"),
    "kube-apiserver": Build("kube", "k8s.io/kubernetes/cmd/kube-apiserver", _kube_ldflags()),
    "kube-controller-manager": Build(
        "kube", "k8s.io/kubernetes/cmd/kube-controller-manager", _kube_ldflags()
    ),
    "kubectl": Build("kube", "k8s.io/kubernetes/cmd/kubectl", _kube_ldflags()),
    "helm": Build("helm", "helm.sh/helm/v3/cmd/helm", _helm_ldflags()),
}


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = f"kube-{KUBERNETES_VERSION}_etcd-{ETCD_VERSION}_helm-{HELM_VERSION}"
    return base / "barrack-operator" / "bin" / key


def _candidates(name: str) -> list[Path]:
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    return ([Path(assets) / name] if assets else []) + [cache_dir() / name]


def _usable(path: Path) -> bool:
    """An executable file; in the cache, one built with today's flags (its stamp says which)."""
    if not (path.is_file() and os.access(path, os.X_OK)):
        return False
    return path.parent != cache_dir() or (
        _stamp(path.name).is_file() and (_stamp(path.name).read_text() == BUILDS[path.name].ldflags)
    )


def _stamp(name: str) -> Path:
    """Beside a built binary: the flags it was built with (a change of them builds it again)."""
    return cache_dir() / f".{name}.ldflags"


def find_binary(name: str) -> Path:
    candidates = _candidates(name)
    for candidate in candidates:
        if _usable(candidate):
            return candidate
    raise MissingBinary(
        f"{name} not found in {' or '.join(str(c.parent) for c in candidates)}: `barrack-operator dev-cluster` "
        "(or hack/control-plane.sh) builds it once with Go; or set KUBEBUILDER_ASSETS"
    )


def ensure_binaries(
    names: Iterable[str] = BINARIES, *, say: Callable[[str], None] = lambda line: print(line, file=sys.stderr)
) -> Path:
    """Build each of ``names`` that is not found, once, into the cache; returns the cache. Says
    what it builds while it works; raises :class:`MissingBinary` naming Go when Go is missing."""
    missing = [name for name in names if not any(_usable(c) for c in _candidates(name))]
    if missing and shutil.which("go") is None:
        raise MissingBinary(
            f"{', '.join(missing)} must be built once, and that needs Go (https://go.dev/dl/, 1.24 or later) "
            "on PATH, which is missing; install Go and run again, or set KUBEBUILDER_ASSETS to a directory "
            "holding etcd, kube-apiserver, kube-controller-manager, kubectl and helm"
        )
    cache = cache_dir()
    for name in missing:
        build = BUILDS[name]
        say(
            f"control-plane: building {name} ({build.package}) once into {cache}; the first build takes minutes"
        )
        cache.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="barrack-tools-") as work:
            module = Path(work) / build.module_dir  # a copy: the package may be read-only
            shutil.copytree(TOOLS / build.module_dir, module)
            partial = cache / f"{name}.partial"
            result = subprocess.run(
                [
                    "go",
                    "build",
                    "-ldflags",
                    f"-s -w {build.ldflags}".strip(),
                    "-o",
                    str(partial),
                    build.package,
                ],
                cwd=module,
                env={**os.environ, "GOFLAGS": "-mod=mod"},
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise MissingBinary(f"building {name} failed:\n{result.stderr[-4000:]}")
            partial.replace(cache / name)
            _stamp(name).write_text(build.ldflags)
        say(f"control-plane: built {name} in {time.monotonic() - started:.0f}s")
    return cache


def main() -> int:
    """Build what is missing and print the cache directory (``hack/control-plane.sh``)."""
    try:
        print(ensure_binaries())
    except MissingBinary as exc:
        print(f"control-plane: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
