"""``barrack-operator``: run the operator, serve the simulator, print the CRDs, or start a local
control plane."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, cast

from barrack_operator import __version__


def _run(args: argparse.Namespace) -> int:
    from barrack_operator.settings import InvalidSetting, Settings

    try:  # before anything else: a bad setting is one line naming it, and no side effect
        settings = Settings.from_env(
            leader_election=False if args.no_leader_election else None,
            leader_election_namespace=args.leader_election_namespace,
            namespaces=args.namespace or None,
            all_namespaces=args.all_namespaces or None,
            requests_per_second=args.requests_per_second,
            poll_interval=args.poll_interval,
            idle_poll_interval=args.idle_poll_interval,
            drift_interval=args.drift_interval,
            log_format=args.log_format,
            log_level=args.log_level,
            listen_address=args.listen_address,
            liveness_port=args.liveness_port,
            metrics_port=args.metrics_port,
        )
    except InvalidSetting as exc:
        print(f"barrack-operator run: invalid setting {exc}", file=sys.stderr)
        return 2

    from prometheus_client import start_http_server

    from barrack_operator import profiling
    from barrack_operator.handlers.serve import serve
    from barrack_operator.logs import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    profiling.install()
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=settings.listen_address)
    asyncio.run(serve(settings))
    return 0


def _sim(args: argparse.Namespace) -> int:
    from barrack_sim.faults import FaultConfig
    from barrack_sim.server import build_simulator, serve

    keys = list(args.api_key or []) + [k for k in os.environ.get("BARRACK_SIM_API_KEYS", "").split(",") if k]
    overrides = dict(item.split("=", 1) for item in args.transition or [])
    simulator = build_simulator(
        api_keys=keys,
        transition_seconds=args.transition_seconds,
        transition_overrides={k: float(v) for k, v in overrides.items()},
        detach_rule=args.detach_rule,
        balance=args.balance,
        seed=args.seed,
        faults=FaultConfig(
            rate_limit_rps=args.rate_limit,
            error_rate=args.error_rate,
            commit_then_fail_rate=args.commit_then_fail_rate,
            latency_seconds=args.latency,
        ),
        dialect=args.dialect,
        first_id=args.first_id,
    )
    print(f"Barrack simulator on http://{args.host}:{args.port}/api (admin: /_sim/)", flush=True)
    serve(simulator, args.host, args.port, log_level=args.log_level)
    return 0


def _import(args: argparse.Namespace) -> int:
    """List the account's Barrack resources and the namespace's objects, write manifests for the
    unmanaged resources, and create them with --apply."""
    from kubernetes import client as k8s
    from kubernetes import config as k8s_config

    from barrack_operator.importer import plan_import
    from barrack_operator.progress import Progress

    progress = Progress(quiet=args.output == "json")
    account = asyncio.run(_list_account(progress))
    try:
        k8s_config.load_incluster_config()  # type: ignore[no-untyped-call]
    except k8s_config.ConfigException:
        k8s_config.load_kube_config(context=args.context)  # type: ignore[no-untyped-call]
    api = k8s.CustomObjectsApi()
    try:
        managed, taken = _managed_objects(api, args.namespace)
    except k8s.ApiException as exc:  # what is managed anywhere must be known; no guessing
        print(
            f"barrack-operator import: listing the barrack.ai kinds in every namespace failed ({exc.status} "
            f"{exc.reason}): import needs list on them cluster-wide",
            file=sys.stderr,
        )
        return 1
    plan = plan_import(account, managed, observe=args.observe, taken_names=taken)
    for reason in plan.skipped:
        print(f"# left out: {reason}", file=sys.stderr)
    _emit_manifests(args, api, plan.manifests, progress)
    print(f"# {len(plan.manifests)} resources to import; {len(managed)} already managed", file=sys.stderr)
    return 0


async def _list_account(progress: Any) -> Any:
    """What the operator's account holds on Barrack, every kind import writes (a progress line per
    kind as it is listed)."""
    from barrack_operator.barrack import ApiKeySource, BarrackClient
    from barrack_operator.importer import Account
    from barrack_operator.settings import Settings

    settings = Settings.from_env()
    source = ApiKeySource(key_file=settings.api_key_file)
    listed: dict[str, list[Any]] = {}
    async with BarrackClient(settings.api_url, source, auth=settings.auth) as barrack:
        for kind in ("ssh_keys", "scripts", "instances", "volumes", "firewalls", "snapshots", "images"):
            items = listed[kind] = []
            async for item in barrack.iter_listing(kind):
                items.append(item)
                progress.update(kind.replace("_", " "), len(items), 0, "listed")
            progress.update(kind.replace("_", " "), len(items), len(items), "listed")
    return Account(**listed)


def _managed_objects(api: Any, namespace: str) -> tuple[dict[str, str | None], set[str]]:
    """Every Barrack id an object anywhere records or adopts (with the object's name when it is
    in ``namespace``), and the object names taken in ``namespace``."""
    from barrack_operator.resources.kinds import KINDS
    from barrack_operator.resources.specs import GROUP, VERSION

    managed_anywhere: set[str] = set()
    managed_here: dict[str, str] = {}
    taken: set[str] = set()
    for kind in KINDS:
        listed = cast(dict[str, Any], api.list_cluster_custom_object(GROUP, VERSION, kind.plural))
        for obj in listed["items"]:
            ids = {(obj.get("status") or {}).get("id"), obj.get("spec", {}).get("adoptId")} - {None}
            managed_anywhere |= ids
            if obj["metadata"]["namespace"] == namespace:
                taken.add(obj["metadata"]["name"])
                managed_here.update(dict.fromkeys(ids, obj["metadata"]["name"]))
    return {i: managed_here.get(i) for i in managed_anywhere}, taken


def _emit_manifests(
    args: argparse.Namespace, api: Any, manifests: list[dict[str, Any]], progress: Any
) -> None:
    """Write the manifests to --out (a file each), or print them (YAML, or a JSON List with -o json);
    create them with --apply (a progress line per kind)."""
    import json

    import yaml

    from barrack_operator.resources.kinds import KINDS
    from barrack_operator.resources.specs import GROUP, VERSION

    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        for manifest in manifests:
            path = out / f"{manifest['kind'].lower()}-{manifest['metadata']['name']}.yaml"
            path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    elif not args.apply and args.output == "json":
        print(json.dumps({"apiVersion": "v1", "kind": "List", "items": manifests}, indent=2))
    elif not args.apply:
        print(yaml.safe_dump_all(manifests, sort_keys=False), end="")
    if args.apply:
        plurals = {kind.kind: kind.plural for kind in KINDS}
        totals = Counter(manifest["kind"] for manifest in manifests)
        done: Counter[str] = Counter()
        for manifest in manifests:
            api.create_namespaced_custom_object(
                GROUP, VERSION, args.namespace, plurals[manifest["kind"]], manifest
            )
            print(f"created {manifest['kind']} {args.namespace}/{manifest['metadata']['name']}", flush=True)
            done[manifest["kind"]] += 1
            progress.update(manifest["kind"], done[manifest["kind"]], totals[manifest["kind"]], "created")


def _crds(args: argparse.Namespace) -> int:
    from barrack_operator import crds
    from barrack_operator.resources.kinds import ALL_KINDS

    if args.output:
        for path in crds.write_all(Path(args.output)):
            print(path)
    else:
        print("---\n".join(crds.render(kind) for kind in ALL_KINDS), end="")
    return 0


def _api_reference(args: argparse.Namespace) -> int:
    from barrack_operator import apiref

    text = apiref.render()
    if args.output:
        Path(args.output).write_text(text)
        print(args.output)
    else:
        print(text, end="")
    return 0


def _dev_cluster(args: argparse.Namespace) -> int:
    from barrack_operator.devcluster import ControlPlane
    from barrack_operator.devcluster.binaries import MissingBinary, ensure_binaries

    try:  # built once with Go when neither KUBEBUILDER_ASSETS nor the cache has them
        ensure_binaries(("etcd", "kube-apiserver", "kube-controller-manager", "kubectl"))
    except MissingBinary as exc:
        print(f"barrack-operator dev-cluster: {exc}", file=sys.stderr)
        return 1
    plane = ControlPlane(work_dir=Path(args.data_dir) if args.data_dir else None)
    stop = False

    def request_stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    plane.start()
    try:
        crd_dir = Path(args.crds)
        if crd_dir.is_dir():
            plane.install_crds(crd_dir)
        path = plane.write_kubeconfig(Path(args.kubeconfig))
        print(path.read_text(), flush=True)
        print(f"# kube-apiserver on {plane.url}; kubeconfig written to {path}. Ctrl-C stops it.", flush=True)
        while not stop:
            time.sleep(0.5)
    finally:
        plane.stop()
    return 0


def _add_generators(commands: Any) -> None:
    """The commands that write what the repository keeps generated: the CRDs, the API reference."""
    crds_cmd = commands.add_parser("crds", help="print (or write) the CRD manifests")
    crds_cmd.add_argument("--output", "-o", help="directory to write one file per kind into")
    crds_cmd.set_defaults(func=_crds)

    ref = commands.add_parser("api-reference", help="print (or write) the API reference, from the CRDs")
    ref.add_argument("--output", "-o", help="the file to write (docs/api-reference.md)")
    ref.set_defaults(func=_api_reference)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="barrack-operator", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run the operator")
    scope = run.add_mutually_exclusive_group()
    scope.add_argument("--namespace", action="append", help="namespace to watch (repeatable)")
    scope.add_argument("--all-namespaces", action="store_true", default=None, help="watch every namespace")
    run.add_argument(
        "--no-leader-election",
        action="store_true",
        help="reconcile without taking the Lease (one replica only)",
    )
    run.add_argument(
        "--leader-election-namespace",
        help="namespace of the Lease (default: the pod's); the Lease is held under the identity POD_NAME, "
        "else the host name: two processes on one machine need distinct POD_NAMEs",
    )
    run.add_argument("--requests-per-second", type=float, help="rate limit for Barrack calls")
    run.add_argument("--poll-interval", type=float, help="inventory poll while anything moves (s)")
    run.add_argument("--idle-poll-interval", type=float, help="inventory poll when all is steady (s)")
    run.add_argument("--drift-interval", type=float, help="look at settled objects this often (s)")
    run.add_argument("--log-format", choices=["plain", "json"])
    run.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    run.add_argument("--listen-address", help="IP the health and metrics endpoints listen on (127.0.0.1)")
    run.add_argument("--liveness-port", type=int, help="port of /healthz and /readyz (0: off)")
    run.add_argument("--metrics-port", type=int, help="Prometheus metrics port (0: off)")
    run.set_defaults(func=_run)

    sim = commands.add_parser("sim", help="serve the Barrack API simulator")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8765)
    sim.add_argument(
        "--api-key", action="append", help="accepted API key (repeatable; also BARRACK_SIM_API_KEYS)"
    )
    sim.add_argument(
        "--transition-seconds", type=float, default=2.0, help="duration of every transitional state"
    )
    sim.add_argument(
        "--transition", action="append", metavar="NAME=SECONDS", help="override one transition, e.g. stop=5"
    )
    sim.add_argument(
        "--detach-rule", choices=["shutoff", "active"], default="shutoff", help="active: the older docs' rule"
    )
    sim.add_argument("--balance", type=float, default=1000.0)
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--rate-limit", type=float, default=0.0, help="requests per second before 429 (0: none)")
    sim.add_argument("--error-rate", type=float, default=0.0, help="share of requests answered 500")
    sim.add_argument(
        "--commit-then-fail-rate", type=float, default=0.0, help="share of mutations that act, then 500"
    )
    sim.add_argument("--latency", type=float, default=0.0, help="seconds added to every reply")
    sim.add_argument(
        "--dialect",
        choices=["standard", "legacy"],
        default="standard",
        help="legacy: api_key header, {status, message, error_reason} errors, 429 without Retry-After",
    )
    sim.add_argument("--first-id", type=int, default=100001, help="number of the first id handed out")
    sim.add_argument("--log-level", default="warning")
    sim.set_defaults(func=_sim)

    imp = commands.add_parser(
        "import", help="write (or --apply) manifests that adopt the Barrack resources no object manages"
    )
    imp.add_argument("--namespace", default="default", help="namespace of the objects (default: default)")
    imp.add_argument("--out", help="write one file per resource into this directory instead of stdout")
    imp.add_argument("--observe", action="store_true", help="managementPolicy: Observe on every object")
    imp.add_argument("--apply", action="store_true", help="create the objects in the namespace")
    imp.add_argument("--context", help="the kubeconfig context (default: the current one)")
    imp.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml", help="the manifests' format")
    imp.set_defaults(func=_import)

    _add_generators(commands)

    dev = commands.add_parser(
        "dev-cluster", help="run etcd, kube-apiserver and kube-controller-manager locally until interrupted"
    )
    dev.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig")
    dev.add_argument("--data-dir", help="keep the cluster's files here (default: a temporary directory)")
    dev.add_argument("--crds", default="crds", help="directory of CRDs to install if it exists")
    dev.set_defaults(func=_dev_cluster)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
