#!/usr/bin/env python3
"""Render deploy/ (plain manifests for `kubectl apply -f deploy/`) from the Helm chart.

The CRDs are in deploy/crds/, apart: `kubectl apply -f deploy/` and `kubectl delete -f deploy/`
leave them (and with them every object and its Barrack resource) alone; they are installed and
upgraded with `kubectl apply --server-side -f deploy/crds/`.

    python hack/render-deploy.py            # write deploy/
    python hack/render-deploy.py --check    # exit 1 when deploy/ differs from a fresh render

The namespace is barrack-system and the API key comes from the Secret `barrack-api-key`
(see deploy/api-key-secret.yaml.example). A test fails when deploy/ drifts from the chart.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))

from barrack_operator.devcluster.binaries import KUBERNETES_VERSION, find_binary  # noqa: E402

NAMESPACE = "barrack-system"
RELEASE = "barrack-operator"
SECRET = "barrack-api-key"
HEADER = "# Rendered from charts/barrack-operator by hack/render-deploy.py; do not edit by hand.\n"

NAMESPACE_YAML = f"""{HEADER}apiVersion: v1
kind: Namespace
metadata:
  name: {NAMESPACE}
  labels:
    app.kubernetes.io/name: barrack-operator
    pod-security.kubernetes.io/enforce: restricted
"""

SECRET_EXAMPLE = f"""# The Barrack API key. Copy this file, put your key in, and apply it once; it is not applied by
# `kubectl apply -f deploy/` (the .example suffix keeps it out), so no placeholder key lands.
#
#   kubectl -n {NAMESPACE} create secret generic {SECRET} --from-file=api-key=./barrack-api-key
#
apiVersion: v1
kind: Secret
metadata:
  name: {SECRET}
  namespace: {NAMESPACE}
type: Opaque
stringData:
  api-key: "<your Barrack API key>"
"""


def render() -> dict[str, str]:
    chart = ROOT / "charts" / "barrack-operator"
    operator = subprocess.run(
        [
            str(find_binary("helm")),
            "template",
            RELEASE,
            str(chart),
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBERNETES_VERSION,
            "--set",
            f"apiKey.existingSecret={SECRET}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    crds = "---\n".join(path.read_text() for path in sorted((ROOT / "crds").glob("*.yaml")))
    return {
        "crds/barrack-crds.yaml": HEADER + crds,
        "00-namespace.yaml": NAMESPACE_YAML,
        "01-operator.yaml": HEADER + operator,
        "api-key-secret.yaml.example": SECRET_EXAMPLE,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    deploy = ROOT / "deploy"
    stale = []
    for name, text in render().items():
        path = deploy / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(path.relative_to(ROOT))
    if stale:
        print(f"deploy/ drifted from the chart: {', '.join(stale)}; run: python hack/render-deploy.py")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
