#!/usr/bin/env python3
"""Benchmark: N BarrackVolumes applied at once against a rate-limited Barrack.

Starts a dev control plane, the simulator (a rate limit of R requests per second and a fixed
transition time) and the operator (its rate plus burst set a little under R, so that jitter on the way does not push the
arrival rate over R), applies N BarrackVolumes in
one go, waits until every one is Ready, then stays idle for three idle-poll intervals. Prints a
table and, as its last line, one JSON object.

    python hack/bench.py --n 500 --rps 20

The lower bound is what the rate limit and the transition time allow at best: N creates at R per
second, one listing of every volume (100 a page) after the last create, and one transition.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))

from barrack_operator.devcluster import ControlPlane  # noqa: E402
from barrack_operator.devcluster.cluster import free_port  # noqa: E402
from barrack_testkit.stack import DevStack, SimProcess, dev_stack, wait_for  # noqa: E402

API_KEY = "bench-key-5c0ffee"
NAMESPACE = "bench"
PAGE_LIMIT = 100
READY = '{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}'


def write_manifests(work: Path, n: int, streams: int) -> list[Path]:
    """N volumes split into ``streams`` List files, created by as many kubectl processes at once."""
    paths = []
    for stream in range(streams):
        path = work / f"volumes-{stream}.json"
        path.write_text(volumes(range(stream, n, streams)))
        paths.append(path)
    return paths


def apply_all(plane: ControlPlane, manifests: list[Path]) -> None:
    with ThreadPoolExecutor(len(manifests)) as pool:
        for result in pool.map(lambda path: plane.kubectl("create", "-f", str(path)), manifests):
            result.check_returncode()


def volumes(indexes: range) -> str:
    items = [
        {
            "apiVersion": "barrack.ai/v1alpha1",
            "kind": "BarrackVolume",
            "metadata": {"name": f"vol-{i:05d}", "namespace": NAMESPACE},
            "spec": {"region": "US-1", "sizeGB": 100},
        }
        for i in indexes
    ]
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": items})


def ready_count(plane: ControlPlane) -> int:
    out = plane.kubectl("-n", NAMESPACE, "get", "barrackvolumes", "-o", f"jsonpath={READY}").stdout
    return sum(1 for line in out.splitlines() if line.strip() == "True")


def metric(port: int, name: str) -> float:
    """A metric from the operator's metrics endpoint, summed over its labels (every account);
    NaN when it cannot be read."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return math.nan
    samples = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + " ", name + "{"))
    ]
    return sum(samples) if samples else math.nan


def barrack_calls(sim: SimProcess) -> int:
    return sum(sim.calls().values())


def proc_figures(pid: int) -> tuple[float, float]:
    """(peak RSS in MB, CPU seconds) of a live process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    hwm_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return hwm_kb / 1024, (int(fields[11]) + int(fields[12])) / ticks


def start_stack(args: argparse.Namespace, work: Path) -> contextlib.AbstractContextManager[DevStack]:
    settings = {
        "REQUESTS_PER_SECOND": str(args.rps * args.headroom - args.burst),
        "BURST": str(args.burst),
        "POLL_INTERVAL": str(args.poll_interval),
        "IDLE_POLL_INTERVAL": str(args.idle_poll_interval),
        "LOG_LEVEL": "warning",
    }
    return dev_stack(
        work,
        ROOT / "crds",
        API_KEY,
        namespace=NAMESPACE,
        sim_args=("--rate-limit", str(args.rps), "--balance", "100000000"),
        transition_seconds=args.transition_seconds,
        settings=settings,
        metrics_port=args.metrics_port,
    )


def measure(args: argparse.Namespace, work: Path, stack: DevStack) -> dict[str, float | int]:
    plane, sim = stack.plane, stack.sim
    manifests = write_manifests(work, args.n, args.apply_streams)
    calls_before = barrack_calls(sim)
    started = time.monotonic()
    apply_all(plane, manifests)
    print(f"applied {args.n} BarrackVolumes in {time.monotonic() - started:.1f}s", file=sys.stderr)
    last_report = 0.0

    def all_ready() -> bool:
        nonlocal last_report
        count = ready_count(plane)
        if time.monotonic() - last_report > args.report_every:
            last_report = time.monotonic()
            created = sim.calls().get("create_volume 200", 0)
            queued = metric(args.metrics_port, "barrack_rate_limiter_queued")
            print(
                f"  {last_report - started:6.1f}s  created {created:5d}  ready {count:5d}/{args.n}"
                f"  queued {queued:5.0f}",
                file=sys.stderr,
            )
        return count == args.n

    wait_for(all_ready, args.timeout, interval=0.5, what="every volume Ready")
    seconds = time.monotonic() - started
    calls_to_ready = barrack_calls(sim) - calls_before
    idle_before = barrack_calls(sim)
    time.sleep(3 * args.idle_poll_interval)
    idle_calls = barrack_calls(sim) - idle_before
    rss_mb, cpu_seconds = proc_figures(stack.operator.pid)
    lower = args.n / args.rps + math.ceil(args.n / PAGE_LIMIT) / args.rps + args.transition_seconds
    return {
        "n": args.n,
        "rps_limit": args.rps,
        "transition_seconds": args.transition_seconds,
        "seconds_to_all_ready": round(seconds, 2),
        "lower_bound_seconds": round(lower, 2),
        "ratio_to_lower_bound": round(seconds / lower, 3),
        "api_calls_total": barrack_calls(sim),
        "api_calls_to_ready": calls_to_ready,
        "throttled_429": sum(n for key, n in sim.calls().items() if key.endswith(" 429")),
        "steady_calls_per_object_per_poll": round(idle_calls / args.n / 3, 5),
        "max_rps_observed": sim.admin("rate")["max_per_second"],
        "operator_peak_rss_mb": round(rss_mb, 1),
        "operator_cpu_seconds": round(cpu_seconds, 1),
        "volumes_on_barrack": len(sim.inventory()["volumes"]),
    }


def run(args: argparse.Namespace, work: Path) -> dict[str, float | int]:
    args.metrics_port = free_port()
    with start_stack(args, work) as stack:
        wait_for(stack.sim.calls, 60, what="the operator's first inventory poll")
        return measure(args, work, stack)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=500, help="BarrackVolumes to apply at once")
    parser.add_argument("--rps", type=float, default=20.0, help="the simulator's and operator's rate limit")
    parser.add_argument(
        "--headroom", type=float, default=0.95, help="operator's rate + burst as a share of R (for jitter)"
    )
    parser.add_argument("--burst", type=int, default=2, help="operator's burst (makes up for a late wake)")
    parser.add_argument("--transition-seconds", type=float, default=2.0, help="every transition's duration")
    parser.add_argument("--poll-interval", type=float, default=2.0, help="operator's fast inventory poll (s)")
    parser.add_argument("--idle-poll-interval", type=float, default=10.0, help="operator's idle poll (s)")
    parser.add_argument("--timeout", type=float, default=1800.0, help="give up waiting for Ready after (s)")
    parser.add_argument("--apply-streams", type=int, default=4, help="kubectl processes creating the objects")
    parser.add_argument("--report-every", type=float, default=5.0, help="progress line interval (s)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) afterwards")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="barrack-bench-"))
    result = run(args, work)
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    if args.keep:
        print(f"work directory: {work}", file=sys.stderr)
    else:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
