"""Where the control-plane binaries are: ``$KUBEBUILDER_ASSETS`` first (the envtest convention),
then the cache that ``hack/control-plane.sh`` builds them into.

The versions below are the ones pinned in ``hack/tools/*/go.mod``; a unit test checks that the two
agree, so the cache key here is always the one the script builds.
"""

from __future__ import annotations

import os
from pathlib import Path

KUBERNETES_VERSION = "1.34.4"
ETCD_VERSION = "3.5.35"
HELM_VERSION = "3.19.2"
BINARIES = ("etcd", "kube-apiserver", "kubectl", "helm")


class MissingBinary(Exception):
    pass


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    key = f"kube-{KUBERNETES_VERSION}_etcd-{ETCD_VERSION}_helm-{HELM_VERSION}"
    return base / "barrack-operator" / "bin" / key


def find_binary(name: str) -> Path:
    candidates = []
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        candidates.append(Path(assets) / name)
    candidates.append(cache_dir() / name)
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise MissingBinary(
        f"{name} not found in {' or '.join(str(c.parent) for c in candidates)}: run hack/control-plane.sh "
        "from a checkout of barrack-operator (it builds it once), or set KUBEBUILDER_ASSETS"
    )
