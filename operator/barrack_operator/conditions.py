"""Status conditions in the Kubernetes shape, and the reasons a person will see.

Types:
  Ready       the Barrack resource exists and is in the state the spec asks for.
  Synced      the last reconcile succeeded; when False its reason says why.
  Attached    (volumes) the volume is attached to the instance the spec names.
  Reconciling True while the operator converges (kstatus: InProgress).
  Stalled     True when only a person can fix it (kstatus: Failed).

A condition's ``lastTransitionTime`` moves only when its status changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

READY = "Ready"
SYNCED = "Synced"
ATTACHED = "Attached"
CREDITS_LOW = "CreditsLow"
"""An account's condition: its runway is shorter than creditsLowHours."""
BUDGET_FORECAST = "BudgetForecast"
"""An account's condition (with spec.monthlyBudget): True while the month's projection fits it."""
RECONCILING = "Reconciling"
STALLED = "Stalled"


class Reason(StrEnum):
    """Reasons, each with what must be true for it."""

    AVAILABLE = "Available"
    """Ready=True: the resource exists and matches the spec."""
    RECONCILED = "Reconciled"
    """Synced=True: the last reconcile made no error."""
    PROGRESSING = "Progressing"
    """Ready=False: the operator made a call and waits for Barrack to act on it."""
    CREATING = "Creating"
    """Ready=False: no Barrack resource yet; it is being created."""
    DETACH_BLOCKED = "DetachBlocked"
    """Synced=False: a detach waits for a precondition (instance SHUTOFF, volume not bootable)."""
    ATTACH_BLOCKED = "AttachBlocked"
    """A needed attach waits for the instance to reach an attachable state."""
    REFERENCE_NOT_READY = "ReferenceNotReady"
    """A referenced object has no Barrack id yet, or does not exist."""
    INVALID_SPEC = "InvalidSpec"
    """The spec asks for something Barrack refuses or cannot do; change the spec."""
    UNAUTHORIZED = "Unauthorized"
    """Barrack refused the API key."""
    INSUFFICIENT_CREDITS = "InsufficientCredits"
    """Barrack refused for lack of credit; top up the account."""
    RATE_LIMITED = "RateLimited"
    """Barrack answered 429; the operator waits as told."""
    API_UNAVAILABLE = "ApiUnavailable"
    """Barrack could not be reached, answered 5xx or a reply that does not parse; the operator retries."""
    OPERATOR_ERROR = "OperatorError"
    """The operator itself failed (a bug); its log has the traceback; it retries."""
    KUBERNETES_UNAVAILABLE = "KubernetesUnavailable"
    """The Kubernetes API refused or could not be reached for a write the operator needs first."""
    DELETION_BLOCKED = "DeletionBlocked"
    """Deletion waits for a precondition; the finalizer stays until it passes."""
    PRECONDITION_FAILED = "PreconditionFailed"
    """Barrack refused with 409 for another state reason; the operator retries."""
    OUT_OF_STOCK = "OutOfStock"
    NO_CAPACITY = "NoCapacity"
    SCHEDULE_CONFLICT = "ScheduleConflict"
    LIFETIME_ENDED = "LifetimeEnded"
    """Synced=False: Barrack has too few GPUs of the model in the region to create the instance."""
    CREATE_BLOCKED = "CreateBlocked"
    """Synced=False: Barrack refused a create for a state reason (409); the operator retries."""
    NAME_TAKEN = "NameTaken"
    """Synced=False: a Barrack resource of this Barrack name exists that this object did not create."""
    ALREADY_MANAGED = "AlreadyManaged"
    """Synced=False: the Barrack resource this object would take is managed by another object."""
    ADOPTION_MISMATCH = "AdoptionMismatch"
    """Synced=False: the adopted resource differs from the spec in a field Barrack cannot change."""
    RECONCILE_PAUSED = "ReconcilePaused"
    """Synced=False: the annotation barrack.ai/paused stops every Barrack call for the object."""
    NOT_FOUND = "NotFound"
    """The Barrack resource the status or adoptId names does not exist."""
    RESIZE_BLOCKED = "ResizeBlocked"
    """Synced=False: Barrack refused a resize for a state reason (409); the operator retries."""
    POWER_BLOCKED = "PowerBlocked"
    """Synced=False: Barrack refused a power action (start, stop, hibernate, restore) for now."""
    ERROR = "Error"
    """Ready=False: Barrack reports the resource in ERROR; it is never Ready in that state."""
    UNKNOWN_STATE = "UnknownState"
    """Ready=False: Barrack reports a state word this operator does not know; it looks again."""
    BOOT_VOLUME = "BootVolume"
    """Attached=True: the volume is the boot volume of the instance it names; it never detaches."""
    ATTACHED = "Attached"
    """Attached=True: the volume is attached to the instance the spec names."""
    DETACHED = "Detached"
    """Attached=False: the volume is attached to no instance."""
    SNAPSHOT_BLOCKED = "SnapshotBlocked"
    """Synced=False: a snapshot waits for its instance: ACTIVE, and no other snapshot of it being made."""
    SCHEDULED = "Scheduled"
    """Ready=True on a snapshot schedule: it is valid and runs at its next slot."""
    SUSPENDED = "Suspended"
    """Ready=True on a snapshot schedule: spec.suspend is true; it takes no snapshot."""
    NO_INSTANCES = "NoInstances"
    """Synced=False on a snapshot schedule: no BarrackInstance matches; each run looks again."""
    DELETING = "Deleting"
    """Ready=False: Barrack is deleting the resource."""
    ACCOUNT_NOT_FOUND = "AccountNotFound"
    """Synced=False: the BarrackAccount the object names does not exist or is invalid; no call."""
    ACCOUNT_NOT_ALLOWED = "AccountNotAllowed"
    """Synced=False: the object's namespace is not among the account's allowedNamespaces; no call."""
    BUDGET_EXCEEDED = "BudgetExceeded"
    """Synced=False: a create or power-on would raise the account's burn above its maxHourlySpend."""
    CREDITS_DEPLETED = "CreditsDepleted"
    """Ready=False: Barrack hibernated the instance because the account's credit ran out."""
    CREDITS_LOW = "CreditsLow"
    """CreditsLow=True on an account: its runway is shorter than creditsLowHours."""
    CREDITS_OK = "CreditsOk"
    """CreditsLow=False on an account: its runway is at least creditsLowHours (or nothing burns)."""
    WITHIN_BUDGET = "WithinBudget"
    """BudgetForecast=True on an account: the month's projection is within spec.monthlyBudget."""
    PROJECTED_OVER_BUDGET = "ProjectedOverBudget"
    """BudgetForecast=False on an account: the month's projection passes spec.monthlyBudget."""
    SECRET_CONFLICT = "SecretConflict"
    """Synced=False on an instance: the Secret writeConnectionSecretToRef names exists and is not
    controlled by this instance; it is left untouched."""


