"""Lifetimes, pure: counted from the object's creation, extended once per new annotation value,
warned about 70 minutes before the end, and ended; the engine deletes the object for a Delete."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import formatdate

from barrack_operator.barrack.clock import BarrackClock
from barrack_operator.resources import specs
from barrack_operator.resources.lifetime import (
    instance_lifetime,
    lifetime_of,
    parse_duration,
    report_lifetime,
)
from barrack_operator.resources.model import ObjectView, Outcome

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
CREATED = T0


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
    later = T0 + timedelta(hours=2)
    ended = lifetime_of("1h", CREATED, None, None, later)
    out = Outcome()
    report_lifetime(out, ended, "Delete", exists=True, now=later)
    assert out.delete_object and out.status["expiresAt"] == "2026-12-07T09:00:00Z"
    assert [e.reason for e in out.events] == ["LifetimeExpired"]
    stopped = Outcome()
    report_lifetime(stopped, ended, "Stop", exists=True, now=later)
    assert not stopped.delete_object and stopped.status["lifetime"]["expired"] is True
    never_made = Outcome()
    report_lifetime(never_made, ended, "Delete", exists=False, now=later)
    assert not never_made.delete_object, (
        "nothing to delete on Barrack: the object stays, LifetimeEnded says why"
    )


def test_a_lifetime_counts_on_barracks_clock_from_the_start_status_recorded() -> None:
    """Barrack's clock is a day ahead of this machine's: an object created now starts its lifetime
    a day ahead too (not expired at once), and once status recorded its start, that start holds
    whatever the clock's offset does after."""
    wall = T0.timestamp()
    clock = BarrackClock(wall=lambda: wall)
    clock.observe(formatdate(wall + 86_400, usegmt=True))
    obj = ObjectView(kind="BarrackInstance", namespace="ns", name="gpu", uid="u", generation=1, spec={}, status={},
                     created_at="2026-12-07T08:00:00Z")  # fmt: skip
    wanted = specs.Lifetime(duration="1h", action="Delete")
    first = instance_lifetime(wanted, obj, clock)
    assert first.started_at == T0 + timedelta(days=1, seconds=0.5) and not first.expired
    recorded = replace(obj, status={"lifetime": first.status("Delete")})
    clock.observe(formatdate(wall + 86_400 + 7_200, usegmt=True))  # the clock jumps two hours
    later = instance_lifetime(wanted, recorded, clock)
    assert later.started_at == T0 + timedelta(days=1) and later.expired
