"""docs/conditions.md documents every condition type and every reason the operator can write:
each member of ``Reason``, and each transitional Barrack state (its title is the reason)."""

from __future__ import annotations

from pathlib import Path

from barrack_operator.barrack import models as m
from barrack_operator.conditions import ATTACHED, READY, RECONCILING, STALLED, SYNCED, Reason

DOC = (Path(__file__).resolve().parents[2] / "docs" / "conditions.md").read_text()


def test_every_reason_in_the_code_is_documented() -> None:
    missing = [r.value for r in Reason if f"`{r.value}`" not in DOC]
    assert missing == [], f"reasons missing from docs/conditions.md: {missing}"


def test_every_transitional_state_reason_is_documented() -> None:
    states = [
        s for group in (m.InstanceState, m.VolumeState) for s in group if s.transitional and s != "DELETED"
    ]
    missing = [s.title() for s in states if f"`{s.title()}`" not in DOC]
    assert missing == [], f"transitional states missing from docs/conditions.md: {missing}"


def test_every_condition_type_is_documented() -> None:
    assert all(f"| `{t}` |" in DOC for t in (READY, SYNCED, ATTACHED, RECONCILING, STALLED))


def test_every_reason_is_named_by_a_test_that_reaches_it_end_to_end() -> None:
    """A reason no test produces is a promise nobody checks: each must be named (as the reason a
    test waits for or asserts) in an integration test, which reaches it end to end (the operator as
    a process, a real apiserver, the simulator over HTTP)."""
    integration = Path(__file__).resolve().parents[1] / "integration"
    texts = [p.read_text() for p in integration.rglob("*.py")]

    def named(reason: Reason) -> bool:
        forms = (f'"{reason.value}"', f"Reason.{reason.name}", f"reason={reason.value}")
        return any(form in text for text in texts for form in forms)

    unnamed = [r.value for r in Reason if not named(r)]
    assert unnamed == [], f"reasons in docs/conditions.md that no test reaches: {unnamed}"
