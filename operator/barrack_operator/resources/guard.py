"""The guarded create and the search for what a deletion must settle: one Barrack resource per
object, never made twice, never taken from someone else (:func:`ensure_exists`,
:func:`find_for_deletion`), and the two refusals a name or an adoption can meet
(:class:`NameTaken`, :class:`AlreadyManaged`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from barrack_operator.barrack import (
    BarrackError,
    InvalidRequest,
    NotFound,
)
from barrack_operator.barrack.credentials import MissingApiKey
from barrack_operator.costs import Demand
from barrack_operator.listings import LISTING_OF, T
from barrack_operator.resources.model import (
    Context,
    CreateInFlight,
    Lost,
    ObjectDeleting,
    ObjectView,
)

log = logging.getLogger(__name__)


class NameTaken(InvalidRequest):
    """A Barrack resource has this object's Barrack name, and this object never asked to create
    one: it belongs to someone else (another object, cluster or person), so it is neither adopted
    nor, later, deleted."""

    def __init__(self, what: str, name: str, resource_id: str, manager: str | None = None) -> None:
        if manager is not None:  # another object's: taking it over is no fix
            super().__init__(
                f"a Barrack {what} named {name!r} ({resource_id}) exists, managed by {manager}: set spec.name "
                "to another name (a create needs a Barrack name no resource has)"
            )
            return
        super().__init__(
            f"a Barrack {what} named {name!r} ({resource_id}) exists that this object did not create: "
            f"set spec.name to another name, or spec.adoptId: {resource_id} to take it over"
        )


class AlreadyManaged(InvalidRequest):
    """The Barrack resource this object would adopt (its adoptId, or the id it recorded) is managed
    by another object: one Barrack resource, one object. Nothing is called. A create whose name
    another object's resource has is :class:`NameTaken` instead."""

    def __init__(self, what: str, resource_id: str, manager: str) -> None:
        super().__init__(
            f"Barrack {what} {resource_id} is already managed by {manager}: one Barrack resource has one "
            "object; delete one of the two, or point this one at another resource"
        )


# The guarded create ------------------------------------------------------------------------------


@dataclass
class Found:
    item: Any
    created: bool = False
    replaced: str | None = None
    """The id of a lost resource this create replaces."""


def differences(pairs: list[tuple[str, Any, Any]]) -> list[str]:
    """``field: spec X, Barrack Y`` for each (field, spec value, Barrack value) that differ
    (strings compared case-insensitively, as Barrack's words are)."""

    def norm(value: Any) -> Any:
        return str(value).upper() if isinstance(value, str) else value

    return [f"{name}: spec {want}, Barrack {have}" for name, want, have in pairs if norm(want) != norm(have)]


def _gone(item: Any) -> bool:
    return str(getattr(item, "status", "")).upper() == "DELETED"


async def ensure_exists(
    ctx: Context,
    obj: ObjectView,
    snapshot_of: Callable[[], Any],
    fetch: Callable[[str], Awaitable[T]],
    create: Callable[[], Awaitable[T]],
    *,
    recreate: bool = True,
    demand: Demand | None = None,
    spec_defaults: dict[str, Any] | None = None,
) -> Found:
    """Find the Barrack resource this object manages, or create it, never twice.

    Order: the id in status (or remembered), ``adoptId``, a resource carrying this object's Barrack
    name in the inventory (a create whose reply or status write was lost), and only then a create.

    A resource found by name is taken only when this object asked for a create before: in this
    process (remembered, and then only after an inventory listing newer than that attempt), or in
    an earlier one that crashed (the mark :attr:`Context.mark_create` writes before every create).
    Any other resource of that name is someone else's: :class:`NameTaken`, nothing created.

    When the recorded resource is gone (404, or DELETED), :class:`Lost` unless ``recreate``.
    """
    what = obj.kind.removeprefix("Barrack").lower()
    recorded = await _recorded(ctx, obj, snapshot_of, fetch, recreate=recreate)
    if isinstance(recorded, Found):
        return recorded
    replaced = recorded
    found = await _created_before(ctx, obj, snapshot_of)
    if found is not None:
        ctx.memory.known_ids[obj.uid] = found.id
        return Found(found)
    ctx.inventory.require_fresh(LISTING_OF[obj.kind])
    named = [item for item in snapshot_of().by_name(obj.barrack_name) if not _gone(item)]
    if named:  # a create (a restore included) never takes a name another resource has
        raise NameTaken(what, obj.barrack_name, named[0].id, ctx.refs.manager_of(named[0].id, obj.uid))
    if obj.uid in ctx.memory.deleting:
        raise ObjectDeleting()
    if demand is not None:
        await ctx.admit(obj.uid, demand)  # raises OverBudget: nothing is sent
    await ctx.mark_create(obj, spec_defaults or {})
    if obj.uid in ctx.memory.deleting:  # deletion began while the mark was written
        raise ObjectDeleting()
    ctx.memory.creating.add(obj.uid)  # no await between the check above and this
    try:
        item = await create()
    finally:
        ctx.memory.creating.discard(obj.uid)
        ctx.memory.create_attempts[obj.uid] = ctx.clock()
    ctx.memory.known_ids[obj.uid] = item.id
    ctx.inventory.record(item)
    return Found(item, created=True, replaced=replaced)


