#!/usr/bin/env python3
"""Benchmark: N objects applied at once against a rate-limited Barrack.

Starts a dev control plane, the simulator (a rate limit of R requests per second and a fixed
transition time) and the operator (its rate plus burst at R: its limiter counts each request
from its grant until a second after its answer, so Barrack never sees more than R in a second),
applies the workload in one go, waits until every object is Ready, stays idle for three
idle-poll intervals, then (``--restart``) SIGKILLs the operator and starts it again. Prints a table and, as its last line, one JSON object.

    python hack/bench.py --n 500 --rps 20                  # N BarrackVolumes
    python hack/bench.py --n 500 --rps 20 --mix --restart  # a platform team's mix

Workloads. ``volumes``: N BarrackVolumes. ``mix``: for each of N/4 units an instance and two
volumes attached to it; up to 20 SSH keys and up to 20 firewalls (one rule each) shared by the
instances, as Barrack allows at most 25 of each per account (about N objects).

The lower bound is what the rate limit and Barrack's transitions allow at best: every mutating
call the workload needs at R per second, one listing of the kind that finishes last (100 a page),
and the longest chain of transitions (a volume: its create; the mix: an instance's CREATING, then
its volumes' attach).

Figures: ``seconds_to_all_ready`` runs from the apply to the moment the bench's watch saw the
last object Ready (``seconds_to_all_ready_polled`` to the moment a poll every 0.5 s and a listing
of every object confirmed it, as runs before 3 December measured: 0.3 to 1 s later);
``look_pages_to_ready`` is the pages the operator read in looks at moving resources (its metric
``barrack_inventory_look_reads_total``); ``barrack_answer_mean_s`` the mean time from a call's
slot to its answer (``barrack_api_call_seconds``: the limiter counts a request until a second
after its answer, so slow answers slow the pace); ``kube_writes_per_object`` counts the operator's writes
to the apiserver (PATCH and PUT on the barrack.ai kinds and their status, events created) from
apply to all Ready, from the apiserver's own request counter; ``condition_latency_*`` is, per
object, the time from the simulator's last transition of its resource (a firewall's include its
attachments') to the Ready=True the bench's watch saw;
``restart_*_60s`` count the 60 s after a SIGKILL and a start, and ``seconds_to_first_reconcile``
the time from that start to the first reconcile.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))
sys.path.insert(0, str(ROOT / "hack"))

from barrack_operator.devcluster import ControlPlane  # noqa: E402
from barrack_operator.devcluster.binaries import find_binary  # noqa: E402
from barrack_operator.devcluster.cluster import free_port  # noqa: E402
from barrack_operator.progress import Progress  # noqa: E402
from barrack_testkit.stack import DevStack, SimProcess, dev_stack, wait_for  # noqa: E402

API_KEY = "bench-key-5c0ffee"
NAMESPACE = "bench"
PAGE_LIMIT = 100
FIREWALL_GROUP = 10
MAX_SHARED = 20
GROUP, VERSION = "barrack.ai", "v1alpha1"
PUBLIC_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIaS0yLN3D7RQbjZ9OLqyVRe7XxpQ8ZtmG/S1CUFWpYk bench"
READY = '{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}'
WRITE_VERBS = {"PATCH", "PUT"}


# The workloads ------------------------------------------------------------------------------------


def _obj(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": kind,
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }


def volume_workload(n: int) -> list[dict[str, Any]]:
    return [_obj("BarrackVolume", f"vol-{i:05d}", {"region": "US-1", "sizeGB": 100}) for i in range(n)]


def mix_workload(n: int, image_id: str) -> list[dict[str, Any]]:
    """N/4 units of an instance and two volumes attached to it; SSH keys and firewalls shared, as
    Barrack allows at most 25 of each per account: up to 20 keys (instance k uses key k mod 20)
    and up to 20 firewalls (one per 10 instances, then each over more), each with one rule."""
    units = max(1, n // 4)
    keys = min(MAX_SHARED, units)
    firewalls = min(MAX_SHARED, math.ceil(units / FIREWALL_GROUP))
    objects = [_obj("BarrackSSHKey", f"key-{k:02d}", {"publicKey": PUBLIC_KEY}) for k in range(keys)]
    for k in range(units):
        spec = {
            "region": "US-1",
            "gpuModel": "A40",
            "imageId": image_id,
            "sshKeyRefs": [{"name": f"key-{k % keys:02d}"}],
        }
        objects.append(_obj("BarrackInstance", f"inst-{k:05d}", spec))
        for side in ("a", "b"):
            spec = {"region": "US-1", "sizeGB": 100, "instanceRef": {"name": f"inst-{k:05d}"}}
            objects.append(_obj("BarrackVolume", f"vol-{k:05d}-{side}", spec))
    rule = {"direction": "ingress", "protocol": "tcp", "portRangeMin": 22, "portRangeMax": 22}
    for g in range(firewalls):
        members = [{"name": f"inst-{k:05d}"} for k in range(g, units, firewalls)]
        objects.append(
            _obj(
                "BarrackFirewall", f"fw-{g:02d}", {"region": "US-1", "rules": [rule], "instanceRefs": members}
            )
        )
    return objects


def lower_bound(objects: list[dict[str, Any]], rps: float, transition: float) -> tuple[float, int]:
    """(seconds, mutating calls) the workload needs at best."""
    kinds = [o["kind"] for o in objects]
    volumes = kinds.count("BarrackVolume")
    attached = sum(1 for o in objects if o["kind"] == "BarrackVolume" and "instanceRef" in o["spec"])
    firewalls = [o for o in objects if o["kind"] == "BarrackFirewall"]
    calls = (
        kinds.count("BarrackSSHKey")
        + kinds.count("BarrackInstance")
        + volumes
        + attached  # one attach per volume
        + sum(1 + len(f["spec"]["rules"]) + 1 for f in firewalls)  # create, its rules, one attach
    )
    chain = 2 * transition if attached else transition  # instance CREATING, then the attach
    last_listing = math.ceil(volumes / PAGE_LIMIT)
    return calls / rps + last_listing / rps + chain, calls


def write_manifests(work: Path, objects: list[dict[str, Any]], streams: int) -> list[Path]:
    """The objects split into ``streams`` List files, created by as many kubectl processes at once
    (each file in dependency order: keys, instances, volumes, firewalls)."""
    order = {"BarrackSSHKey": 0, "BarrackInstance": 1, "BarrackVolume": 2, "BarrackFirewall": 3}
    ordered = sorted(objects, key=lambda o: order[o["kind"]])
    paths = []
    for stream in range(streams):
        path = work / f"objects-{stream}.json"
        path.write_text(json.dumps({"apiVersion": "v1", "kind": "List", "items": ordered[stream::streams]}))
        paths.append(path)
    return paths


def apply_all(plane: ControlPlane, manifests: list[Path]) -> None:
    """kubectl create of every file at once (no time limit: 10,000 objects take minutes)."""
    kubectl = [str(find_binary("kubectl")), f"--kubeconfig={plane.kubeconfig}", "create", "-f"]

    def create(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*kubectl, str(path)], capture_output=True, text=True, check=False)

    with ThreadPoolExecutor(len(manifests)) as pool:
        for result in pool.map(create, manifests):
            result.check_returncode()


# What is measured -----------------------------------------------------------------------------------


def ready_count(plane: ControlPlane) -> int:
    out = plane.kubectl("-n", NAMESPACE, "get", "barrack", "-o", f"jsonpath={READY}").stdout
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


_REQUEST = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")


def kube_writes_by_kind(plane: ControlPlane) -> Counter[str]:
    """The operator's writes so far, from the apiserver's request counter, by verb and resource:
    PATCH and PUT on the barrack.ai kinds (status included), and events created (nothing else
    here creates events)."""
    text = plane.kubectl("get", "--raw", "/metrics").stdout
    writes: Counter[str] = Counter()
    for line in text.splitlines():
        match = _REQUEST.match(line)
        if not match:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
        barrack = labels.get("group") == GROUP and labels.get("verb") in WRITE_VERBS
        event = labels.get("resource") == "events" and labels.get("verb") == "POST"
        if barrack or event:
            what = "/".join(filter(None, (labels.get("resource"), labels.get("subresource"))))
            writes[f"{labels['verb']} {what}"] += int(float(match["value"]))
    return writes


def barrack_calls(sim: SimProcess) -> int:
    return sum(sim.calls().values())


def unused_slots(sim: SimProcess, rps: float, start: float, end: float, timeline: bool = False) -> int:
    """Requests Barrack would have taken and was not sent, from apply to all Ready: R less the
    requests that arrived, summed over the whole seconds in between (the time the rate limit did not
    bound; printed per 10 s on stderr, and with ``timeline`` every second's requests by route)."""
    rate = sim.admin("rate")
    counts = {int(t): int(n) for t, n in rate["per_wall_second"]}
    seconds = range(math.ceil(start), math.floor(end))
    line = " ".join(
        str(sum(counts.get(t, 0) for t in seconds[i : i + 10])) for i in range(0, len(seconds), 10)
    )
    print(f"Barrack requests per 10 s from apply to Ready: {line}", file=sys.stderr)
    if timeline:
        routes = {int(t): by_route for t, by_route in rate["per_wall_second_by_route"]}
        for t in range(math.floor(start), math.ceil(end) + 1):
            calls = ", ".join(f"{name} {n}" for name, n in sorted(routes.get(t, {}).items()))
            print(f"  second {t - start:6.1f}: {calls}", file=sys.stderr)
    return round(sum(max(0.0, rps - counts.get(t, 0)) for t in seconds))


def proc_figures(pid: int) -> tuple[float, float]:
    """(peak RSS in MB, CPU seconds) of a live process, from /proc."""
    status = Path(f"/proc/{pid}/status").read_text()
    hwm_kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return hwm_kb / 1024, (int(fields[11]) + int(fields[12])) / ticks


class ReadyWatch:
    """Watches the workload's kinds and notes, per object, its Barrack id and when Ready=True was
    first seen (wall clock)."""

    def __init__(self, plane: ControlPlane, plurals: list[str]) -> None:
        from kubernetes import client, config

        self._api = client.CustomObjectsApi(config.new_client_from_config(str(plane.kubeconfig)))
        self.seen: dict[tuple[str, str], tuple[str, float]] = {}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._watch, args=(p,), daemon=True) for p in plurals]
        for thread in self._threads:
            thread.start()

    def _watch(self, plural: str) -> None:
        from kubernetes import watch

        # Each watch goes on from the last one's resourceVersion: one begun without it lists every
        # object again (at 10,000 objects, seconds of parsing in this process every 30 s, while the
        # events it measures wait behind them).
        version: str | None = None
        while not self._stop.is_set():
            watcher = watch.Watch()
            more = {"resource_version": version} if version else {}
            stream = watcher.stream(
                self._api.list_namespaced_custom_object,
                GROUP,
                VERSION,
                NAMESPACE,
                plural,
                timeout_seconds=30,
                allow_watch_bookmarks=True,
                **more,
            )
            try:
                for event in stream:
                    if event["type"] == "BOOKMARK":
                        continue
                    obj = event["object"]
                    status = obj.get("status") or {}
                    ready = any(
                        c.get("type") == "Ready" and c.get("status") == "True"
                        for c in status.get("conditions", [])
                    )
                    key = (plural, obj["metadata"]["name"])
                    if ready and key not in self.seen and status.get("id"):
                        self.seen[key] = (status["id"], time.time())
                    if self._stop.is_set():
                        return
            except Exception as error:  # 410 Gone: the version is too old; list again
                if getattr(error, "status", None) == 410:
                    version = None
                    continue
                self._stop.wait(0.5)  # the apiserver away (the bench ends, or a restart): not a busy loop
            version = watcher.resource_version or version

    def stop(self) -> None:
        self._stop.set()

    def latencies(self, sim: SimProcess) -> dict[str, list[tuple[float, float]]]:
        """Per plural, each object's time from its resource's last transition to Ready=True, and
        when that transition was (wall clock)."""
        settled: dict[str, list[float]] = {}
        for entry in sim.admin("settled"):
            # a firewall's attachment settles as "<firewall id>/<instance id>": the firewall's own
            settled.setdefault(entry["id"].split("/")[0], []).append(entry["at"])
        out: dict[str, list[tuple[float, float]]] = {}
        for (plural, _), (resource_id, seen_at) in self.seen.items():
            before = [at for at in settled.get(resource_id, []) if at <= seen_at]
            if before:
                out.setdefault(plural, []).append((seen_at - max(before), max(before)))
        return out


