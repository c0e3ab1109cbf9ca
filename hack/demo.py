#!/usr/bin/env python3
"""The demo (`make demo`): a local control plane, the Barrack simulator and the operator; the
complete sample applied; its resources going from CREATING to Ready; a detach that Barrack's
rules block, and its resolution; then everything deleted and every process stopped."""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))

from barrack_operator.devcluster import ControlPlane  # noqa: E402
from barrack_testkit.stack import dev_stack  # noqa: E402

API_KEY = "demo-key-not-secret"
SAMPLE = ROOT / "deploy" / "samples" / "complete.yaml"


def say(text: str) -> None:
    print(f"\n\033[1m== {text}\033[0m", flush=True)


def watch(plane: ControlPlane, done: Callable[[], bool], timeout: float = 180.0, every: float = 3.0) -> None:
    """Print `kubectl get barrack` whenever it changes, until ``done()``."""
    deadline, last = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        finished = done()
        table = plane.kubectl("get", "barrack", "-n", "default").stdout
        if table != last or finished:
            print(f"$ kubectl get barrack   ({time.strftime('%H:%M:%S')})\n{table}", flush=True)
            last = table
        if finished:
            return
        time.sleep(every)
    raise SystemExit("the demo timed out; see the operator log above")


def conditions(plane: ControlPlane, kind: str, name: str) -> dict[str, dict[str, str]]:
    out = plane.kubectl("get", kind, name, "-n", "default", "-o", "json", check=False)
    if out.returncode != 0:
        return {}
    return {c["type"]: c for c in json.loads(out.stdout).get("status", {}).get("conditions", [])}


def all_ready(plane: ControlPlane) -> bool:
    items = json.loads(plane.kubectl("get", "barrack", "-n", "default", "-o", "json").stdout)["items"]
    ready = [
        any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in (i.get("status") or {}).get("conditions", [])
        )
        for i in items
    ]
    return len(ready) == 4 and all(ready)


def follow_volume(plane: ControlPlane, until: Callable[[dict[str, dict[str, str]]], bool]) -> None:
    """Print the volume's conditions each time they change, until ``until(conditions)``."""
    last: dict[str, tuple[str, str]] = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = conditions(plane, "barrackvolume", "datasets")
        for type_, c in now.items():
            if last.get(type_) != (c["status"], c["reason"]):
                print(f"  {type_:<9} {c['status']:<5} {c['reason']:<16} {c['message']}", flush=True)
        last = {t: (c["status"], c["reason"]) for t, c in now.items()}
        if until(now):
            return
        time.sleep(1)
    raise SystemExit("the demo timed out waiting for the volume")


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="barrack-demo-"))
    say("Starting etcd and kube-apiserver (no Docker needed), the Barrack simulator and the operator")
    settings = {"POLL_INTERVAL": "1", "BLOCKED_REQUEUE": "3"}
    with dev_stack(work, ROOT / "crds", API_KEY, transition_seconds=4.0, settings=settings) as stack:
        plane, sim = stack.plane, stack.sim
        print(f"kubeconfig: {plane.kubeconfig}   simulator: {sim.url}   logs: {work}")

        say(f"kubectl apply -f {SAMPLE.relative_to(ROOT)}")
        print(plane.kubectl("apply", "-n", "default", "-f", str(SAMPLE)).stdout)
        watch(plane, lambda: all_ready(plane))

        say("Detach the volume while its instance runs: Barrack allows it only from SHUTOFF")
        print(
            "$ kubectl patch barrackvolume datasets --type=json -p '[{op: remove, path: /spec/instanceRef}]'"
        )
        plane.kubectl(
            "patch", "bvol", "datasets", "-n", "default", "--type=json",
            "-p", '[{"op": "remove", "path": "/spec/instanceRef"}]',
        )  # fmt: skip
        follow_volume(plane, lambda c: c.get("Synced", {}).get("reason") == "DetachBlocked")
        events = plane.kubectl(
            "get", "events", "-n", "default", "--field-selector", "involvedObject.name=datasets"
        )
        print(f"$ kubectl get events --field-selector involvedObject.name=datasets\n{events.stdout}")

        say("Do what the condition says: stop the instance")
        print(
            """$ kubectl patch barrackinstance trainer --type=merge -p '{"spec": {"powerState": "Stopped"}}'"""
        )
        plane.kubectl(
            "patch",
            "binst",
            "trainer",
            "-n",
            "default",
            "--type=merge",
            "-p",
            '{"spec": {"powerState": "Stopped"}}',
        )
        follow_volume(
            plane,
            lambda c: (
                c.get("Attached", {}).get("status") == "False" and c.get("Synced", {}).get("status") == "True"
            ),
        )
        watch(plane, lambda: all_ready(plane), every=2)

        say("Delete everything; the operator deletes the Barrack resources first (finalizers)")
        plane.kubectl("delete", "-n", "default", "-f", str(SAMPLE), "--timeout=180s")
        left = {
            kind: len(items) for kind, items in sim.inventory().items() if isinstance(items, list) and items
        }
        print(f"Barrack resources left: {left or 'none'}")
        say("Done: stopping the operator, the simulator and the control plane")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