async def _recorded(
    ctx: Context,
    obj: ObjectView,
    snapshot_of: Callable[[], Any],
    fetch: Callable[[str], Awaitable[T]],
    *,
    recreate: bool,
) -> Found | str | None:
    """The resource of the recorded id (or adoptId); the id of a lost one to replace; or None
    when the object has no id yet."""
    adopt_id = obj.spec.get("adoptId")
    known = obj.recorded_id or ctx.memory.known_ids.get(obj.uid)
    target = known or adopt_id
    if not target:
        return None
    manager = ctx.refs.claim(target, obj.uid)
    if manager is not None:
        raise AlreadyManaged(obj.kind.removeprefix("Barrack").lower(), target, manager)
    item = snapshot_of().items.get(target) if known else None  # adoption reads Barrack first
    if item is not None and not _gone(item):
        return Found(item)
    try:
        item = await fetch(target)
        if _gone(item):
            raise NotFound(f"{target} is DELETED")
    except (BarrackError, MissingApiKey) as error:
        if not known:  # an adoption that did not complete takes nothing (the next pass claims again)
            ctx.refs.unclaim(target, obj.uid)
        if not isinstance(error, NotFound) or (not obj.recorded_id and target == adopt_id):
            raise
        if not recreate:
            raise Lost(target) from None
        log.warning(
            "Barrack resource %s of %s/%s is gone; creating it again", target, obj.namespace, obj.name
        )
        ctx.memory.known_ids.pop(obj.uid, None)
        return target
    ctx.inventory.record(item)
    ctx.memory.known_ids[obj.uid] = item.id
    return Found(item)


async def find_for_deletion(
    ctx: Context,
    obj: ObjectView,
    snapshot_of: Callable[[], Any],
    fetch: Callable[[str], Awaitable[T]],
) -> T | None:
    """The Barrack resource to delete with this object, or None when Barrack has none. Looks at the
    recorded id, and by name for a create whose id was never written.

    None is concluded only from Barrack's word after the object's last create call returned or
    failed: a 404 for the id, or a successful listing of the kind that began after that call.
    While a create is still waiting or in flight, :class:`CreateInFlight`."""
    ctx.memory.deleting.setdefault(obj.uid, ctx.clock())
    if obj.uid in ctx.memory.creating:
        raise CreateInFlight()
    target = obj.recorded_id or ctx.memory.known_ids.get(obj.uid)  # an adoptId alone owns nothing
    if target:
        snapshot = snapshot_of()
        item: T | None = snapshot.items.get(target)
        if item is not None:
            return None if _gone(item) else item
        attempted = ctx.memory.create_attempts.get(obj.uid)
        listed_since = attempted is None or snapshot.started_at > attempted
        if snapshot.ok and ctx.inventory.listing_error(LISTING_OF[obj.kind]) is None and listed_since:
            return None  # a listing of the kind, newer than any create of this object, lacks it
        try:
            item = await fetch(target)
        except NotFound:
            return None
        return None if _gone(item) else item
    found: T | None = await _created_before(ctx, obj, snapshot_of)
    if found is None:
        ctx.inventory.require_fresh(LISTING_OF[obj.kind])
    return found


async def _created_before(ctx: Context, obj: ObjectView, snapshot_of: Callable[[], Any]) -> Any:
    """The resource of this object's Barrack name that an earlier create of this object made (its
    reply or the status write lost), if this object ever asked for one; None otherwise."""
    attempted = ctx.memory.create_attempts.get(obj.uid)
    if attempted is None and not obj.create_requested:
        return None
    if attempted is not None:
        await ctx.inventory.wait_fresh(attempted, kinds=[LISTING_OF[obj.kind]])
    for candidate in snapshot_of().by_name(obj.barrack_name):
        if not ctx.refs.claimed_by_other(candidate.id, obj.uid):
            return candidate
    return None
