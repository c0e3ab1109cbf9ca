"""Reconciling and Stalled, derived from Ready and Synced, read by the kstatus rules that Flux,
Helm's wait and kpt apply to custom resources: observedGeneration behind the generation, or
Reconciling=True, is InProgress; Stalled=True is Failed; otherwise Current."""

from __future__ import annotations

from typing import Any

import pytest

from barrack_operator.conditions import READY, SYNCED, Condition, Reason, kstatus_conditions, merge_conditions


def kstatus(obj: dict[str, Any]) -> str:
    """The kstatus reading of a custom resource's status (its generic rules)."""
    status = obj.get("status") or {}
    if status.get("observedGeneration") != obj["metadata"]["generation"]:
        return "InProgress"
    conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
    if conditions.get("Reconciling") == "True":
        return "InProgress"
    if conditions.get("Stalled") == "True":
        return "Failed"
    return "Current"


def obj_with(*updates: Condition, generation: int = 1) -> dict[str, Any]:
    conditions = merge_conditions([], list(updates), generation)
    conditions = merge_conditions(conditions, kstatus_conditions(conditions), generation)
    return {
        "metadata": {"generation": generation},
        "status": {"observedGeneration": generation, "conditions": conditions},
    }


CASES = [
    ("Ready and Synced is Current", [Condition(READY, True, "Available"), Condition(SYNCED, True, "Reconciled")], "Current"),
    ("a transitional state is InProgress", [Condition(READY, False, "Creating"), Condition(SYNCED, True, "Reconciled")], "InProgress"),
    ("a call Barrack is carrying out is InProgress", [Condition(READY, False, "Progressing"), Condition(SYNCED, True, "Reconciled")], "InProgress"),
    ("a detach waiting for a stop is InProgress: it goes on once the instance stops",
     [Condition(READY, True, "Available"), Condition(SYNCED, False, "DetachBlocked")], "InProgress"),
    ("Barrack down is InProgress: the operator retries", [Condition(READY, False, "ApiUnavailable"), Condition(SYNCED, False, "ApiUnavailable")], "InProgress"),
    ("an invalid spec is Failed", [Condition(READY, False, "InvalidSpec"), Condition(SYNCED, False, "InvalidSpec")], "Failed"),
    ("a refused key is Failed", [Condition(READY, True, "Available"), Condition(SYNCED, False, "Unauthorized")], "Failed"),
    ("a lost resource is Failed", [Condition(READY, False, "NotFound"), Condition(SYNCED, False, "NotFound")], "Failed"),
    ("an adoption mismatch is Failed", [Condition(READY, False, "AdoptionMismatch"), Condition(SYNCED, False, "AdoptionMismatch")], "Failed"),
    ("too little credit is Failed", [Condition(READY, False, "InsufficientCredits"), Condition(SYNCED, False, "InsufficientCredits")], "Failed"),
    ("a paused object is neither converging nor stalled",
     [Condition(READY, True, "Available"), Condition(SYNCED, False, Reason.RECONCILE_PAUSED)], "Current"),
]  # fmt: skip


@pytest.mark.parametrize(("reason", "conditions", "expected"), CASES, ids=[c[0] for c in CASES])
def test_kstatus_reads_the_derived_conditions(
    reason: str, conditions: list[Condition], expected: str
) -> None:
    assert kstatus(obj_with(*conditions)) == expected, reason


def test_a_spec_not_yet_observed_is_in_progress_whatever_the_conditions() -> None:
    obj = obj_with(Condition(READY, True, "Available"), Condition(SYNCED, True, "Reconciled"))
    obj["metadata"]["generation"] = 2
    assert kstatus(obj) == "InProgress"
