"""What ``kubectl barrack why`` says, pure: the condition that holds an object back (its reason,
its message, and the next step docs/conditions.md gives for the reason), whether the operator has seen its latest spec, and
its recent Warning events; for a Ready object, that it is Ready."""

from __future__ import annotations

from typing import Any

from barrack_operator.plugin.next_steps import NEXT_STEPS

RECENT_WARNINGS = 5


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any] | None:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c.get("type") == type_), None)


def holding(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The condition that says most of the object: Synced when it is False, else Ready."""
    synced = condition(obj, "Synced")
    return synced if synced and synced.get("status") == "False" else condition(obj, "Ready")


def is_ready(obj: dict[str, Any]) -> bool:
    """Ready=True and nothing holds it back (Synced, where the kind has it, not False)."""
    ready, synced = condition(obj, "Ready"), condition(obj, "Synced")
    return bool(ready and ready.get("status") == "True") and not (synced and synced.get("status") == "False")


def why(obj: dict[str, Any], events: list[dict[str, Any]]) -> list[str]:
    meta, status = obj.get("metadata") or {}, obj.get("status") or {}
    title = f"{obj['kind']}/{meta.get('name')}"
    lines: list[str] = []
    if meta.get("deletionTimestamp"):
        lines.append(
            f"{title} is being deleted (finalizers: {', '.join(meta.get('finalizers') or []) or 'none'})."
        )
    seen, generation = status.get("observedGeneration"), meta.get("generation")
    if generation is not None and seen != generation:
        lines.append(f"The operator has not handled its latest spec yet (generation {generation}, status of "
                     f"{seen if seen is not None else 'none'}): what follows may be about the spec before.")  # fmt: skip
    if is_ready(obj):
        shown = condition(obj, "Ready") or {}
        return [f"{title} is Ready: {shown.get('message') or shown.get('reason')}", *lines]
    ready, synced, held = condition(obj, "Ready"), condition(obj, "Synced"), holding(obj)
    if held is None:
        lines.insert(0, f"{title} is not Ready: the operator has written no condition yet (is it running and "
                        "watching this namespace?).")  # fmt: skip
    else:
        kind_of = f"{held.get('type')}={held.get('status')} {held.get('reason')}"
        said = [f"{title} is not Ready: {kind_of}", f"  {held.get('message') or '(no message)'}"]
        step = NEXT_STEPS.get(str(held.get("reason")))
        if step and step != "nothing":
            said.append(f"  Next step: {step}")
        other = ready if held is synced else synced
        if other and other.get("status") == "False" and other.get("reason") != held.get("reason"):
            said.append(f"  also {other.get('type')}=False {other.get('reason')}: {other.get('message')}")
        lines[:0] = said
    warnings = sorted((e for e in events if e.get("type") == "Warning"), key=_when, reverse=True)
    if warnings:
        lines.append("Recent warnings:")
        lines += [f"  {_when(e)}  {e.get('reason')}: {e.get('message')}" for e in warnings[:RECENT_WARNINGS]]
    return lines


def _when(event: dict[str, Any]) -> str:
    return str(event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or "")
