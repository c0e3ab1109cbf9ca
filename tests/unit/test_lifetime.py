"""Lifetimes, pure: counted from the object's creation, extended once per new annotation value,
warned about 70 minutes before the end, and ended; the engine deletes the object for a Delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from barrack_operator.resources.lifetime import lifetime_of, parse_duration, report_lifetime
from barrack_operator.resources.model import Outcome

CREATED = "2026-12-07T08:00:00Z"
T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def test_durations() -> None:
    assert parse_duration("8h") == timedelta(hours=8)
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration("0m") is None and parse_duration("2 hours") is None and parse_duration("") is None


def test_a_lifetime_counts_from_creation_and_warns_seventy_minutes_before() -> None:
    early = lifetime_of("8h", CREATED, None, None, T0 + timedelta(hours=6))
    assert early.expires_at == T0 + timedelta(hours=8) and not early.ending and not early.expired
    warned = lifetime_of("8h", CREATED, None, None, T0 + timedelta(hours=6, minutes=51))
    assert warned.ending and not warned.expired
    over = lifetime_of("8h", CREATED, None, None, T0 + timedelta(hours=8))
    assert over.expired and not over.ending


def test_each_new_annotation_value_extends_once() -> None:
    now = T0 + timedelta(hours=1)
    first = lifetime_of("8h", CREATED, "2h", None, now)
    assert first.expires_at == T0 + timedelta(hours=10) and first.last_extension == "2h"
    recorded = first.status("Stop")
    again = lifetime_of("8h", CREATED, "2h", recorded, now)  # the same value: no second extension
    assert again.expires_at == first.expires_at
    more = lifetime_of("8h", CREATED, "30m", recorded, now)
    assert (
        more.expires_at == T0 + timedelta(hours=10, minutes=30)
        and more.status("Stop")["extendedBy"] == "2h30m"
    )
    bad = lifetime_of("8h", CREATED, "soon", recorded, now)
    assert bad.expires_at == first.expires_at and bad.problem is not None and "'soon'" in bad.problem


def test_the_report_of_an_ended_delete_asks_for_the_objects_deletion() -> None:
    ended = lifetime_of("1h", CREATED, None, None, T0 + timedelta(hours=2))
    out = Outcome()
    report_lifetime(out, ended, "Delete", exists=True)
    assert out.delete_object and out.status["expiresAt"] == "2026-12-07T09:00:00Z"
    assert [e.reason for e in out.events] == ["LifetimeExpired"]
    stopped = Outcome()
    report_lifetime(stopped, ended, "Stop", exists=True)
    assert not stopped.delete_object and stopped.status["lifetime"]["expired"] is True
    never_made = Outcome()
    report_lifetime(never_made, ended, "Delete", exists=False)
    assert not never_made.delete_object, (
        "nothing to delete on Barrack: the object stays, LifetimeEnded says why"
    )
