"""``kubectl-barrack``: kubectl finds it on PATH and runs it as ``kubectl barrack``.

Exit codes: 0 when the command did what it says (``why`` of an object that is not Ready included:
it said why); 1 when the object does not exist, the kind is unknown, or the cluster refused."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from barrack_operator.plugin import render
from barrack_operator.plugin.cluster import Cluster, UnknownKind, kind_named
from barrack_operator.plugin.cost import GROUPS, account_rows, cost_rows, grouped, totals
from barrack_operator.plugin.trace import lines, trace
from barrack_operator.plugin.why import why
from barrack_operator.resources.kinds import ACCOUNT, KINDS
from barrack_operator.resources.model import PAUSED_ANNOTATION, RECONCILE_REQUESTED_ANNOTATION

TRACE_HEADERS = ["NAME", "BARRACK-ID", "STATE", "READY", "SYNCED", "REASON"]


class Failed(Exception):
    """What kubectl would print as an error; exit code 1."""


def _target(cluster: Cluster, ref: str) -> dict[str, Any]:
    word, _, name = ref.partition("/")
    if not name:
        raise Failed(f"give the object as KIND/NAME (e.g. bvol/data), not {ref!r}")
    kind = kind_named(word)
    obj = cluster.get(kind, name)
    if obj is None:
        raise Failed(f'Error from server (NotFound): {kind.plural}.barrack.ai "{name}" not found'
                     + ("" if kind.scope == "Cluster" else f' in namespace "{cluster.namespace}"'))  # fmt: skip
    return obj


def _trace(cluster: Cluster, args: argparse.Namespace) -> None:
    tree = trace(_target(cluster, args.object), cluster.everything())
    if args.output in ("json", "yaml"):
        render.structured(tree.as_dict(), args.output)
        return
    wide = args.output == "wide"
    render.table(TRACE_HEADERS + (["MESSAGE"] if wide else []), lines(tree, wide=wide))


def _why(cluster: Cluster, args: argparse.Namespace) -> None:
    obj = _target(cluster, args.object)
    for line in why(obj, cluster.events(obj)):
        print(line)


def _cost(cluster: Cluster, args: argparse.Namespace) -> None:
    objects = [o for kind in KINDS for o in cluster.list_kind(kind, all_namespaces=args.all_namespaces)]
    rows = cost_rows(objects)
    accounts = account_rows(cluster.list_kind(ACCOUNT))
    if args.output in ("json", "yaml"):
        value = {"by": args.by, "groups": grouped(rows, args.by), "totals": totals(rows), "objects": rows,
                 "accounts": accounts}  # fmt: skip
        render.structured(value, args.output)
        return
    groups = grouped(rows, args.by)
    table = [[g[args.by], str(g["objects"]), render.money(g["hourly"]), render.money(g["accrued"]), g["currency"]]
             for g in groups]  # fmt: skip
    table += [["TOTAL", str(t["objects"]), render.money(t["hourly"]), render.money(t["accrued"]), t["currency"]]
              for t in totals(rows)]  # fmt: skip
    render.table([args.by.upper(), "OBJECTS", "HOURLY", "ACCRUED", "CURRENCY"], table)
    if accounts:
        print()
        render.table(
            ["ACCOUNT", "BALANCE", "CURRENCY", "BURN/H", "RUNWAY-H", "MONTH", "PROJECTED"],
            [[a["account"], render.money(a["balance"]), a["currency"] or "-", render.money(a["burnPerHour"]),
              render.money(a["runwayHours"]), render.money(a["monthToDate"]), render.money(a["projectedMonthEnd"])]
             for a in accounts],
        )  # fmt: skip


def _annotate(cluster: Cluster, args: argparse.Namespace) -> None:
    obj = _target(cluster, args.object)
    kind, name = kind_named(obj["kind"]), obj["metadata"]["name"]
    values: dict[str, dict[str, str | None]] = {
        "pause": {PAUSED_ANNOTATION: "true"},
        "resume": {PAUSED_ANNOTATION: None},
        "reconcile": {RECONCILE_REQUESTED_ANNOTATION: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")},
    }
    cluster.annotate(kind, name, values[args.command])
    done = {"pause": "paused", "resume": "resumed", "reconcile": "asked to reconcile"}[args.command]
    print(f"{kind.singular}.barrack.ai/{name} {done}")


def _import(args: argparse.Namespace) -> int:
    from barrack_operator import cli

    if args.kubeconfig:
        os.environ["KUBECONFIG"] = args.kubeconfig
    passed = ["import", "--namespace", args.namespace or "default", *args.rest]
    if args.context:
        passed += ["--context", args.context]
    return cli.main(passed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubectl barrack", description="The Barrack operator's objects, "
                                     "from kubectl: trace, why, cost, pause, resume, reconcile, import.")  # fmt: skip
    parser.add_argument("--kubeconfig", help="the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)")
    parser.add_argument("--context", help="the kubeconfig context to use")
    parser.add_argument("-n", "--namespace", help="the namespace (default: the context's)")
    commands = parser.add_subparsers(dest="command", required=True)
    t = commands.add_parser("trace", help="the object, what it uses and what uses it, with each one's status")
    t.add_argument("object", metavar="KIND/NAME")
    t.add_argument("-o", "--output", choices=["wide", "json", "yaml"])
    w = commands.add_parser("why", help="why the object is not Ready, and what to do")
    w.add_argument("object", metavar="KIND/NAME")
    c = commands.add_parser("cost", help="hourly and accrued cost, with totals, and each account's money")
    c.add_argument("-A", "--all-namespaces", action="store_true")
    c.add_argument("--by", choices=GROUPS, default="namespace")
    c.add_argument("-o", "--output", choices=["json", "yaml"])
    for name, what in (("pause", "stop every Barrack call for the object (deletion included)"),
                       ("resume", "let the operator act on the object again"),
                       ("reconcile", "ask for a reconcile of the object now")):  # fmt: skip
        commands.add_parser(name, help=what).add_argument("object", metavar="KIND/NAME")
    commands.add_parser(
        "import", help="barrack-operator import into the namespace: --out DIR, --observe, --apply, -o"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command == "import":  # the rest is barrack-operator import's to read
        args.rest = rest
        return _import(args)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        cluster = Cluster(args.kubeconfig, args.context, args.namespace)
        {"trace": _trace, "why": _why, "cost": _cost}.get(args.command, _annotate)(cluster, args)
    except (Failed, UnknownKind) as exc:
        print(f"error: {exc}" if isinstance(exc, UnknownKind) else str(exc), file=sys.stderr)
        return 1
    except k8s_config.ConfigException as exc:  # no kubeconfig, or no such context: as kubectl says it
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except k8s.ApiException as exc:
        print(f"Error from server ({exc.reason}): {exc.status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
