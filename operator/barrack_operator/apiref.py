"""The API reference (``docs/api-reference.md``), generated from the CRDs the operator installs:
every field of every kind, with its type, default, whether it is required and its description.

``barrack-operator api-reference -o docs/api-reference.md`` writes it; a test regenerates it and
fails on drift, so the reference says what the API server accepts, never what someone remembered.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from barrack_operator import crds
from barrack_operator.resources.kinds import ALL_KINDS, Kind

HEADER = """# API reference

Generated from the CRDs by `barrack-operator api-reference -o docs/api-reference.md`; a test fails
when it and the CRDs drift. Group `barrack.ai`, version `v1alpha1`. For what the conditions mean and
what to do about each reason, see [conditions.md](conditions.md).
"""


def _type(node: dict[str, Any]) -> str:
    kind = str(node.get("type", "object"))
    if kind == "array":
        return f"[]{_type(node.get('items') or {})}"
    if kind == "object" and "additionalProperties" in node and "properties" not in node:
        return f"map[string]{_type(node['additionalProperties'] or {})}"
    if "enum" in node:
        values = " \\| ".join(str(v) for v in node["enum"])  # a table cell: the bar escaped
        return f"{kind} ({values})"
    return kind


def _rows(node: dict[str, Any], path: str) -> Iterator[tuple[str, str, bool, str, str]]:
    """(field path, type, required, default, description) for every field under ``node``."""
    required = set(node.get("required") or ())
    for name, prop in (node.get("properties") or {}).items():
        if name in ("apiVersion", "kind", "metadata"):
            continue
        field = f"{path}.{name}" if path else name
        default = "" if "default" not in prop else f"`{json.dumps(prop['default'])}`"
        description = " ".join(str(prop.get("description", "")).split()).replace("|", "\\|")
        yield field, _type(prop), name in required, default, description
        yield from _rows(prop, field)
        items = prop.get("items") or {}
        if items.get("properties"):
            yield from _rows(items, f"{field}[]")


def kind_section(kind: Kind) -> str:
    crd = crds.crd(kind)
    version = crd["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    names = crd["spec"]["names"]
    lines = [
        f"## {kind.kind}",
        "",
        f"{kind.description} Scope: {kind.scope}; short name `{names['shortNames'][0]}`.",
        "",
        "| Field | Type | Required | Default | Description |",
        "|---|---|---|---|---|",
    ]
    for part in ("spec", "status"):
        for field, type_, required, default, description in _rows(schema["properties"][part], part):
            lines.append(f"| `{field}` | {type_} | {'yes' if required else ''} | {default} | {description} |")
    rules = version["schema"]["openAPIV3Schema"]["properties"]["spec"].get("x-kubernetes-validations") or []
    if rules:
        lines += ["", "Rules the API server checks on the spec:", ""]
        lines += [f"- {rule['message']}" for rule in rules if rule.get("message")]
    return "\n".join(lines)


def render() -> str:
    return HEADER + "\n" + "\n\n".join(kind_section(kind) for kind in ALL_KINDS) + "\n"
