#!/usr/bin/env bash
# The project's one test command. On a fresh machine it sets itself up (hack/setup.sh), then runs
# lint, types and every test: unit and integration (real etcd + kube-apiserver, the simulator over
# HTTP, the operator process, the Helm chart and the plain manifests).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
venv="${BARRACK_VENV:-$root/.venv}"

bash hack/setup.sh

echo "== ruff"
"$venv/bin/ruff" check operator tests hack
echo "== mypy --strict operator/"
"$venv/bin/mypy" operator
echo "== pytest"
"$venv/bin/pytest" "$@"
