"""What to do for each reason, as the table of docs/conditions.md says it: that page is the one
place; this copy ships in the wheel for ``kubectl barrack why``, and a unit test fails when the
two differ. Write it again with ``python -m barrack_operator.plugin.next_steps docs/conditions.md``."""

from __future__ import annotations

import pprint
import re
import sys
from pathlib import Path

HEADER = "| Reason | On | Meaning | What to do |"


def from_doc(text: str) -> dict[str, str]:
    """Each reason of the table and its 'What to do' cell."""
    lines = text.splitlines()
    steps: dict[str, str] = {}
    for line in lines[lines.index(HEADER) + 2 :]:
        if not line.startswith("|"):
            break
        cells = [cell.strip() for cell in line.strip().strip("|").split(" | ")]
        for reason in re.findall(r"`([A-Za-z]+)`", cells[0]):
            steps[reason] = cells[-1]
    return steps


NEXT_STEPS: dict[str, str] = {
    "AccountNotAllowed": "use an account that allows the namespace, or add it to the account",
    "AccountNotFound": "create the account, fix it, or name another",
    "AdoptionMismatch": "set the spec to Barrack's values, or adopt another resource",
    "AlreadyManaged": "delete one of the two objects, or point this one at another resource",
    "ApiUnavailable": "nothing; the operator retries, backing off (the message says when)",
    "AttachBlocked": "wait, or set the instance's `powerState: Running`",
    "Attached": "nothing",
    "Attaching": "wait; the operator looks again when the state moves",
    "Available": "nothing",
    "BootVolume": "nothing",
    "BudgetExceeded": "wait for other resources to go, raise `maxHourlySpend`, or ask for less; it "
    "goes through by itself once it fits",
    "Build": "wait; the operator looks again when the state moves",
    "CreateBlocked": "fix what the message names; the operator retries, backing off",
    "Creating": "wait; the operator looks again when the state moves",
    "CreditsDepleted": "top up the account; instances whose `powerState` is `Running` are restored then",
    "CreditsLow": "top up before it runs out (then Barrack hibernates every instance)",
    "CreditsOk": "top up before it runs out (then Barrack hibernates every instance)",
    "Deleting": "wait; the operator looks again when the state moves",
    "DeletionBlocked": "resolve what the message names",
    "DetachBlocked": "as the message says",
    "Detached": "nothing (set `instanceRef` to attach it)",
    "Detaching": "wait; the operator looks again when the state moves",
    "Error": "delete the object (with `deletionPolicy: Delete` the resource goes too) and create it "
    "again, or ask Barrack support",
    "Hibernating": "wait; the operator looks again when the state moves",
    "InsufficientCredits": "top up the account; the operator retries, backing off",
    "InvalidSpec": "change the spec",
    "KubernetesUnavailable": "nothing; the operator retries",
    "LifetimeEnded": "extend it with the annotation `barrack.ai/extend-lifetime`, or delete the object",
    "NameTaken": "set `spec.name` to another name, or, when no object manages it, `spec.adoptId` to "
    "the id the message names",
    "NoCapacity": "wait: the operator reads Barrack's stock every fast poll while instances wait and "
    "creates it as soon as one fits (oldest first); or add alternatives, or raise "
    "`maxHourlyPrice`",
    "NoInstances": "label the instances, or fix the selector",
    "NotFound": 'annotate `barrack.ai/recreate="true"` for a new, empty one (the annotation is '
    "removed once it exists), or delete the object (it goes without a call)",
    "OperatorError": "report it; the operator retries, backing off",
    "OutOfStock": "wait: such an alternative is tried again once Barrack's stock changes (one create "
    "per change, never one per poll)",
    "PowerBlocked": "wait; the operator retries",
    "PreconditionFailed": "wait; the operator retries",
    "Progressing": "wait",
    "ProjectedOverBudget": "hibernate what is idle (a BarrackPowerSchedule, `spec.lifetime`), or "
    "raise `monthlyBudget`",
    "RateLimited": "nothing; the operator waits as told (or backs off from 1 s when Barrack does not say)",
    "Rebooting": "wait; the operator looks again when the state moves",
    "ReconcilePaused": "remove the annotation to resume (and apply)",
    "Reconciled": "nothing",
    "ReferenceNotReady": "wait, or create the object it names",
    "ResizeBlocked": "wait; the operator retries",
    "Resizing": "wait; the operator looks again when the state moves",
    "Restoring": "wait; the operator looks again when the state moves",
    "ScheduleConflict": "select each instance with one power schedule",
    "Scheduled": "nothing",
    "SecretConflict": "name another Secret, or delete that one if it is a leftover",
    "SnapshotBlocked": "set the instance's `powerState: Running`, or wait: it is taken once the "
    "instance is free",
    "Starting": "wait; the operator looks again when the state moves",
    "Stopping": "wait; the operator looks again when the state moves",
    "Suspended": "set `suspend: false` to resume; one run follows at once if a slot passed",
    "Unauthorized": "put a valid key in the operator's Secret; it is re-read, no restart",
    "UnknownState": "nothing at first: the operator looks again; report the word if it stays",
    "WithinBudget": "hibernate what is idle (a BarrackPowerSchedule, `spec.lifetime`), or raise "
    "`monthlyBudget`",
}


def main(doc: str) -> None:
    source = Path(__file__).read_text()
    table = "NEXT_STEPS: dict[str, str] = " + pprint.pformat(
        from_doc(Path(doc).read_text()), width=100, sort_dicts=True
    )
    start = source.index("NEXT_STEPS: dict[str, str] = ")
    end = source.index("\n\n\ndef main(")
    Path(__file__).write_text(source[:start] + table + source[end:])


if __name__ == "__main__":
    main(sys.argv[1])