def percentile(values: list[float], share: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def all_latencies(by_kind: dict[str, list[tuple[float, float]]], start: float) -> list[float]:
    """Every object's condition latency; each kind's p50 and p99, and when its slowest 1% settled
    (seconds from ``start``), printed on stderr."""
    for plural, samples in sorted(by_kind.items()):
        values = [latency for latency, _ in samples]
        p50, p99 = statistics.median(values), percentile(values, 0.99)
        print(f"condition latency of {plural}: p50 {p50:.2f} s, p99 {p99:.2f} s", file=sys.stderr)
        slowest = sorted(samples, reverse=True)[: max(1, len(samples) // 100)]
        tail = ", ".join(f"{latency:.2f} s at {at - start:.1f}" for latency, at in slowest)
        print(f"  slowest 1% (latency at settled s): {tail}", file=sys.stderr)
    return [latency for samples in by_kind.values() for latency, _ in samples]


# The run -----------------------------------------------------------------------------------------------


def start_stack(args: argparse.Namespace, work: Path) -> contextlib.AbstractContextManager[DevStack]:
    settings = {
        # The limiter's cap is floor(rate + burst) per second: R - burst + 0.9 keeps the cap at R
        # and lets the cap, not the bucket, pace a long queue.
        "REQUESTS_PER_SECOND": str(args.rps * args.headroom - args.burst + 0.9),
        "BURST": str(args.burst),
        "POLL_INTERVAL": str(args.poll_interval),
        "IDLE_POLL_INTERVAL": str(args.idle_poll_interval),
        "LOG_LEVEL": args.log_level,
    }
    if args.memory_profile:
        settings["MEMORY_PROFILE"] = str(work / "memory.txt")
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


def print_memory_profile(work: Path, stack: DevStack) -> None:
    """Ask the operator for its memory profile once all are Ready; print it with the mid-burst one."""
    profile = work / "memory.txt"
    sections = profile.read_text().count("total_traced_mb") if profile.exists() else 0
    os.kill(stack.operator.pid, signal.SIGUSR2)
    wait_for(
        lambda: profile.exists() and profile.read_text().count("total_traced_mb") > sections,
        120,
        what="the operator's memory profile",
    )
    time.sleep(1)
    print(profile.read_text(), file=sys.stderr)  # mid-burst (half Ready), then once all are


def progress_of(
    args: argparse.Namespace, objects: list[dict[str, Any]], watch: ReadyWatch
) -> Callable[[], int]:
    """A progress line per kind of the workload as its objects turn Ready (none with -o json); the
    callable shows it and answers how many are Ready."""
    progress = Progress(quiet=args.output == "json", every=args.report_every)
    totals = Counter(o["kind"].lower() + "s" for o in objects)

    def show() -> int:
        ready = Counter(plural for plural, _ in list(watch.seen))
        for plural, total in sorted(totals.items()):
            progress.update(plural, ready[plural], total, "Ready")
        return ready.total()

    return show


def measure(args: argparse.Namespace, work: Path, stack: DevStack) -> dict[str, Any]:
    plane, sim = stack.plane, stack.sim
    objects = mix_workload(args.n, sim.image()) if args.mix else volume_workload(args.n)
    # GPU stock is Barrack's to ration; this measures the operator, so the simulator has plenty.
    sim.admin("config", {"stock": [{"region": "US-1", "gpu_model": "A40", "available": 1_000_000}]})
    plurals = sorted({o["kind"].lower() + "s" for o in objects})
    watch = ReadyWatch(plane, plurals)
    manifests = write_manifests(work, objects, args.apply_streams)
    calls_before, writes_before = barrack_calls(sim), kube_writes_by_kind(plane)
    routes_before = Counter(sim.calls())
    started, started_wall = time.monotonic(), time.time()
    apply_all(plane, manifests)
    print(f"applied {len(objects)} objects in {time.monotonic() - started:.1f}s", file=sys.stderr)
    last_report = 0.0
    show_progress = progress_of(args, objects, watch)

    profiled_mid_burst = not args.memory_profile

    def all_ready() -> bool:
        # Counted from the bench's watch, not by listing every object twice a second: at 10,000
        # objects such a poll costs the apiserver (and the two cores) more than the operator does.
        nonlocal last_report, profiled_mid_burst
        count = show_progress()
        if args.output != "json" and time.monotonic() - last_report > args.report_every:
            last_report = time.monotonic()
            queued = metric(args.metrics_port, "barrack_rate_limiter_queued")
            print(
                f"  {last_report - started:6.1f}s  ready {count:5d}/{len(objects)}  queued {queued:5.0f}",
                file=sys.stderr,
            )
            if not profiled_mid_burst and count >= len(objects) // 2:
                profiled_mid_burst = True
                os.kill(stack.operator.pid, signal.SIGUSR2)  # where the memory is mid-burst
        return count == len(objects) and ready_count(plane) == len(objects)

    wait_for(all_ready, args.timeout, interval=0.5, what="every object Ready")
    polled = time.monotonic() - started
    # The moment the last object turned Ready, as the watch saw it; the poll above (every 0.5 s,
    # then a listing of every object to confirm) ends 0.3 to 1 s after it.
    seconds = min(polled, max(at for _, at in watch.seen.values()) - started_wall)
    unused = unused_slots(sim, args.rps, started_wall, started_wall + seconds, args.timeline)
    calls_to_ready = barrack_calls(sim) - calls_before
    writes = kube_writes_by_kind(plane) - writes_before
    writes_to_ready = sum(writes.values())
    print(f"kube writes from apply to Ready: {dict(writes)}", file=sys.stderr)
    routes = Counter(sim.calls()) - routes_before
    print(f"Barrack calls from apply to Ready: {dict(sorted(routes.items()))}", file=sys.stderr)
    look_pages = metric(args.metrics_port, "barrack_inventory_look_reads_total")
    answer_seconds = metric(args.metrics_port, "barrack_api_call_seconds_sum") / metric(
        args.metrics_port, "barrack_api_call_seconds_count"
    )
    time.sleep(2)  # the watch's last events
    watch.stop()
    latencies = all_latencies(watch.latencies(sim), started_wall)
    idle_before = barrack_calls(sim)
    time.sleep(3 * args.idle_poll_interval)
    idle_calls = barrack_calls(sim) - idle_before
    rss_mb, cpu_seconds = proc_figures(stack.operator.pid)
    lower, needed = lower_bound(objects, args.rps, args.transition_seconds)
    calls = sim.calls()
    result: dict[str, Any] = {
        "workload": "mix" if args.mix else "volumes",
        "n": args.n,
        "objects": len(objects),
        "rps_limit": args.rps,
        "transition_seconds": args.transition_seconds,
        "seconds_to_all_ready": round(seconds, 2),
        "seconds_to_all_ready_polled": round(polled, 2),
        "lower_bound_seconds": round(lower, 2),
        "mutating_calls_needed": needed,
        "ratio_to_lower_bound": round(seconds / lower, 3),
        "api_calls_total": barrack_calls(sim),
        "api_calls_to_ready": calls_to_ready,
        "throttled_429": sum(n for key, n in calls.items() if key.endswith(" 429")),
        "responses_429": sum(n for key, n in calls.items() if key.endswith(" 429")),
        "steady_calls_per_object_per_poll": round(idle_calls / len(objects) / 3, 5),
        "max_rps_observed": sim.admin("rate")["max_per_second"],
        "unused_request_slots": unused,
        "look_pages_to_ready": None if math.isnan(look_pages) else int(look_pages),
        "barrack_answer_mean_s": None if math.isnan(answer_seconds) else round(answer_seconds, 4),
        "kube_writes_per_object": round(writes_to_ready / len(objects), 2),
        "condition_latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "condition_latency_p99_s": round(percentile(latencies, 0.99), 3) if latencies else None,
        "latency_samples": len(latencies),
        "operator_peak_rss_mb": round(rss_mb, 1),
        "operator_cpu_seconds": round(cpu_seconds, 1),
        "volumes_on_barrack": len(sim.inventory()["volumes"]),
    }
    if args.memory_profile:
        print_memory_profile(work, stack)
    if args.restart:
        result.update(restart(args, stack))
    return result


def restart(args: argparse.Namespace, stack: DevStack) -> dict[str, Any]:
    """SIGKILL and start the operator over the Ready objects: what the next 60 s cost."""
    sim, plane = stack.sim, stack.plane
    stack.operator.kill()
    routes_before = sim.calls()
    calls_before, writes_before = barrack_calls(sim), kube_writes_by_kind(plane)
    started = time.monotonic()
    stack.operator.start()
    first: float | None = None
    while time.monotonic() - started < 60:
        if first is None and metric(args.metrics_port, "barrack_reconcile_seconds_count") > 0:
            first = time.monotonic() - started
        time.sleep(0.1 if first is None else 1.0)
    routes = {r: n - routes_before.get(r, 0) for r, n in sim.calls().items() if n != routes_before.get(r, 0)}
    print(f"Barrack calls in the 60 s after the restart: {routes}", file=sys.stderr)
    writes = kube_writes_by_kind(plane) - writes_before
    print(f"Kubernetes writes in the 60 s after the restart: {dict(writes)}", file=sys.stderr)
    return {
        "seconds_to_first_reconcile": None if first is None else round(first, 2),
        "restart_barrack_calls_60s": barrack_calls(sim) - calls_before,
        "restart_kube_writes_60s": sum(writes.values()),
    }


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    args.metrics_port = free_port()
    with start_stack(args, work) as stack:
        wait_for(stack.sim.calls, 60, what="the operator's first inventory poll")
        return measure(args, work, stack)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=500, help="objects to apply at once (about, for --mix)")
    parser.add_argument("--mix", action="store_true", help="keys, instances, attached volumes, firewalls")
    parser.add_argument("--restart", action="store_true", help="then SIGKILL and start the operator")
    parser.add_argument(
        "--capacity",
        action="store_true",
        help="60 placed instances on a scarce shelf (hack/capacity_bench.py)",
    )
    parser.add_argument("--capacity-step", type=float, default=20.0, help="seconds until more stock appears")
    parser.add_argument("--memory-profile", action="store_true", help="trace the operator's allocations")
    parser.add_argument("--rps", type=float, default=20.0, help="the simulator's and operator's rate limit")
    parser.add_argument(
        "--headroom", type=float, default=1.0, help="operator's rate + burst as a share of R (for jitter)"
    )
    parser.add_argument("--burst", type=int, default=1, help="operator's burst")
    parser.add_argument("--transition-seconds", type=float, default=2.0, help="every transition's duration")
    parser.add_argument("--poll-interval", type=float, default=2.0, help="operator's fast inventory poll (s)")
    parser.add_argument("--idle-poll-interval", type=float, default=10.0, help="operator's idle poll (s)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up waiting for Ready after (s)")
    parser.add_argument("--apply-streams", type=int, default=4, help="kubectl processes creating the objects")
    parser.add_argument("--report-every", type=float, default=5.0, help="progress line interval (s)")
    parser.add_argument(
        "-o", "--output", choices=["text", "json"], default="text",
        help="json: no progress lines (the result is the JSON line on stdout either way)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs) afterwards")
    parser.add_argument("--log-level", default="warning", help="the operator's (operator.log with --keep)")
    parser.add_argument(
        "--timeline", action="store_true", help="print Barrack's requests by route per second"
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="barrack-bench-"))
    if args.capacity:
        from capacity_bench import run_capacity

        args.metrics_port = free_port()
        key = _obj("BarrackSSHKey", "ops-key", {"publicKey": PUBLIC_KEY})
        result = run_capacity(args, work, start_stack, NAMESPACE, key)
    else:
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
