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