STALLED_REASONS = frozenset(
    {
        Reason.INVALID_SPEC,
        Reason.UNAUTHORIZED,
        Reason.INSUFFICIENT_CREDITS,
        Reason.ADOPTION_MISMATCH,
        Reason.NOT_FOUND,
        Reason.ERROR,
        Reason.ALREADY_MANAGED,
        Reason.NAME_TAKEN,
        Reason.ACCOUNT_NOT_FOUND,
        Reason.ACCOUNT_NOT_ALLOWED,
        Reason.CREDITS_DEPLETED,
        Reason.SECRET_CONFLICT,
    }
)
"""Reasons only a person can clear (change the spec, the key, the account): Stalled=True."""


def kstatus_conditions(conditions: list[dict[str, Any]]) -> list[Condition]:
    """Reconciling and Stalled, derived from Ready and Synced, so that kstatus-based tools (Flux,
    Helm's wait, kpt) and ``kubectl wait`` read progress: Stalled when a reason only a person can
    clear stands; Reconciling while the resource is not yet Ready and Synced (paused excepted)."""
    by_type = {c.get("type"): c for c in conditions}
    ready, synced = by_type.get(READY, {}), by_type.get(SYNCED, {})
    for condition in (synced, ready):
        if condition.get("status") == "False" and condition.get("reason") in STALLED_REASONS:
            reason, message = str(condition["reason"]), str(condition.get("message", ""))
            return [
                Condition(STALLED, True, reason, message),
                Condition(RECONCILING, False, reason, "Stalled: only a change by a person lets it go on."),
            ]
    if synced.get("reason") == Reason.RECONCILE_PAUSED:
        paused = str(synced.get("message", ""))
        return [
            Condition(STALLED, False, Reason.RECONCILE_PAUSED, paused),
            Condition(RECONCILING, False, Reason.RECONCILE_PAUSED, paused),
        ]
    if ready.get("status") == "True" and synced.get("status") == "True":
        return [
            Condition(STALLED, False, Reason.AVAILABLE, "Nothing blocks it."),
            Condition(RECONCILING, False, Reason.AVAILABLE, "The resource matches the spec."),
        ]
    why = ready if ready.get("status") == "False" else synced
    return [
        Condition(
            STALLED, False, str(why.get("reason") or Reason.PROGRESSING), "The operator is converging."
        ),
        Condition(
            RECONCILING, True, str(why.get("reason") or Reason.PROGRESSING), str(why.get("message", ""))
        ),
    ]


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Condition:
    type: str
    status: bool
    reason: str
    message: str = ""

    def as_dict(self, previous: dict[str, Any] | None, generation: int | None, now: str) -> dict[str, Any]:
        status = "True" if self.status else "False"
        unchanged = previous is not None and previous.get("status") == status
        return {
            "type": self.type,
            "status": status,
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": previous["lastTransitionTime"] if unchanged and previous else now,
            "observedGeneration": generation,
        }


def merge_conditions(
    previous: list[dict[str, Any]], updates: list[Condition], generation: int | None, now: str | None = None
) -> list[dict[str, Any]]:
    """The condition list after ``updates``: updated types replaced (keeping the transition time when
    the status did not change), other types kept, in a stable order."""
    now = now or now_iso()
    by_type = {c.get("type"): c for c in previous}
    for update in updates:
        by_type[update.type] = update.as_dict(by_type.get(update.type), generation, now)
    order = {READY: 0, SYNCED: 1, ATTACHED: 2, RECONCILING: 3, STALLED: 4}
    return sorted(by_type.values(), key=lambda c: (order.get(str(c.get("type")), 9), str(c.get("type"))))
