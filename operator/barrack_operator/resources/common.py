"""What every kind's reconcile shares: the object as reconcile sees it, the outcome it returns,
the context it acts through, Barrack-error-to-condition mapping, and the guarded create.

Reconcile is level-triggered: observe (the shared inventory, the referents), plan the smallest set
of calls, act, and return an :class:`Outcome` that the kopf glue writes to status and events.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar

from barrack_operator.barrack import (
    ApiUnavailable,
    BarrackClient,
    BarrackError,
    InsufficientCredits,
    InvalidRequest,
    NotFound,
    PreconditionFailed,
    RateLimited,
    Unauthorized,
)
from barrack_operator.barrack import models as wire
from barrack_operator.barrack.credentials import FILE_FIX, MissingApiKey
from barrack_operator.conditions import READY, SYNCED, Condition, Reason
from barrack_operator.costs import Demand
from barrack_operator.inventory import LISTING_OF, Inventory, ListingError, ListingFailed

log = logging.getLogger(__name__)
T = TypeVar("T", wire.Volume, wire.VMInstance, wire.Firewall, wire.SSHKey, wire.Snapshot, wire.CustomImage)


RECREATE_ANNOTATION = "barrack.ai/recreate"
"""On an object whose Barrack resource is lost: "true" asks the operator for a new, empty one."""
PAUSED_ANNOTATION = "barrack.ai/paused"
""""true" stops every Barrack call for the object, deletion included, until it is removed."""
RECONCILE_REQUESTED_ANNOTATION = "barrack.ai/reconcile-requested-at"
"""A new value asks for a reconcile now; status.lastHandledReconcileAt echoes it once handled."""


@dataclass(frozen=True)
class ObjectView:
    """The Kubernetes object as reconcile sees it: plain data, no kopf types."""

    kind: str
    namespace: str
    name: str
    uid: str
    generation: int
    spec: dict[str, Any]
    status: dict[str, Any]
    create_requested_name: str | None = None
    """The Barrack name in the mark the operator writes on the object before it asks Barrack to
    create (see :func:`ensure_exists`)."""
    recreate_requested: bool = False
    """The object carries ``barrack.ai/recreate: "true"``: a lost resource may be made again."""
    paused: bool = False
    """The object carries ``barrack.ai/paused: "true"``: no Barrack call at all."""
    reconcile_requested_at: str | None = None
    """The value of ``barrack.ai/reconcile-requested-at``, echoed once a pass handled it."""
    finalizers: tuple[str, ...] = ()
    """``metadata.finalizers`` as the object was seen."""
    resource_version: str = ""
    """``metadata.resourceVersion`` as the object was seen (a precondition for a write that must
    not clobber another writer's finalizers)."""

    @property
    def observe_only(self) -> bool:
        """``managementPolicy: Observe``: status mirrors Barrack; no mutating call, ever."""
        return self.spec.get("managementPolicy") == "Observe"

    @property
    def barrack_name(self) -> str:
        return str(self.spec.get("name") or self.name)

    @property
    def create_requested(self) -> bool:
        """An earlier process asked Barrack to create this object's resource under its current
        Barrack name: a resource of that name may be the one it made."""
        return self.create_requested_name == self.barrack_name

    @property
    def recorded_id(self) -> str | None:
        value = self.status.get("id")
        return str(value) if value else None


@dataclass(frozen=True)
class Event:
    type: str  # Normal or Warning
    reason: str
    message: str

    def action(self, finalizing: bool) -> str:
        """What the operator did or tried (an Event's ``action``): named by the reason of a change,
        else what the pass was for."""
        return EVENT_ACTIONS.get(self.reason) or ("Delete" if finalizing else "Reconcile")


EVENT_ACTIONS = {
    "Created": "Create",
    "Recreated": "Create",
    "Deleting": "Delete",
    "Deleted": "Delete",
    "Retained": "Release",
    "Released": "Release",
    "Detaching": "Detach",
    "Attaching": "Attach",
    "AttachmentsChanged": "Attach",
    "Resizing": "Resize",
    "RulesChanged": "UpdateRules",
    "SecurityRulesChanged": "UpdateRules",
    "PowerStateChanged": "ChangePower",
    "PublicIPChanged": "UpdatePublicIP",
    "ScheduledRun": "Create",
    "SnapshotsPruned": "Delete",
}


@dataclass
class Outcome:
    """What a reconcile found and did. ``status`` holds the observed fields (not conditions);
    ``requeue_after`` is when to look again at the latest; ``done`` matters for deletion only."""

    status: dict[str, Any] = field(default_factory=dict)
    conditions: list[Condition] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None
    watch: set[str] = field(default_factory=set)
    done: bool = False
    backoff: bool = False
    """A call was refused or failed: the glue retries this object with exponential backoff."""
    clear_annotations: list[str] = field(default_factory=list)
    """Annotations the glue removes from the object once the outcome is written."""
    spec_patch: dict[str, Any] = field(default_factory=dict)
    """Spec fields the glue writes (late initialization: Barrack's values for fields left out)."""
    defer_status: bool = False
    """The resource was created moments ago and this pass made progress (a transition, a call):
    it does not write status (see :attr:`Timing.create_quiet`)."""

    def warn(self, reason: str, message: str) -> None:
        self.events.append(Event("Warning", reason, message))

    def note(self, reason: str, message: str) -> None:
        self.events.append(Event("Normal", reason, message))


@dataclass(frozen=True)
class RefInfo:
    """What the operator knows of a referenced object from its last-seen status."""

    uid: str
    id: str | None
    ready: bool
    state: str | None
    labels: Mapping[str, str] = field(default_factory=dict)
    account: str | None = None
    """The spec's accountRef name (None: the default account)."""
    region: str | None = None
    """The spec's region, known before the object has an id."""
    manages: bool = True
    """False for ``managementPolicy: Observe``: it records an id but never owns it."""


class References(Protocol):
    def get(self, kind: str, namespace: str, name: str) -> RefInfo | None: ...

    def claimed_by_other(self, barrack_id: str, uid: str) -> bool: ...

    def manager_of(self, barrack_id: str, uid: str) -> str | None:
        """``Kind namespace/name`` of another object (not ``uid``) that manages the Barrack id."""
        ...

    def claim(self, barrack_id: str, uid: str) -> str | None:
        """Take the Barrack id for ``uid`` unless another object manages it; that object's
        ``Kind namespace/name`` when it does (nothing is taken then). One step, no await: two
        objects adopting one id at once cannot both take it."""
        ...

    def unclaim(self, barrack_id: str, uid: str) -> None:
        """Let go of a claim ``uid`` made (an adoption that did not complete)."""
        ...

    def recorded_by_other(self, barrack_id: str, uid: str) -> str | None:
        """``Kind namespace/name`` of another object (not ``uid``, not an observer) whose status
        records the Barrack id, if any."""
        ...

    def name_of(self, kind: str, namespace: str, barrack_id: str) -> str | None:
        """The object of this kind in this namespace that manages the Barrack id, if any."""
        ...


@dataclass
class Memory:
    """What the operator remembers per object between reconciles, beyond status: ids learnt but
    perhaps not yet written (a status write can fail), creates in flight and when the last one
    returned, objects whose deletion began, and refusals in a row (for backoff)."""

    known_ids: dict[str, str] = field(default_factory=dict)
    create_attempts: dict[str, float] = field(default_factory=dict)
    """When this object's last create call returned or failed (monotonic seconds)."""
    creating: set[str] = field(default_factory=set)
    """Objects with a create call waiting for the rate limiter or in flight."""
    deleting: dict[str, float] = field(default_factory=dict)
    """Objects whose deletion began, and when; no create is sent for them after that."""
    failures: dict[str, int] = field(default_factory=dict)
    """Failed or refused calls in a row per object."""
    first_seen: dict[str, float] = field(default_factory=dict)
    """When this process first reconciled each object (monotonic seconds)."""
    last_call: dict[str, float] = field(default_factory=dict)
    """When a pass of each object last sent a call other than its create (monotonic seconds)."""

    DELETION_MARK_SECONDS = 3600.0
    """How long a deleted object's mark is kept, so that a reconcile still under way when its
    deletion ended cannot create for it."""

    def forget(self, uid: str, now: float) -> None:
        self.known_ids.pop(uid, None)
        self.create_attempts.pop(uid, None)
        self.failures.pop(uid, None)
        self.first_seen.pop(uid, None)
        self.last_call.pop(uid, None)
        self.deleting[uid] = now
        for old in [u for u, at in self.deleting.items() if at < now - self.DELETION_MARK_SECONDS]:
            del self.deleting[old]


@dataclass
class Timing:
    transition_requeue: float = 2.0
    """Seconds before a second look while Barrack reports a transitional state."""
    blocked_requeue: float = 10.0
    """Seconds before retrying a blocked precondition or a refused call."""
    drift_interval: float = 60.0
    """Seconds between looks at a settled object (drift is also seen at once by the inventory)."""
    create_quiet: float = 10.0
    """Seconds after a create during which the resource's progress (its first transitions, an
    attach, its first rules) is not written to status, only its outcome: most resources settle
    within them and get one status write, Ready, or a problem at once; one that takes longer shows
    its id and state from then on. The create mark covers a crash."""


async def _no_mark(obj: ObjectView, spec_defaults: dict[str, Any]) -> None:
    return None


async def _no_budget(key: str, demand: Demand) -> None:
    return None


@dataclass
class Context:
    client: BarrackClient
    inventory: Inventory
    refs: References
    memory: Memory = field(default_factory=Memory)
    timing: Timing = field(default_factory=Timing)
    clock: Callable[[], float] = time.monotonic
    mark_create: Callable[[ObjectView, dict[str, Any]], Awaitable[None]] = _no_mark
    """Persist on the object, before a create is sent, that it asked for one (survives a crash),
    with the spec values the create applies to fields left out; raises :class:`MarkNotWritten`
    when it could not."""
    credits_depleted: Callable[[], bool] = lambda: False
    """The account's balance is spent (Barrack hibernates every instance until a top-up)."""
    admit: Callable[[str, Demand], Awaitable[None]] = _no_budget
    """The account's budget guard: raises :class:`OverBudget` when what is asked (a create, a
    power-on) would raise the account's burn above its maxHourlySpend; else reserves it."""


class OverBudget(Exception):
    """A create or power-on was refused before any call: it would exceed the account's budget."""


class CreditsDepleted(Exception):
    """The account's credit ran out (Barrack hibernated its instances): no restore or start is
    sent, it would only be refused (402)."""


class MarkNotWritten(Exception):
    """:attr:`Context.mark_create` could not persist the mark; the create was not sent."""


class Lost(Exception):
    """Barrack no longer has the resource whose id the object recorded (404, or DELETED)."""

    def __init__(self, resource_id: str) -> None:
        super().__init__(f"Barrack no longer has {resource_id}")
        self.resource_id = resource_id


class ObjectDeleting(Exception):
    """The object's deletion began: no create is sent for it."""


class CreateInFlight(Exception):
    """A create for this object waits for the rate limiter or for Barrack's reply: until it
    returns, nobody can say whether Barrack holds a resource of it."""


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
    """The Barrack resource this object would take (by adoptId or by name) is managed by another
    object: one Barrack resource, one object. Nothing is called."""

    def __init__(self, what: str, resource_id: str, manager: str) -> None:
        super().__init__(
            f"Barrack {what} {resource_id} is already managed by {manager}: one Barrack resource has one "
            "object; delete one of the two, or point this one at another resource"
        )


# Errors onto conditions --------------------------------------------------------------------------


def failure_reason(error: ListingError, blocked: Reason = Reason.PRECONDITION_FAILED) -> tuple[Reason, str]:
    """The Synced=False reason and message for a Barrack error, the one mapping for every kind."""
    if isinstance(error, ListingFailed):
        return Reason.OPERATOR_ERROR, f"{error}; see the operator log; it retries"
    if isinstance(error, NameTaken):
        return Reason.NAME_TAKEN, error.message
    if isinstance(error, AlreadyManaged):
        return Reason.ALREADY_MANAGED, error.message
    if isinstance(error, MissingApiKey):
        return Reason.UNAUTHORIZED, f"{error}; {error.fix}"
    if isinstance(error, Unauthorized):
        return Reason.UNAUTHORIZED, f"Barrack refused the API key ({error.message}): {error.fix or FILE_FIX}"
    if isinstance(error, InsufficientCredits):
        return (
            Reason.INSUFFICIENT_CREDITS,
            f"{error.message}: top up the Barrack account; the operator retries",
        )
    if isinstance(error, RateLimited):
        return Reason.RATE_LIMITED, f"Barrack rate limit hit; retrying after {error.retry_after:.0f}s"
    if isinstance(error, ApiUnavailable):
        return Reason.API_UNAVAILABLE, f"Barrack is unavailable ({error.message}); the operator retries"
    if isinstance(error, InvalidRequest):
        return Reason.INVALID_SPEC, f"Barrack refused the request: {error.message}. Change the spec."
    if isinstance(error, NotFound):
        return Reason.NOT_FOUND, f"Barrack has no such resource: {error.message}"
    if isinstance(error, PreconditionFailed):
        return blocked, f"Barrack refused for now: {error.message}"
    return Reason.API_UNAVAILABLE, str(error)


def failed(
    outcome: Outcome,
    error: ListingError,
    timing: Timing,
    blocked: Reason = Reason.PRECONDITION_FAILED,
) -> Outcome:
    """A call failed or was refused: Synced=False with the mapped reason, a Warning, and a retry,
    with backoff unless Barrack said when (429) or the refusal is a state that may pass soon (409)."""
    reason, message = failure_reason(error, blocked)
    outcome.conditions.append(Condition(SYNCED, False, reason, message))
    if not any(c.type == READY for c in outcome.conditions):
        outcome.conditions.append(Condition(READY, False, reason, message))
    outcome.warn(reason, message)
    retry = error.retry_after if isinstance(error, RateLimited) else timing.blocked_requeue
    outcome.requeue_after = max(retry, 1.0)
    outcome.backoff = not isinstance(error, RateLimited | PreconditionFailed)
    return outcome


def blocked(
    outcome: Outcome, reason: Reason, message: str, timing: Timing, *, ready: bool = False
) -> Outcome:
    outcome.conditions.append(Condition(SYNCED, False, reason, message))
    if not ready and not any(c.type == READY for c in outcome.conditions):
        outcome.conditions.append(Condition(READY, False, reason, message))
    outcome.warn(reason, message)
    outcome.requeue_after = timing.blocked_requeue
    return outcome


RECONCILED = Condition(SYNCED, True, Reason.RECONCILED, "The last reconcile succeeded.")
"""Synced=True: the one way every pass says it succeeded."""


def synced(outcome: Outcome) -> None:
    outcome.conditions.append(RECONCILED)


def waiting_on_state(outcome: Outcome, kind: str, state: str, timing: Timing) -> Outcome:
    """A transitional Barrack state: not an error, Ready=False with the state as the reason."""
    outcome.conditions.append(
        Condition(READY, False, state.title().replace("_", ""), f"The {kind} is {state} on Barrack.")
    )
    synced(outcome)
    outcome.requeue_after = timing.transition_requeue
    return outcome


def with_next_try(out: Outcome, delay: float, failures: int) -> None:
    """Say in the Synced condition when a failing call is tried next."""
    at = (datetime.now(UTC) + timedelta(seconds=delay)).strftime("%H:%M:%SZ")
    for index, condition in enumerate(out.conditions):
        if condition.type == SYNCED and not condition.status:
            when = f"next try in {delay:.0f}s, at {at} ({failures} failed in a row; the wait doubles up to a limit)"
            out.conditions[index] = replace(condition, message=f"{condition.message.rstrip('.')}; {when}")


def complete_status(ctx: Context, obj: ObjectView, out: Outcome) -> Outcome:
    """Fill what an early return left out, so that no path leaves status stale: the id and Barrack
    state of the object's resource as the inventory lists it now."""
    known = out.status.get("id") or obj.recorded_id or ctx.memory.known_ids.get(obj.uid)
    if known and "state" not in out.status:
        item = getattr(ctx.inventory, LISTING_OF[obj.kind]).items.get(known)
        if item is not None:
            out.status = {"id": item.id, "state": item.status, **out.status}
    return out


def progressing(out: Outcome, timing: Timing, what: str) -> Outcome:
    """The operator asked Barrack for a change and looks again soon."""
    out.conditions.append(Condition(READY, False, Reason.PROGRESSING, f"Barrack is {what}."))
    synced(out)
    out.requeue_after = timing.transition_requeue
    return out


async def finalize_guarded(
    ctx: Context, obj: ObjectView, steps: Callable[[Outcome], Awaitable[Outcome]]
) -> Outcome:
    """The deletion frame every kind shares: Retain lets go at once; otherwise ``steps`` runs and
    is done only when it finds no resource to delete (``find_for_deletion`` returns None); any
    refusal keeps the finalizer (``done`` stays False) with its reason.

    A 404 from a step is not taken as done: it may name another resource than the one being
    deleted (the instance a volume is attached to, deleted meanwhile), and the resource itself
    would then be left on Barrack, billed and owned by nobody. The next pass looks again."""
    out = Outcome()
    if obj.spec.get("deletionPolicy") == "Retain" or obj.observe_only:
        out.done = True  # nothing on Barrack is this object's to delete
        return out
    try:
        return await steps(out)
    except CreateInFlight:
        return progressing(out, ctx.timing, "still answering this object's create; deletion follows")
    except NotFound as error:
        return progressing(out, ctx.timing, f"answering 404 ({error.message}); the operator looks again")
    except PreconditionFailed as error:
        return failed(out, error, ctx.timing, blocked=Reason.DELETION_BLOCKED)
    except (BarrackError, MissingApiKey, ListingFailed) as error:
        return failed(out, error, ctx.timing)


def ref_key(kind: str, namespace: str, name: str) -> str:
    return f"k8s:{kind}/{namespace}/{name}"


def referent(key: str) -> tuple[str, str, str] | None:
    """The (kind, namespace, name) a :func:`ref_key` names; None for any other key."""
    if not key.startswith("k8s:"):
        return None
    kind, namespace, name = key.removeprefix("k8s:").split("/", 2)
    return kind, namespace, name


def id_key(barrack_id: str) -> str:
    return f"brk:{barrack_id}"


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
