#!/usr/bin/env bash
# The project's one test command. On a fresh machine it sets itself up: a virtual environment with
# the project and its test extras, the control-plane binaries (built once from the Go module proxy
# and cached outside the repo, or taken from $KUBEBUILDER_ASSETS), then lint, types and every test,
# unit and integration (real etcd + kube-apiserver, the simulator over HTTP, the operator process).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

venv="${BARRACK_VENV:-$root/.venv}"
if [[ ! -x "$venv/bin/python" ]]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -e ".[test]"

bash hack/control-plane.sh >/dev/null

echo "== ruff"
"$venv/bin/ruff" check operator tests
echo "== mypy --strict operator/"
"$venv/bin/mypy" operator
echo "== pytest"
"$venv/bin/pytest" "$@"
