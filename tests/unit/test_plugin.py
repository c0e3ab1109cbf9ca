"""The kubectl plugin's pure parts: the reference table held to the spec models, the trace tree,
why and cost, on objects as the apiserver returns them."""

from __future__ import annotations

import io
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from barrack_operator.plugin import render
from barrack_operator.plugin.cost import account_rows, cost_rows, grouped, totals
from barrack_operator.plugin.graph import REFERENCES
from barrack_operator.plugin.next_steps import NEXT_STEPS, from_doc
from barrack_operator.plugin.trace import lines, trace
from barrack_operator.plugin.why import why
from barrack_operator.resources.kinds import ALL_KINDS
from barrack_operator.resources.specs import AccountRef, LabelSelector, LocalRef

NOT_TRACED = {"writeConnectionSecretToRef"}
"""A Secret the instance writes, not an object it depends on."""


def _shapes(annotation: Any) -> list[tuple[bool, Any]]:
    """(is a list, the type) for each type an annotation allows."""
    if typing.get_origin(annotation) is list:
        return [(True, typing.get_args(annotation)[0])]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [shape for arg in typing.get_args(annotation) for shape in _shapes(arg)]
    return [(False, annotation)]


def _reference_paths(model: type[BaseModel], prefix: str = "") -> set[tuple[str, bool]]:
    found: set[tuple[str, bool]] = set()
    for name, info in model.model_fields.items():
        if name in NOT_TRACED:
            continue
        for many, arg in _shapes(info.annotation):
            if arg is LocalRef:
                found.add((f"{prefix}{name}{'[]' if many else ''}", False))
            elif arg is LabelSelector:
                found.add((f"{prefix}{name}", True))
            elif isinstance(arg, type) and issubclass(arg, BaseModel) and arg is not AccountRef and not many:
                found |= _reference_paths(arg, f"{prefix}{name}.")
    return found


def test_the_reference_table_names_every_reference_field_of_every_kind() -> None:
    for kind in ALL_KINDS:
        in_specs = _reference_paths(kind.spec)
        in_table = {(r.path, r.selector) for r in REFERENCES if r.kind == kind.kind}
        assert in_table == in_specs, f"{kind.kind}: table {sorted(in_table)} != specs {sorted(in_specs)}"


def obj(
    kind: str, name: str, spec: dict[str, Any] | None = None, ready: str | None = "True", **status: Any
) -> dict[str, Any]:
    conditions = [] if ready is None else [{"type": "Ready", "status": ready, "reason": "Available" if ready == "True"
                                            else "Creating", "message": "m"}]  # fmt: skip
    return {"kind": kind, "metadata": {"name": name, "namespace": "ns", "labels": {"team": "ml"}, "generation": 1},
            "spec": spec or {}, "status": {"conditions": conditions, "observedGeneration": 1, **status}}  # fmt: skip


def test_trace_follows_what_an_object_uses_and_shows_what_uses_it_and_what_is_missing() -> None:
    gpu = obj(
        "BarrackInstance",
        "gpu",
        {"sshKeyRefs": [{"name": "k"}, {"name": "gone"}]},
        id="BRK-1D",
        state="ACTIVE",
    )
    objects = {
        "BarrackInstance": [gpu],
        "BarrackSSHKey": [obj("BarrackSSHKey", "k")],
        "BarrackVolume": [obj("BarrackVolume", "data", {"instanceRef": {"name": "gpu"}})],
        "BarrackPowerSchedule": [obj("BarrackPowerSchedule", "office", {"instanceSelector": {"matchLabels": {"team": "ml"}}})],
        "BarrackFirewall": [obj("BarrackFirewall", "other", {"instanceRefs": [{"name": "elsewhere"}]})],
    }  # fmt: skip
    tree = trace(gpu, objects)
    got = [(c.relation, c.kind, c.name, c.missing) for c in tree.children]
    assert got == [
        ("uses", "BarrackSSHKey", "k", False),
        ("uses", "BarrackSSHKey", "gone", True),
        ("uses", "BarrackAccount", "default", False),
        ("used by", "BarrackVolume", "data", False),
        ("used by", "BarrackPowerSchedule", "office", False),
    ]
    rows = lines(tree)
    gone = next(r for r in rows if r[0].endswith("uses BarrackSSHKey/gone"))
    assert rows[0][:3] == ["BarrackInstance/gpu", "BRK-1D", "ACTIVE"] and gone[2] == "missing"
    assert rows[2][0] == "│  └─ uses BarrackAccount/default", "what a referent uses hangs under it"
    assert rows[-1][0].startswith("└─ used by BarrackPowerSchedule/office")


