"""The capacity benchmark (``hack/bench.py --capacity``): a scarce shelf, replayed.

60 instances, each with two alternatives (A40 in US-1, else A40 in NORWAY-1), applied in six
groups of ten a second apart (creation times differ by group). Stock: 20 in US-1 and 20 in
NORWAY-1 at the start; 10 more appear in US-1 after ``--capacity-step`` seconds and 10 more in
NORWAY-1 after twice that. Reports: every instance ACTIVE at the end; create calls per instance
and refusals; seconds from stock appearing to the create calls it served (p50, p99; the goal is
at most the fast poll + 1 s); stock reads; and whether the instances that waited were served
oldest group first.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from barrack_testkit.stack import DevStack, wait_for

GROUPS, PER_GROUP = 6, 10
US, NORWAY = "US-1", "NORWAY-1"


def instance(name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "barrack.ai/v1alpha1",
        "kind": "BarrackInstance",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "placement": [
                {"region": US, "gpuModel": "A40", "gpuCount": 1},
                {"region": NORWAY, "gpuModel": "A40", "gpuCount": 1},
            ],
            "image": {"name": "Ubuntu 22.04"},
            "sshKeyRefs": [{"name": "ops-key"}],
        },
    }


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 3) if ordered else float("nan")


def measure_capacity(
    args: argparse.Namespace, stack: DevStack, namespace: str, ssh_key: dict[str, Any]
) -> dict[str, Any]:
    import yaml

    sim, plane = stack.sim, stack.plane
    sim.admin("stock", {"stock": [{"region": US, "gpu_model": "A40", "available": 20},
                                  {"region": NORWAY, "gpu_model": "A40", "available": 20}]})  # fmt: skip
    plane.kubectl("apply", "-f", "-", input_text=yaml.safe_dump(ssh_key))
    start = time.time()
    group_of: dict[str, int] = {}
    for group in range(GROUPS):
        names = [f"gpu-{group}-{i:02d}" for i in range(PER_GROUP)]
        group_of.update(dict.fromkeys(names, group))
        text = yaml.safe_dump_all([instance(n, namespace) for n in names])
        plane.kubectl("apply", "-f", "-", input_text=text)
        time.sleep(1.1)
    step = args.capacity_step
    appear = {US: time.time() + step, NORWAY: time.time() + 2 * step}
    sim.admin("stock", {"steps": [{"after": step, "region": US, "gpu_model": "A40", "available": 10},
                                  {"after": 2 * step, "region": NORWAY, "gpu_model": "A40", "available": 10}]})  # fmt: skip

    def active() -> int:
        return sum(1 for i in sim.inventory()["instances"] if i["status"] == "ACTIVE")

    wait_for(lambda: active() >= GROUPS * PER_GROUP, args.timeout, what="every instance ACTIVE")
    seconds = time.time() - start
    created = [c for c in sim.admin("created") if c["name"] in group_of]
    refusals = sim.admin("stock")["refusals"]
    region_of = {i["name"]: i["region"] for i in sim.inventory()["instances"]}
    late = [c for c in created if c["at"] >= min(appear.values()) - 0.5]
    waits = [c["at"] - appear[region_of[c["name"]]] for c in late]
    served = [group_of[c["name"]] for c in sorted(late, key=lambda c: c["at"])]
    calls = sim.calls()
    create_calls = sum(n for k, n in calls.items() if k.startswith("create_instance "))
    stock_reads = sum(n for k, n in calls.items() if k.startswith("list_gpu_stocks "))
    return {
        "workload": "capacity",
        "instances": GROUPS * PER_GROUP,
        "active_at_end": active(),
        "seconds_to_all_active": round(seconds, 2),
        "create_calls": create_calls,
        "create_calls_per_instance": round(create_calls / (GROUPS * PER_GROUP), 3),
        "refusals": len(refusals),
        "stock_changes": 2,
        "stock_reads": stock_reads,
        "served_after_waiting": len(late),
        "stock_to_create_p50_s": _percentile(waits, 0.5),
        "stock_to_create_p99_s": _percentile(waits, 0.99),
        "poll_interval_s": args.poll_interval,
        "waiting_served_oldest_group_first": served == sorted(served),
        "waiting_served_groups": served,
    }


def run_capacity(
    args: argparse.Namespace, work: Path, start_stack: Any, namespace: str, ssh_key: dict[str, Any]
) -> dict[str, Any]:
    with start_stack(args, work) as stack:
        wait_for(stack.sim.calls, 60, what="the operator's first inventory poll")
        return measure_capacity(args, stack, namespace, ssh_key)
