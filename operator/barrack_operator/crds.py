"""CRD manifests generated from the spec and status models (``barrack-operator crds``).

Pydantic's JSON schema is turned into a Kubernetes structural schema: references inlined, optional
values unwrapped from ``anyOf [X, null]``, titles dropped, descriptions kept, CEL rules attached.
The files under ``crds/`` are this module's output; a test regenerates them and fails on drift.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from barrack_operator.resources import specs
from barrack_operator.resources.kinds import ALL_KINDS, EXTRA_SPEC_VALIDATIONS, Kind

_KEEP = {
    "type",
    "description",
    "enum",
    "pattern",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "default",
    "items",
    "properties",
    "required",
    "x-kubernetes-validations",
    "x-kubernetes-list-type",
    "x-kubernetes-list-map-keys",
    "format",
    "additionalProperties",
}


def _structural(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"cannot express {node} structurally")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        return _structural({**options[0], **rest}, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key not in _KEEP:
            continue
        if key == "properties":
            out[key] = {name: _structural(prop, defs) for name, prop in value.items()}
        elif key == "items" or (key == "additionalProperties" and isinstance(value, dict)):
            out[key] = _structural(value, defs)
        elif key == "default" and value is None:
            continue
        else:
            out[key] = copy.deepcopy(value)
    for bound, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(node.get(bound), int | float) and not isinstance(node.get(bound), bool):
            out[inclusive], out[bound] = node[bound], True  # Kubernetes' schema: a flag beside the bound
    if "enum" in out and "type" not in out:
        out["type"] = "integer" if all(isinstance(v, int) for v in out["enum"]) else "string"
    if out.get("required") == []:
        del out["required"]
    return out


def model_schema(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema()
    return _structural(raw, raw.get("$defs", {}))


def _spec_schema(kind: Kind) -> dict[str, Any]:
    schema = model_schema(kind.spec)
    schema["description"] = f"Desired state of the {kind.kind}."
    rules = [specs.immutable(f) for f in kind.immutable_fields]
    fields = kind.spec.model_fields
    rules += [specs.ADOPT_ID_KEPT] if "adoptId" in fields else []
    rules += [specs.ACCOUNT_REF_KEPT] if "accountRef" in fields else []
    rules += EXTRA_SPEC_VALIDATIONS.get(kind.kind, [])
    if rules:
        schema["x-kubernetes-validations"] = rules
    _attach_rule_validations(schema)
    return schema


def _attach_rule_validations(schema: dict[str, Any]) -> None:
    for name in ("rules", "securityRules"):
        prop = schema.get("properties", {}).get(name)
        if prop is not None:
            prop["items"]["x-kubernetes-validations"] = list(specs.RULE_VALIDATIONS)
            prop.setdefault("maxItems", 100)


def crd(kind: Kind) -> dict[str, Any]:
    status = model_schema(kind.status)
    status["description"] = f"Observed state of the {kind.kind}, written by the operator."
    if not kind.barrack_resource:
        return _crd(kind, status, [
            {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
            *kind.extra_columns,
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ])  # fmt: skip
    columns = [
        {"name": "ID", "type": "string", "jsonPath": ".status.id"},
        {"name": "State", "type": "string", "jsonPath": ".status.state"},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Synced", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Synced")].status'},
        *kind.extra_columns,
        {
            "name": "Reason",
            "type": "string",
            "jsonPath": '.status.conditions[?(@.type=="Synced")].reason',
            "priority": 1,
        },
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]
    return _crd(kind, status, columns)


def _crd(kind: Kind, status: dict[str, Any], columns: list[dict[str, Any]]) -> dict[str, Any]:
    names: dict[str, Any] = {
        "kind": kind.kind,
        "listKind": f"{kind.kind}List",
        "plural": kind.plural,
        "singular": kind.singular,
        "shortNames": [kind.short_name],
    }
    if kind.categories:
        names["categories"] = list(kind.categories)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        # Helm never deletes a chart's crds/, and this says so to anything that reads it: deleting a
        # CRD deletes every object of its kind (the operator then keeps their Barrack resources).
        "metadata": {"name": kind.crd_name, "annotations": {"helm.sh/resource-policy": "keep"}},
        "spec": {
            "group": specs.GROUP,
            "names": names,
            "scope": kind.scope,
            "versions": [
                {
                    "name": specs.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": kind.description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string", "description": "API version of the object."},
                                "kind": {"type": "string", "description": "Kind of the object."},
                                "metadata": {"type": "object"},
                                "spec": _spec_schema(kind),
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }


def render(kind: Kind) -> str:
    header = "# Generated by `barrack-operator crds` from operator/barrack_operator/resources/specs.py.\n# Do not edit.\n"
    return header + yaml.safe_dump(crd(kind), sort_keys=False, width=120)


def write_all(directory: Path) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for kind in ALL_KINDS:
        path = directory / f"{specs.GROUP}_{kind.plural}.yaml"
        path.write_text(render(kind))
        written.append(path)
    return written
