#!/usr/bin/env python3
"""How many calls one create that always fails makes: a BarrackInstance whose GPU is out of stock.

Starts a dev control plane, the simulator with no A40 in US-1, and the operator at its production
defaults (blocked requeue 10 s), applies one SSH key and one instance, waits the given minutes and
prints the number of create calls Barrack received, as a table line and a JSON line.

    python hack/failing-create.py --minutes 10
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))

from barrack_testkit.stack import dev_stack, wait_for  # noqa: E402

API_KEY = "failing-create-key-31f7"
NAMESPACE = "failing-create"
SSH_PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZhaWxpbmctY3JlYXRl ops@example"


def manifests(image_id: str) -> str:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "List",
            "items": [
                {
                    "apiVersion": "barrack.ai/v1alpha1",
                    "kind": "BarrackSSHKey",
                    "metadata": {"name": "ops-key"},
                    "spec": {"publicKey": SSH_PUBLIC_KEY},
                },
                {
                    "apiVersion": "barrack.ai/v1alpha1",
                    "kind": "BarrackInstance",
                    "metadata": {"name": "no-stock"},
                    "spec": {
                        "region": "US-1",
                        "gpuModel": "A40",
                        "imageId": image_id,
                        "sshKeyRefs": [{"name": "ops-key"}],
                    },
                },
            ],
        }
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="barrack-failing-create-"))
    try:
        with dev_stack(work, ROOT / "crds", API_KEY, namespace=NAMESPACE) as stack:
            stack.sim.admin("config", {"stock": [{"region": "US-1", "gpu_model": "A40", "available": 0}]})
            stack.plane.kubectl("-n", NAMESPACE, "apply", "-f", "-", input_text=manifests(stack.sim.image()))

            def first_create() -> bool:
                return any(k.startswith("create_instance ") for k in stack.sim.calls())

            wait_for(first_create, 120, what="the first create call")
            started = time.monotonic()
            time.sleep(args.minutes * 60)
            calls = sum(n for k, n in stack.sim.calls().items() if k.startswith("create_instance "))
            status = stack.plane.kubectl(
                "-n", NAMESPACE, "get", "binst", "no-stock", "-o", "jsonpath={.status.conditions}"
            ).stdout
            seconds = time.monotonic() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"create calls in {seconds / 60:.1f} min after the first: {calls}")
    print(f"last conditions: {status}")
    print(json.dumps({"minutes": round(seconds / 60, 2), "create_calls": calls}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
