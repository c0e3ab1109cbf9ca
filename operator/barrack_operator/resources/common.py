"""Barrack errors onto conditions, the one mapping for every kind (:func:`failure_reason`), and
the helpers that build an outcome's conditions: a failure, a block, a wait on a state, progress,
the next try, and the deletion frame every kind shares (:func:`finalize_guarded`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from barrack_operator.barrack import (
    ApiUnavailable,
    BarrackError,
    InsufficientCredits,
    InvalidRequest,
    NotFound,
    PreconditionFailed,
    RateLimited,
    Unauthorized,
)
from barrack_operator.barrack.credentials import FILE_FIX, MissingApiKey
from barrack_operator.conditions import READY, SYNCED, Condition, Reason
from barrack_operator.listings import LISTING_OF, ListingError, ListingFailed
from barrack_operator.resources.guard import AlreadyManaged, NameTaken
from barrack_operator.resources.model import (
    Context,
    CreateInFlight,
    ObjectView,
    Outcome,
    Timing,
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
        return (
            blocked,
            f"Barrack refused for now: {error.message}; the operator tries again, every few seconds",
        )
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
