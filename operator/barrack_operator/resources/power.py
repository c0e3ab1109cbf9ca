"""BarrackPowerSchedule: when its instances are on. Pure functions of the spec and the clock.

On-hours are weekly windows in a time zone (``{days: [Mon, Tue], from: "08:00", to: "19:00"}``,
several allowed; ``to`` at or before ``from`` runs past midnight into the next day; ``to:
"24:00"`` ends at midnight). Inside a window the instance's own ``spec.powerState`` rules;
outside, it is kept in ``offState``. Local times follow the zone's daylight saving: a window
from 08:00 starts at 08:00 on the wall clock on either side of a change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from barrack_operator.resources.power_spec import BarrackPowerScheduleSpec

DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
LOOKAHEAD_DAYS = 8


class InvalidPowerSchedule(ValueError):
    """The spec's windows or time zone cannot be read; the message names the field."""


@dataclass(frozen=True)
class Window:
    days: frozenset[int]
    """Weekdays the window starts on (0 is Monday)."""
    start: time
    length: timedelta


@dataclass(frozen=True)
class PowerPlan:
    on: bool
    """Inside a window (or suspended): the instance's own powerState rules."""
    next_change: datetime | None
    """When ``on`` flips next (UTC); None when it never does (suspended, or every hour is on)."""


def _clock(value: str, field: str) -> tuple[int, int]:
    hours, _, minutes = value.partition(":")
    if not (hours.isdigit() and minutes.isdigit()) or not (0 <= int(minutes) < 60 and 0 <= int(hours) <= 24):
        raise InvalidPowerSchedule(f"{field} {value!r} is not a time of day such as 08:00")
    if int(hours) == 24 and int(minutes) != 0:
        raise InvalidPowerSchedule(f"{field} {value!r}: 24:00 is the latest time of day")
    return int(hours), int(minutes)


def windows_of(spec: BarrackPowerScheduleSpec) -> tuple[ZoneInfo, list[Window]]:
    try:
        zone = ZoneInfo(spec.timeZone)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidPowerSchedule(
            f"spec.timeZone {spec.timeZone!r} is not an IANA time zone, e.g. Europe/Berlin"
        ) from None
    windows = []
    for i, window in enumerate(spec.windows):
        start_h, start_m = _clock(window.from_, f"spec.windows[{i}].from")
        end_h, end_m = _clock(window.to, f"spec.windows[{i}].to")
        if start_h == 24:
            raise InvalidPowerSchedule(f"spec.windows[{i}].from 24:00 is not a start: use 00:00")
        start, end = start_h * 60 + start_m, end_h * 60 + end_m
        minutes = end - start if end > start else end + 24 * 60 - start
        days = frozenset(DAYS.index(d) for d in window.days)
        windows.append(Window(days, time(start_h, start_m), timedelta(minutes=minutes)))
    return zone, windows


def _intervals(zone: ZoneInfo, windows: list[Window], around: datetime) -> list[tuple[datetime, datetime]]:
    """The windows' on-intervals (UTC) from a day before ``around`` to LOOKAHEAD_DAYS after it,
    each start and end taken on the local wall clock (so daylight saving moves them in UTC)."""
    local_day = around.astimezone(zone).date()
    found = []
    for offset in range(-1, LOOKAHEAD_DAYS):
        day = local_day + timedelta(days=offset)
        for window in windows:
            if day.weekday() not in window.days:
                continue
            start = _local(zone, day, window.start)
            end_wall = datetime.combine(day, window.start) + window.length
            end = _local(zone, end_wall.date(), end_wall.time())
            found.append((start, end))
    return sorted(found)


def _local(zone: ZoneInfo, day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=zone).astimezone(UTC)


def plan_power(spec: BarrackPowerScheduleSpec, now: datetime) -> PowerPlan:
    """Whether the instances are on now, and when that next changes."""
    if spec.suspend:
        return PowerPlan(True, None)
    zone, windows = windows_of(spec)
    intervals = _intervals(zone, windows, now)
    on = any(start <= now < end for start, end in intervals)
    horizon = now + timedelta(days=LOOKAHEAD_DAYS - 2)  # intervals are complete until then
    edges = sorted({t for interval in intervals for t in interval if now < t < horizon})
    for edge in edges:
        if any(start <= edge < end for start, end in intervals) != on:
            return PowerPlan(on, edge)
    return PowerPlan(on, None)


@dataclass(frozen=True)
class PowerOverride:
    """What a power schedule says of one instance now."""

    schedule: str
    off: bool
    off_state: str
    next_change: datetime | None

    def until(self) -> str:
        return (
            "for good"
            if self.next_change is None
            else f"until {self.next_change.strftime('%Y-%m-%dT%H:%M:%SZ')}"
        )


def effective_power(wanted: str | None, plan: PowerPlan | None, off_state: str) -> str | None:
    """The power state the instance is kept in: its own outside a schedule's off-hours."""
    if plan is None or plan.on:
        return wanted
    return off_state
