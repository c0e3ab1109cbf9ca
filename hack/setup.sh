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
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
# The runtime dependencies exactly as the image gets them (every file checked against the lock's
# hashes), then the project and its test tools with the lock as constraints (pip cannot hash an
# editable install, so the constraints are the lock's pins without their hashes).
"${pip[@]}" --require-hashes --no-deps -r requirements.lock
sed -e '/--hash=/d' -e 's/ *\\$//' requirements.lock > "$venv/constraints.txt"
"${pip[@]}" -c "$venv/constraints.txt" -e ".[test]"
bash hack/control-plane.sh >/dev/null
