"""One frame for every kind's reconcile: observe, plan, act, and rebuild the conditions.

    observe   parse the spec once, resolve references, find the Barrack resource (or create it,
              guarded against duplicates: :func:`~barrack_operator.resources.guard.ensure_exists`)
    plan      a pure function of the spec and the observation returns one step
              (:mod:`barrack_operator.resources.steps`); an ERROR or unknown state word comes first
    act       one Barrack call at most; a refusal maps to the step's own reason
    report    every condition is rebuilt from the observation and the step, every pass (nothing
              is carried over from the last pass, so conditions cannot drift apart)

A kind supplies the pieces as a :class:`KindReconciler` subclass; the frame owns create, status,
the Created and Recreated events, transitional waits, and the mapping of a refused create (one
reason for every kind: ``OutOfStock`` or ``CreateBlocked``).

Lost resources: when Barrack no longer has the resource whose id is in status (404, or the state
DELETED), a kind that holds data (volumes, instances) is not created again on its own:
``Ready=False NotFound`` until the annotation ``barrack.ai/recreate: "true"`` asks for a new one.
Kinds that hold no data (firewalls, SSH keys) are created again at once, with a Warning event.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

from barrack_operator.barrack import BarrackError, NotFound, PreconditionFailed
from barrack_operator.barrack.client import CALLS_PAUSED
from barrack_operator.barrack.credentials import MissingApiKey
from barrack_operator.conditions import READY, SYNCED, Condition, Reason
from barrack_operator.costs import Demand
from barrack_operator.listings import LISTING_OF, ListingFailed, Snapshot, T
from barrack_operator.resources import specs, steps
from barrack_operator.resources.common import RECONCILED, failed
from barrack_operator.resources.guard import Found, ensure_exists
from barrack_operator.resources.model import (
    RECREATE_ANNOTATION,
    Context,
    CreditsDepleted,
    Lost,
    ObjectView,
    Outcome,
    OverBudget,
    id_key,
    referent,
)

S = TypeVar("S", bound=specs.CommonSpec)
I = TypeVar("I")  # noqa: E741 - the kind's inputs: what observe resolved besides the resource


QUIET_UNLISTED = 6
"""How many createQuiets a new resource's progress may go unwritten while no listing has shown it
since its create (a burst of creates at a low rate limit lists a large account every 20 s or so)."""


class Unresolved(Exception):
    """A reference has no Barrack id yet (or names no object)."""


def state_step(what: str, item_id: str, state: str, states: type[StrEnum] | None) -> steps.Step | None:
    """The step a Barrack state word forces whatever the spec says: ERROR is never Ready, a word
    this operator does not know is reported (never an exception), a transitional state waits."""
    if states is None:
        return None
    try:
        known = states(state)
    except ValueError:
        return steps.Blocked(
            Reason.UNKNOWN_STATE,
            f"Barrack reports {what} {item_id} as {state}, a state this operator does not know; it looks "
            "again, and acts once the state is one it knows",
        )
    if known.value == "ERROR":
        return steps.Blocked(
            Reason.ERROR,
            f"Barrack reports {what} {item_id} in ERROR: it is not usable; delete this object (with "
            "deletionPolicy Delete the resource goes too) and create it again, or ask Barrack support",
        )
    if getattr(known, "transitional", False):
        return steps.Wait(state.title().replace("_", ""), f"The {what} is {state} on Barrack.")
    return None


def report(out: Outcome, step: steps.Step, ctx: Context) -> Outcome:
    """Ready and Synced from the step, rebuilt every pass; and when to look again."""
    timing = ctx.timing
    if isinstance(step, steps.SetAttachments | steps.SetRules) and step.then is not None:
        return report(out, step.then, ctx)
    if isinstance(step, steps.Call):  # Barrack carries the call out: a wait like any transition
        step = steps.Wait(Reason.PROGRESSING, f"Barrack is {step.doing}.")
    if isinstance(step, steps.Wait):
        out.conditions += [
            Condition(READY, False, step.reason, step.message),
            RECONCILED,
        ]
        out.requeue_after = timing.transition_requeue
    elif isinstance(step, steps.Blocked):
        out.conditions += [
            Condition(READY, False, step.reason, step.message),
            Condition(SYNCED, False, step.reason, step.message),
        ]
        if step.warn:
            out.warn(step.reason, step.message)
        out.requeue_after = timing.blocked_requeue
    elif isinstance(step, steps.Done):
        out.conditions += [
            Condition(READY, True, Reason.AVAILABLE, step.message),
            RECONCILED,
        ]
        out.requeue_after = timing.drift_interval
    return out


def referents_exist(ctx: Context, out: Outcome) -> bool:
    """Every object this pass waits on by reference exists (it is on its way: a wait, not a
    problem to warn about; a missing one is warned about, and a referent in trouble warns itself)."""
    named = [ref for ref in map(referent, out.watch) if ref is not None]
    return bool(named) and all(ctx.refs.get(*ref) is not None for ref in named)


def refused_create(error: PreconditionFailed, what: str) -> steps.Blocked:
    """A create Barrack refused for a state reason (409), the same reason for every kind."""
    if error.error_code == "out_of_stock":
        return steps.Blocked(
            Reason.OUT_OF_STOCK,
            f"Barrack refused to create the {what}: {error.message}, moments after its stock listing showed "
            "enough, and no other alternative fits; it is tried again once Barrack's stock changes (add "
            "alternatives to spec.placement to widen the choice)",
        )
    return steps.Blocked(
        Reason.CREATE_BLOCKED,
        f"Barrack refused to create the {what} for now: {error.message}. Fix what it names",
    )


class KindReconciler(ABC, Generic[S, T, I]):
    """What a kind supplies to the frame. Its reconcile is :meth:`reconcile`."""

    what: ClassVar[str]
    """The kind in words, as messages use it: volume, instance, firewall, SSH key."""
    spec_model: ClassVar[type[specs.CommonSpec]]
    states: ClassVar[type[StrEnum] | None] = None
    holds_data: ClassVar[bool] = True
    """Whether a lost resource waits for a person (volumes, instances) or is made again at once."""

    # Pieces a kind supplies ------------------------------------------------------------------------

    @abstractmethod
    async def observe(self, ctx: Context, obj: ObjectView, spec: S, out: Outcome) -> I:
        """Resolve references (raise :class:`Unresolved`) and read what the plan needs."""

    def before_create(self, ctx: Context, obj: ObjectView, spec: S, inputs: I) -> steps.Blocked | None:
        """A reason not to create at all (the spec can never be met); None to go ahead. Raise
        :class:`Unresolved` while something it is made from is not ready (before the create mark is
        written: a wait costs no write of the object)."""
        return None

    def demand(self, spec: S, inputs: I) -> Demand | None:
        """What the resource would add to the account's burn (for the budget guard); None: free."""
        return None

    @abstractmethod
    def fetch(self, ctx: Context) -> Callable[[str], Awaitable[T]]: ...

    @abstractmethod
    async def create(self, ctx: Context, obj: ObjectView, spec: S, inputs: I) -> T: ...

    @abstractmethod
    def status(self, item: T) -> dict[str, Any]: ...

    def status_of(self, ctx: Context, item: T, inputs: I | None) -> dict[str, Any]:
        """The status fields of the resource; what :meth:`status` says, unless a kind adds what
        only its inputs know."""
        return self.status(item)

    @abstractmethod
    def plan(self, ctx: Context, spec: S, item: T, inputs: I) -> steps.Step: ...

    @abstractmethod
    async def act(self, ctx: Context, item: T, step: steps.Call, out: Outcome) -> None: ...

    def refused(self, error: PreconditionFailed) -> steps.Blocked:
        """The step of a create Barrack refused for a state reason (409)."""
        return refused_create(error, self.what)

    def create_defaults(self, spec: S) -> dict[str, Any]:
        """The values a create applies to optional spec fields the manifest leaves out, written
        with the create mark (late initialization without a write of its own)."""
        return {}

    def late_init(self, spec: S, item: T, inputs: I) -> dict[str, Any]:
        """Barrack's values for optional spec fields the manifest leaves out, to write into the
        spec (late initialization), so that adopting changes nothing nobody asked to change."""
        return {}

    def mismatches(self, spec: S, item: T) -> list[str]:
        """Fields Barrack cannot change on which the resource differs from the spec, each as
        ``field: spec X, Barrack Y``."""
        return []

    def extra_conditions(
        self, ctx: Context, item: T | None, step: steps.Step, inputs: I | None
    ) -> list[Condition]:
        """Kind-specific conditions (a volume's Attached), rebuilt from the observation."""
        return []

    # The frame -------------------------------------------------------------------------------------

    def snapshot(self, ctx: Context, obj: ObjectView) -> Snapshot[Any]:
        snapshot: Snapshot[Any] = getattr(ctx.inventory, LISTING_OF[obj.kind])
        return snapshot

    async def reconcile(self, ctx: Context, obj: ObjectView) -> Outcome:
        out = Outcome()
        spec: S = self.spec_model.model_validate(obj.spec)  # type: ignore[assignment]
        ctx.memory.first_seen.setdefault(obj.uid, ctx.clock())
        known = obj.recorded_id or ctx.memory.known_ids.get(obj.uid)
        listed: T | None = self.snapshot(ctx, obj).items.get(known or "")
        if obj.paused:
            return await self._paused(ctx, obj, spec, listed)
        if obj.observe_only:
            return await self._observe_only(ctx, obj, out)
        try:
            inputs = await self.observe(ctx, obj, spec, out)
        except Unresolved as exc:
            return self._unresolved(ctx, obj, out, listed, f"{exc}; waiting for it to become Ready", None)
        except (BarrackError, MissingApiKey, ListingFailed) as error:
            return self._failed(ctx, out, listed, error, None, None)
        found = await self._ensure(ctx, obj, spec, inputs, out, listed, creatable=not known)
        if isinstance(found, Outcome):
            return found
        if found.created:
            self._note_created(obj, out, found.item, found.replaced)
        return await self._converge(ctx, obj, spec, found.item, inputs, out)

    async def _ensure(
        self,
        ctx: Context,
        obj: ObjectView,
        spec: S,
        inputs: I,
        out: Outcome,
        listed: T | None,
        *,
        creatable: bool,
    ) -> Found | Outcome:
        """The object's Barrack resource, made if it must be (Barrack's rules checked first), or
        the outcome that says why there is none yet."""
        try:
            if listed is None and creatable and not obj.spec.get("adoptId"):  # a create may follow
                refusal = self.before_create(ctx, obj, spec, inputs)
                if refusal is not None:
                    return self._report(ctx, out, None, refusal, inputs)
            return await ensure_exists(
                ctx,
                obj,
                lambda: self.snapshot(ctx, obj),
                self.fetch(ctx),
                lambda: self.create(ctx, obj, spec, inputs),
                recreate=not self.holds_data or obj.recreate_requested,
                demand=self.demand(spec, inputs),
                spec_defaults=self.create_defaults(spec),
            )
        except OverBudget as exc:
            return self._report(ctx, out, None, steps.Blocked(Reason.BUDGET_EXCEEDED, str(exc)), inputs)
        except Lost as lost:
            return self._report(ctx, out, None, self._lost_step(lost.resource_id), inputs)
        except Unresolved as exc:
            return self._unresolved(
                ctx, obj, out, None, f"{exc}; the {self.what} is created once it is", inputs
            )
        except PreconditionFailed as error:
            out.backoff = True
            return self._report(ctx, out, None, self.refused(error), inputs)
        except (BarrackError, MissingApiKey, ListingFailed) as error:
            return self._failed(ctx, out, listed, error, None, inputs)

    async def _converge(
        self, ctx: Context, obj: ObjectView, spec: S, item: T, inputs: I, out: Outcome
    ) -> Outcome:
        """Bring the resource to the spec: a mismatch or a state word first, else the plan's step,
        acted on when it is a call; then Ready and Synced from the step."""
        mismatch = self._mismatch_step(obj, spec, item)
        if mismatch is not None and not obj.recorded_id and obj.spec.get("adoptId") == item.id:
            # An adoption that differs does not complete: this object does not own the resource,
            # records no id of it, and its deletion leaves it alone.
            ctx.memory.known_ids.pop(obj.uid, None)
            ctx.refs.unclaim(item.id, obj.uid)
            return self._report(ctx, out, None, mismatch, inputs)
        step = mismatch or state_step(self.what, item.id, item.status, self.states)
        if step is None:
            step = self.plan(ctx, spec, item, inputs)
            out.spec_patch = self.late_init(spec, item, inputs)
        if isinstance(step, steps.Call):
            try:
                await self.act(ctx, item, step, out)
                ctx.memory.last_call[obj.uid] = ctx.clock()
            except OverBudget as exc:
                return self._report(ctx, out, item, steps.Blocked(Reason.BUDGET_EXCEEDED, str(exc)), inputs)
            except CreditsDepleted as exc:
                return self._report(ctx, out, item, steps.Blocked(Reason.CREDITS_DEPLETED, str(exc)), inputs)
            except (BarrackError, MissingApiKey) as error:  # a 409 maps to the step's own refusal
                return self._failed(ctx, out, item, error, step, inputs)
        out.defer_status = self._quiet(ctx, obj, item, inputs) and isinstance(step, steps.Wait | steps.Call)
        out = self._report(ctx, out, item, step, inputs)
        if isinstance(step, steps.Wait | steps.Call) and out.requeue_after is not None:
            # What it waits for shows in a listing, and a listing that shows a change wakes it:
            # looking sooner than the next listing can come only reads the same index again.
            out.requeue_after = max(out.requeue_after, ctx.inventory.fast_gap(LISTING_OF[obj.kind]))
        return out

    async def _paused(self, ctx: Context, obj: ObjectView, spec: S, item: T | None) -> Outcome:
        """``barrack.ai/paused``: no call at all, a read included, but not blind. Ready still
        compares the spec with what the inventory lists: a step the plan would take is not taken,
        and Ready=False ReconcilePaused names it (a raised sizeGB is not Ready over the old size).
        Synced is the runtime's (ReconcilePaused); nothing is warned about while paused."""
        out = Outcome()
        inputs: I | None = None
        token = CALLS_PAUSED.set(True)
        try:
            if item is None:
                step: steps.Step = steps.Blocked(
                    Reason.RECONCILE_PAUSED,
                    f"paused: the inventory lists no {self.what} of this object, and none is created or "
                    "adopted while paused",
                )
            else:
                step = (
                    self._mismatch_step(obj, spec, item)
                    or state_step(self.what, item.id, item.status, self.states)
                    or self.plan(ctx, spec, item, inputs := await self.observe(ctx, obj, spec, out))
                )
        except (Unresolved, BarrackError, MissingApiKey, ListingFailed) as exc:
            step = steps.Blocked(
                Reason.RECONCILE_PAUSED, f"paused: the spec cannot be compared with Barrack now ({exc})"
            )
        finally:
            CALLS_PAUSED.reset(token)
        if isinstance(step, steps.Call):
            step = steps.Blocked(
                Reason.RECONCILE_PAUSED,
                f"paused: the spec is not applied (Barrack would be {step.doing}); remove the annotation "
                "barrack.ai/paused to apply it",
            )
        out = self._report(ctx, out, item, step, inputs)
        out.conditions = [c for c in out.conditions if c.type != SYNCED]
        out.events.clear()
        out.requeue_after = ctx.timing.blocked_requeue
        return out

    def _unresolved(
        self, ctx: Context, obj: ObjectView, out: Outcome, listed: T | None, message: str, inputs: I | None
    ) -> Outcome:
        """A reference without an id: ``ReferenceNotReady``, a warning when a referent is missing.
        While every referent exists (it is on its way) and the object is new to this process
        (within createQuiet of its first pass), the wait is not written: in a burst an instance
        applied beside its SSH key waits a few seconds for the key's id, and that status would be
        superseded moments later. A wake-up from the referent, or the end of the quiet, looks again."""
        on_its_way = referents_exist(ctx, out)
        blocked = steps.Blocked(Reason.REFERENCE_NOT_READY, message, warn=not on_its_way)
        out = self._report(ctx, out, listed, blocked, inputs)
        age = ctx.clock() - ctx.memory.first_seen[obj.uid]  # set as the pass began
        if on_its_way and not obj.recorded_id and age < ctx.timing.create_quiet:
            out.defer_status = True
            out.requeue_after = min(out.requeue_after or math.inf, ctx.timing.create_quiet - age + 0.5)
        return out

    def _quiet(self, ctx: Context, obj: ObjectView, item: T, inputs: I | None) -> bool:
        """Within createQuiet of its create, or of its last call since (an attach, a rule), a new
        resource's progress (its first transitions, an attach, its first rules) is not written:
        only its outcome, Ready or a problem, is. Nor is it while no read (a listing, or a look at
        its page) has shown it since the create, or what it waits on: what the create's reply said
        is no news. Never past QUIET_UNLISTED createQuiets."""
        created_at = ctx.memory.create_attempts.get(obj.uid)
        if created_at is None or obj.recorded_id:
            return False
        now, quiet = ctx.clock(), ctx.timing.create_quiet
        if now - created_at >= quiet * QUIET_UNLISTED:
            return False
        last_call = max(created_at, ctx.memory.last_call.get(obj.uid, created_at))
        snapshot = self.snapshot(ctx, obj)
        unlisted = not snapshot.shown_since(item.id, created_at) or self.waits_on_unlisted(
            ctx, inputs, created_at
        )
        return unlisted or now - last_call < quiet

    def waits_on_unlisted(self, ctx: Context, inputs: I | None, since: float) -> bool:
        """No read asked for since ``since`` has shown what the resource waits on (of another
        kind): a status written now would say what was known before (see :meth:`_quiet`)."""
        return False

    async def _observe_only(self, ctx: Context, obj: ObjectView, out: Outcome) -> Outcome:
        """managementPolicy Observe: find the resource by id, adoptId or name, and mirror it; reads only."""
        target = obj.recorded_id or ctx.memory.known_ids.get(obj.uid) or obj.spec.get("adoptId")
        snapshot = self.snapshot(ctx, obj)
        item: T | None = (
            snapshot.items.get(target) if target else next(iter(snapshot.by_name(obj.barrack_name)), None)
        )
        try:
            if target and item is None:
                item = await self.fetch(ctx)(target)
        except NotFound:
            item = None
        except (BarrackError, MissingApiKey) as error:
            return self._failed(ctx, out, None, error, None, None)
        if item is None:
            where = f"with id {target}" if target else f"named {obj.barrack_name!r}"
            blocked = steps.Blocked(
                Reason.NOT_FOUND,
                f"managementPolicy Observe: Barrack has no {self.what} {where}, and Observe creates nothing; "
                "set spec.adoptId or spec.name to one that exists, or managementPolicy: Manage",
            )
            return self._report(ctx, out, None, blocked, None)
        ctx.memory.known_ids[obj.uid] = item.id
        step = state_step(self.what, item.id, item.status, self.states) or steps.Done(
            f"Observing {self.what} {item.id} ({item.status}); managementPolicy Observe changes nothing."
        )
        return self._report(ctx, out, item, step, None)

    def _mismatch_step(self, obj: ObjectView, spec: S, item: T) -> steps.Blocked | None:
        differences = self.mismatches(spec, item)
        if not differences:
            return None
        adopted = bool(obj.spec.get("adoptId"))
        return steps.Blocked(
            Reason.ADOPTION_MISMATCH if adopted else Reason.INVALID_SPEC,
            f"{'the adopted ' if adopted else ''}{self.what} {item.id} differs from the spec in what Barrack "
            f"cannot change ({'; '.join(differences)}): nothing is changed; set the spec to Barrack's values"
            + (", or adopt another resource" if adopted else ""),
        )

    def _lost_step(self, resource_id: str) -> steps.Blocked:
        return steps.Blocked(
            Reason.NOT_FOUND,
            f"Barrack no longer has {self.what} {resource_id} (deleted outside this operator?); it is not "
            f'created again on its own: annotate barrack.ai/recreate="true" for a new, empty one, or '
            "delete this object",
        )

    def _note_created(self, obj: ObjectView, out: Outcome, item: Any, replaced: str | None) -> None:
        if replaced is None:
            out.note("Created", f"Created Barrack {self.what} {item.id}")
            return
        out.warn("Recreated", f"Barrack no longer had {self.what} {replaced}; created {item.id} in its place")
        if obj.recreate_requested:
            out.clear_annotations.append(RECREATE_ANNOTATION)

    def _report(
        self, ctx: Context, out: Outcome, item: T | None, step: steps.Step, inputs: I | None
    ) -> Outcome:
        if item is not None:
            out.status = self.status_of(ctx, item, inputs)
            out.watch.add(id_key(item.id))
        out.conditions += self.extra_conditions(ctx, item, step, inputs)
        return report(out, step, ctx)

    def _failed(
        self,
        ctx: Context,
        out: Outcome,
        item: T | None,
        error: BarrackError | MissingApiKey | ListingFailed,
        step: steps.Step | None,
        inputs: I | None,
    ) -> Outcome:
        if item is not None:
            out.status = self.status_of(ctx, item, inputs)
            out.watch.add(id_key(item.id))
        if step is not None:
            out.conditions += self.extra_conditions(ctx, item, step, inputs)
        refusal = step.refusal if isinstance(step, steps.Call) else Reason.PRECONDITION_FAILED
        return failed(out, error, ctx.timing, blocked=refusal)
