#!/usr/bin/env bash
# Provide etcd, kube-apiserver, kubectl and helm at the pinned versions for the test harness and
# `barrack-operator dev-cluster`, and print the cache directory that holds the ones it built.
#
# A binary found in $KUBEBUILDER_ASSETS (the envtest convention) is used as it is. Any other is
# built once with the Go toolchain through the pinned helper modules that ship with the package
# (operator/barrack_operator/devcluster/tools/) and cached under
# ${XDG_CACHE_HOME:-~/.cache}/barrack-operator/bin/<versions>/, so later runs cost nothing.
# The build itself is barrack_operator.devcluster.binaries, which `dev-cluster` uses too.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${BARRACK_VENV:-$root/.venv}/bin/python"
[[ -x "$python" ]] || python=python3
PYTHONPATH="$root/operator${PYTHONPATH:+:$PYTHONPATH}" exec "$python" -c \
  "from barrack_operator.devcluster.binaries import main; raise SystemExit(main())"
