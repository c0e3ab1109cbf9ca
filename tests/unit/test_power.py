"""The power schedule's decisions, pure: on-hours as weekly windows in a time zone, followed
across a daylight-saving change, windows past midnight, and what state the instance is kept in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from barrack_operator.resources.power import InvalidPowerSchedule, effective_power, plan_power, windows_of
from barrack_operator.resources.power_spec import BarrackPowerScheduleSpec


def _spec(
    *windows: dict[str, object], zone: str = "Europe/Berlin", **fields: object
) -> BarrackPowerScheduleSpec:
    return BarrackPowerScheduleSpec.model_validate(
        {"instanceRef": {"name": "gpu"}, "windows": list(windows), "timeZone": zone, **fields}
    )


WORKDAYS = {"days": ["Mon", "Tue", "Wed", "Thu", "Fri"], "from": "08:00", "to": "19:00"}


def _walk(spec: BarrackPowerScheduleSpec, start: datetime, until: datetime) -> list[tuple[datetime, bool]]:
    """Every change from ``start`` on, as (moment, on after it), following next_change."""
    changes, now = [], start
    while True:
        plan = plan_power(spec, now)
        if plan.next_change is None or plan.next_change > until:
            return changes
        now = plan.next_change
        changes.append((now, plan_power(spec, now).on))


def test_a_working_week_across_the_spring_daylight_saving_change() -> None:
    # Europe/Berlin moves from CET (+1) to CEST (+2) on Sunday 28 March 2027.
    start, until = datetime(2027, 3, 22, 0, 0, tzinfo=UTC), datetime(2027, 3, 30, 23, 0, tzinfo=UTC)
    assert not plan_power(_spec(WORKDAYS), start).on
    changes = _walk(_spec(WORKDAYS), start, until)
    utc = lambda d, h: datetime(2027, 3, d, h, 0, tzinfo=UTC)  # noqa: E731
    cet = [(utc(d, 7), True) for d in range(22, 27)] + [(utc(d, 18), False) for d in range(22, 27)]
    cest = [(utc(d, 6), True) for d in (29, 30)] + [(utc(d, 17), False) for d in (29, 30)]
    assert changes == sorted(cet + cest), "08:00 and 19:00 on the wall clock, never at the weekend"


def test_the_autumn_change_keeps_the_wall_clock_too() -> None:
    # Back to CET on Sunday 31 October 2027.
    changes = _walk(
        _spec(WORKDAYS), datetime(2027, 10, 29, 12, tzinfo=UTC), datetime(2027, 11, 1, 23, tzinfo=UTC)
    )
    assert changes == [
        (datetime(2027, 10, 29, 17, tzinfo=UTC), False),  # Friday 19:00 CEST
        (datetime(2027, 11, 1, 7, tzinfo=UTC), True),  # Monday 08:00 CET
        (datetime(2027, 11, 1, 18, tzinfo=UTC), False),
    ]


@pytest.mark.parametrize(
    ("case", "window", "moment", "on", "next_change"),
    [
        ("a night shift runs past midnight", {"days": ["Fri"], "from": "22:00", "to": "06:00"},
         datetime(2027, 1, 9, 3, tzinfo=UTC), True, datetime(2027, 1, 9, 6, tzinfo=UTC)),  # Saturday 03:00
        ("it starts on the day named", {"days": ["Fri"], "from": "22:00", "to": "06:00"},
         datetime(2027, 1, 8, 3, tzinfo=UTC), False, datetime(2027, 1, 8, 22, tzinfo=UTC)),
        ("24:00 ends at midnight", {"days": ["Sat"], "from": "12:00", "to": "24:00"},
         datetime(2027, 1, 9, 23, 59, tzinfo=UTC), True, datetime(2027, 1, 10, 0, 0, tzinfo=UTC)),
        ("every hour of every day never changes", {"days": list(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")),
         "from": "00:00", "to": "24:00"}, datetime(2027, 1, 9, 3, tzinfo=UTC), True, None),
    ],
)  # fmt: skip
def test_windows(
    case: str, window: dict[str, object], moment: datetime, on: bool, next_change: datetime | None
) -> None:
    plan = plan_power(_spec(window, zone="UTC"), moment)
    assert (plan.on, plan.next_change) == (on, next_change), case


def test_overlapping_windows_join_and_suspend_keeps_nothing_off() -> None:
    spec = _spec(
        {"days": ["Mon"], "from": "08:00", "to": "12:00"},
        {"days": ["Mon"], "from": "11:00", "to": "14:00"},
        zone="UTC",
    )
    monday = datetime(2027, 1, 4, 9, tzinfo=UTC)
    assert plan_power(spec, monday).next_change == monday.replace(hour=14)
    suspended = _spec(WORKDAYS, suspend=True)
    assert plan_power(suspended, datetime(2027, 1, 9, tzinfo=UTC)).on


def test_what_the_instance_is_kept_in() -> None:
    off = plan_power(_spec(WORKDAYS), datetime(2027, 1, 9, 12, tzinfo=UTC))  # Saturday
    assert effective_power("Running", off, "Hibernated") == "Hibernated"
    on = plan_power(_spec(WORKDAYS), datetime(2027, 1, 8, 12, tzinfo=UTC))  # Friday noon
    assert effective_power("Stopped", on, "Hibernated") == "Stopped"  # inside: its own state
    assert effective_power("Running", None, "Hibernated") == "Running"


@pytest.mark.parametrize(
    ("zone", "window", "names"),
    [
        ("Mars/Olympus", WORKDAYS, "spec.timeZone"),
        ("UTC", {"days": ["Mon"], "from": "24:00", "to": "02:00"}, "spec.windows[0].from"),
    ],
)
def test_an_unreadable_schedule_names_the_field(zone: str, window: dict[str, object], names: str) -> None:
    with pytest.raises(InvalidPowerSchedule) as caught:
        windows_of(_spec(window, zone=zone))
    assert names in str(caught.value)


def test_a_window_a_minute_from_now_is_found() -> None:
    now = datetime(2027, 1, 6, 10, 0, 30, tzinfo=UTC)
    spec = _spec({"days": ["Wed"], "from": "10:01", "to": "10:02"}, zone="UTC")
    assert plan_power(spec, now).next_change == now.replace(minute=1, second=0)
    assert plan_power(spec, now + timedelta(minutes=1)).on
