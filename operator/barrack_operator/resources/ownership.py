"""What an object owns on Barrack, and so what its deletion may touch.

An object owns a Barrack resource once its own create made it, or once its adoption completed (the
resource read, neither ``AlreadyManaged`` nor ``AdoptionMismatch``); the id is then in
``status.id`` (or, until that write lands, in the process's memory). An object that asked Barrack
for a create may own what that create made (a lost reply): its deletion looks for it. Any other
object never owned anything, and its deletion makes no Barrack call, whatever its
``deletionPolicy``: an ``adoptId`` names a resource, it does not own it.

One resource has one owner: when another object that manages the same id records it too (two
adoptions that raced, before the claim was kept in one step), the deletion leaves it to that one.
"""

from __future__ import annotations

from barrack_operator.conditions import SYNCED, Reason
from barrack_operator.resources.model import Memory, ObjectView, References

RELEASED = "Released"
"""The reason of the Normal event of a deletion that made no Barrack call because the object owned
nothing there."""

WHY_NEVER_OWNED: dict[str, str] = {
    Reason.ALREADY_MANAGED: "its adoption was refused (AlreadyManaged): another object manages that resource",
    Reason.ADOPTION_MISMATCH: "its adoption was refused (AdoptionMismatch): the resource differs from the spec",
    Reason.NAME_TAKEN: "its Barrack name belongs to a resource it did not create (NameTaken)",
    Reason.ACCOUNT_NOT_ALLOWED: "its namespace may not use its BarrackAccount (AccountNotAllowed)",
    Reason.ACCOUNT_NOT_FOUND: "its BarrackAccount does not exist (AccountNotFound)",
    Reason.RECONCILE_PAUSED: "it was paused before it made or adopted anything",
}
"""Why an object never owned a resource, by the reason its last status gave."""


def owned_id(obj: ObjectView, memory: Memory) -> str | None:
    """The id of the Barrack resource this object owns, if it owns one it knows the id of."""
    return obj.recorded_id or memory.known_ids.get(obj.uid)


def may_own(obj: ObjectView, memory: Memory) -> bool:
    """The object owns a resource, or asked Barrack to create one (whose reply may be lost)."""
    return bool(
        owned_id(obj, memory)
        or obj.create_requested_name
        or obj.uid in memory.creating
        or obj.uid in memory.create_attempts
    )


def released_without_call(obj: ObjectView, memory: Memory, refs: References) -> str | None:
    """Why this object's deletion makes no Barrack call at all (the message of its Normal event),
    or None when it must settle what it owns (as its deletionPolicy says)."""
    barrack_id = owned_id(obj, memory)
    if barrack_id is not None:
        other = refs.recorded_by_other(barrack_id, obj.uid)
        if other is None:
            return None
        return (
            f"Nothing on Barrack was deleted: {other} also records and manages {barrack_id}, so it is "
            "left to that object"
        )
    if may_own(obj, memory):
        return None
    return (
        f"Nothing on Barrack was deleted: this object never owned a Barrack resource ({why_never_owned(obj)})"
    )


def why_never_owned(obj: ObjectView) -> str:
    synced = next((c for c in obj.status.get("conditions") or () if c.get("type") == SYNCED), None)
    reason = (synced or {}).get("reason", "")
    if reason in WHY_NEVER_OWNED:
        return WHY_NEVER_OWNED[reason]
    if obj.spec.get("adoptId"):
        return f"its adoption of {obj.spec['adoptId']} never completed"
    return "it never made or adopted one"


def never_on_barrack(obj: ObjectView, memory: Memory) -> bool:
    """No Barrack resource can be this object's: it has no id, never asked for a create and
    adopts nothing."""
    return not (
        obj.recorded_id
        or obj.create_requested_name
        or obj.spec.get("adoptId")
        or memory.known_ids.get(obj.uid)
        or obj.uid in memory.creating
    )
