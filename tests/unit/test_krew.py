"""The krew manifest installs what hack/krew-package.py builds: its sha256 is a fresh build's, its
version the project's, and its launcher runs the plugin's module."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import tarfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("krew_package", ROOT / "hack" / "krew-package.py")
assert spec is not None and spec.loader is not None
krew = importlib.util.module_from_spec(spec)
spec.loader.exec_module(krew)


def test_the_manifest_matches_a_fresh_build_and_the_projects_version() -> None:
    manifest = yaml.safe_load((ROOT / "deploy" / "krew" / "barrack.yaml").read_text())
    assert manifest["kind"] == "Plugin" and manifest["metadata"]["name"] == "barrack"
    data = krew.archive()
    assert data == krew.archive(), "the archive is built byte for byte the same"
    (platform,) = manifest["spec"]["platforms"]
    assert platform["sha256"] == hashlib.sha256(data).hexdigest(), "run hack/krew-package.py"
    assert manifest["spec"]["version"] == f"v{krew.version()}" and krew.version() in platform["uri"]
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        launcher = tar.extractfile(platform["bin"])
        assert launcher is not None and "barrack_operator.plugin.main" in launcher.read().decode()
        assert tar.getmember(platform["bin"]).mode == 0o755
