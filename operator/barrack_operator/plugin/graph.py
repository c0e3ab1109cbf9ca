"""Which kind references which, by which spec field: the one table ``trace`` walks. A unit test
holds it to the spec models, so a new reference field cannot be left out."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from barrack_operator.resources.schedule import matches
from barrack_operator.resources.specs import LabelSelector, account_name

ACCOUNT = "BarrackAccount"


@dataclass(frozen=True)
class Reference:
    kind: str
    """The kind whose spec holds the reference."""
    path: str
    """The spec field: ``a.b`` for a nested one; ``[]`` after a name for a list of references."""
    target: str
    """The kind it names."""
    selector: bool = False
    """A label selector over the target kind, not a name."""


REFERENCES: tuple[Reference, ...] = (
    Reference("BarrackVolume", "instanceRef", "BarrackInstance"),
    Reference("BarrackVolume", "source.volumeRef", "BarrackVolume"),
    Reference("BarrackInstance", "sshKeyRefs[]", "BarrackSSHKey"),
    Reference("BarrackInstance", "bootVolumeRef", "BarrackVolume"),
    Reference("BarrackInstance", "customImageRef", "BarrackImage"),
    Reference("BarrackInstance", "restoreFrom.snapshotRef", "BarrackSnapshot"),
    Reference("BarrackInstance", "startupScriptRef", "BarrackStartupScript"),
    Reference("BarrackFirewall", "instanceRefs[]", "BarrackInstance"),
    Reference("BarrackSnapshot", "instanceRef", "BarrackInstance"),
    Reference("BarrackImage", "snapshotRef", "BarrackSnapshot"),
    Reference("BarrackSnapshotSchedule", "instanceRef", "BarrackInstance"),
    Reference("BarrackSnapshotSchedule", "instanceSelector", "BarrackInstance", selector=True),
    Reference("BarrackPowerSchedule", "instanceRef", "BarrackInstance"),
    Reference("BarrackPowerSchedule", "instanceSelector", "BarrackInstance", selector=True),
)
BILLED_ON_AN_ACCOUNT = ("BarrackVolume", "BarrackInstance", "BarrackFirewall", "BarrackSSHKey",
                        "BarrackStartupScript", "BarrackSnapshot", "BarrackImage")  # fmt: skip
"""The kinds whose objects name an account (``spec.accountRef``, else ``default``)."""


def _at(spec: Mapping[str, Any], path: str) -> Any:
    value: Any = spec
    for part in path.removesuffix("[]").split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return value


def names(spec: Mapping[str, Any], ref: Reference) -> list[str]:
    """The target names a reference field holds (none for a selector)."""
    value = _at(spec, ref.path)
    if ref.selector or value is None:
        return []
    items = value if ref.path.endswith("[]") else [value]
    return [str(item["name"]) for item in items if isinstance(item, Mapping) and item.get("name")]


def uses(
    obj: Mapping[str, Any], objects: Mapping[str, list[dict[str, Any]]]
) -> Iterator[tuple[str, str, dict[str, Any] | None]]:
    """What ``obj`` references: (kind, name, the object or None when missing), spec order."""
    kind, spec = obj["kind"], obj.get("spec") or {}
    for ref in (r for r in REFERENCES if r.kind == kind):
        if ref.selector:
            selector = _at(spec, ref.path)
            if selector:
                wanted = LabelSelector.model_validate(selector)
                for target in objects.get(ref.target, []):
                    if matches(wanted, (target.get("metadata") or {}).get("labels") or {}):
                        yield ref.target, target["metadata"]["name"], target
            continue
        for name in names(spec, ref):
            yield ref.target, name, _find(objects, ref.target, name)
    if kind in BILLED_ON_AN_ACCOUNT:
        account = account_name(spec)
        yield ACCOUNT, account, _find(objects, ACCOUNT, account)


def used_by(
    obj: dict[str, Any], objects: Mapping[str, list[dict[str, Any]]]
) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """The objects that reference ``obj`` (by name or selector), kind by kind."""
    kind, name = obj["kind"], obj["metadata"]["name"]
    for source_kind in dict.fromkeys(r.kind for r in REFERENCES if r.target == kind):
        for source in objects.get(source_kind, []):
            if any(
                k == kind and n == name and found is not None for k, n, found in uses(source, {kind: [obj]})
            ):
                yield source_kind, source["metadata"]["name"], source
    if kind == ACCOUNT:
        for billed in BILLED_ON_AN_ACCOUNT:
            for source in objects.get(billed, []):
                if account_name(source.get("spec") or {}) == name:
                    yield billed, source["metadata"]["name"], source


def _find(objects: Mapping[str, list[dict[str, Any]]], kind: str, name: str) -> dict[str, Any] | None:
    return next((o for o in objects.get(kind, []) if o["metadata"]["name"] == name), None)
