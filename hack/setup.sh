#!/usr/bin/env bash
# Set up a fresh machine for the tests, the demo, the benchmark and the soak: a virtual environment
# with the project and its test extras, and the control-plane binaries (built once from the Go
# module proxy and cached outside the repo, or taken from $KUBEBUILDER_ASSETS). Idempotent.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv="${BARRACK_VENV:-$root/.venv}"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[test]"
bash hack/control-plane.sh >/dev/null
