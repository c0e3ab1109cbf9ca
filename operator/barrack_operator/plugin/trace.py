"""The tree ``kubectl barrack trace`` prints, pure: an object, what it uses (followed down, each
object once) and what uses it (one level), each as a row of its Barrack id, state, READY,
SYNCED, reason and message. A referent that does not exist is a row that says so."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from barrack_operator.plugin.graph import ACCOUNT, used_by, uses
from barrack_operator.plugin.why import condition, holding
from barrack_operator.resources.specs import DEFAULT_ACCOUNT


@dataclass
class Node:
    kind: str
    name: str
    relation: str
    """``root``, ``uses`` or ``used by``."""
    obj: dict[str, Any] | None
    children: list[Node] = field(default_factory=list)

    @property
    def missing(self) -> bool:
        return bool(self.row()["missing"])

    def row(self) -> dict[str, Any]:
        """The row's fields: the holding condition's reason and message (Synced's when it is
        False, else Ready's)."""
        if self.obj is None and (self.kind, self.name) == (ACCOUNT, DEFAULT_ACCOUNT):
            return {"kind": self.kind, "name": self.name, "relation": self.relation, "missing": False,
                    "id": None, "state": None, "ready": None, "synced": None, "reason": "OperatorKey",
                    "message": "no BarrackAccount default: the operator's own API key serves it"}  # fmt: skip
        if self.obj is None:
            return {"kind": self.kind, "name": self.name, "relation": self.relation, "missing": True,
                    "id": None, "state": None, "ready": None, "synced": None,
                    "reason": "Missing", "message": f"no {self.kind} named {self.name} exists"}  # fmt: skip
        status = self.obj.get("status") or {}
        ready, synced = condition(self.obj, "Ready") or {}, condition(self.obj, "Synced") or {}
        held = holding(self.obj) or {}
        return {
            "kind": self.kind,
            "name": self.name,
            "relation": self.relation,
            "missing": False,
            "id": status.get("id"),
            "state": status.get("state"),
            "ready": ready.get("status"),
            "synced": synced.get("status"),
            "reason": held.get("reason"),
            "message": held.get("message"),
        }

    def as_dict(self) -> dict[str, Any]:
        return {**self.row(), "children": [child.as_dict() for child in self.children]}


def trace(root: dict[str, Any], objects: Mapping[str, list[dict[str, Any]]]) -> Node:
    node = Node(root["kind"], root["metadata"]["name"], "root", root)
    seen = {(node.kind, node.name)}
    node.children = _uses(root, objects, seen)
    node.children += [Node(kind, name, "used by", obj) for kind, name, obj in used_by(root, objects)]
    return node


def _uses(
    obj: dict[str, Any], objects: Mapping[str, list[dict[str, Any]]], seen: set[tuple[str, str]]
) -> list[Node]:
    children = []
    for kind, name, found in uses(obj, objects):
        child = Node(kind, name, "uses", found)
        if found is not None and (kind, name) not in seen:
            seen.add((kind, name))
            child.children = _uses(found, objects, seen)
        children.append(child)
    return children


def lines(node: Node, wide: bool = False) -> list[list[str]]:
    """The tree as table rows, the first column drawn as a tree."""
    out: list[list[str]] = []

    def walk(n: Node, prefix: str, last: bool, top: bool) -> None:
        row = n.row()
        branch = "" if top else prefix + ("└─ " if last else "├─ ")
        label = f"{branch}{'' if top else n.relation + ' '}{n.kind}/{n.name}"
        cells = [label, row["id"] or "-", row["state"] or ("missing" if n.missing else "-"),
                 row["ready"] or "-", row["synced"] or "-", row["reason"] or "-"]  # fmt: skip
        if wide:
            cells.append(row["message"] or "")
        out.append(cells)
        child_prefix = "" if top else prefix + ("   " if last else "│  ")
        for i, child in enumerate(n.children):
            walk(child, child_prefix, i == len(n.children) - 1, False)

    walk(node, "", True, True)
    return out