def test_why_names_the_holding_condition_and_recent_warnings_or_says_ready() -> None:
    held = obj("BarrackVolume", "data", ready="False")
    held["status"]["conditions"].append({"type": "Synced", "status": "False", "reason": "AttachBlocked",
                                         "message": "waits for gpu; it retries"})  # fmt: skip
    events = [{"type": "Warning", "reason": "AttachBlocked", "message": "old", "lastTimestamp": "2026-12-07T10:00:00Z"},
              {"type": "Normal", "reason": "Created", "message": "x", "lastTimestamp": "2026-12-07T11:00:00Z"}]  # fmt: skip
    said = why(held, events)
    assert said[0] == "BarrackVolume/data is not Ready: Synced=False AttachBlocked"
    assert said[1] == "  waits for gpu; it retries" and said[2].startswith("  Next step: ")
    assert "also Ready=False Creating: m" in said[3]
    assert said[-1] == "  2026-12-07T10:00:00Z  AttachBlocked: old" and not any("Created" in s for s in said)
    assert why(obj("BarrackVolume", "ok"), []) == ["BarrackVolume/ok is Ready: m"]
    stale = obj("BarrackVolume", "new", ready=None)
    stale["metadata"]["generation"] = 2
    assert "no condition yet" in why(stale, [])[0] and "generation 2" in why(stale, [])[1]


def test_cost_groups_and_totals_per_currency() -> None:
    def billed(kind: str, ns: str, hourly: float, account: str | None = None) -> dict[str, Any]:
        o = obj(kind, f"{kind}-{ns}-{hourly}", {"accountRef": {"name": account}} if account else {},
                cost={"hourly": hourly, "accrued": hourly * 10, "currency": "USD"})  # fmt: skip
        o["metadata"]["namespace"] = ns
        return o

    rows = cost_rows([billed("BarrackInstance", "a", 2.0), billed("BarrackVolume", "a", 0.5, "team"),
                      billed("BarrackInstance", "b", 1.0), obj("BarrackSSHKey", "free")])  # fmt: skip
    assert [(g["namespace"], g["hourly"], g["objects"]) for g in grouped(rows, "namespace")] == [
        ("a", 2.5, 2),
        ("b", 1.0, 1),
    ]
    assert [g["account"] for g in grouped(rows, "account")] == ["default", "team"]
    assert totals(rows) == [{"currency": "USD", "hourly": 3.5, "accrued": 35.0, "objects": 3}]
    account = {
        "metadata": {"name": "default"},
        "status": {"balance": 10.0, "burnPerHour": 2.0, "currency": "USD"},
    }
    assert account_rows([account])[0]["balance"] == 10.0


def test_tables_are_plain_off_a_terminal() -> None:
    out = io.StringIO()
    render.table(["READY", "NAME"], [["True", "x"]], out)
    assert out.getvalue() == "READY   NAME\nTrue    x\n", "no colour codes when not a terminal"


def test_the_next_steps_are_docs_conditions_table() -> None:
    """why's next steps are the 'What to do' column of docs/conditions.md, every reason of it."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "conditions.md").read_text()
    assert from_doc(doc) == NEXT_STEPS, "run: python -m barrack_operator.plugin.next_steps docs/conditions.md"
    assert NEXT_STEPS["AttachBlocked"] and NEXT_STEPS["OperatorError"].startswith("report it")
