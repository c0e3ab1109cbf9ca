"""An instance's lifetime (dstack's max duration, SkyPilot's autodown): counted from the object's
creation, extended by the annotation ``barrack.ai/extend-lifetime`` (each new value once), warned
about an hour and ten minutes before, and at its end the instance is hibernated, stopped or
deleted. Pure functions of the spec, the annotation, what status recorded and the clock."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from barrack_operator.barrack.clock import BarrackClock
from barrack_operator.conditions import Reason
from barrack_operator.resources import specs
from barrack_operator.resources.model import ObjectView, Outcome
from barrack_operator.resources.times import parse_time, stamp

EXTEND_ANNOTATION = "barrack.ai/extend-lifetime"
WARN_BEFORE = timedelta(hours=1, minutes=10)
DURATION_PATTERN = r"^([0-9]+h)?([0-9]+m)?$"
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?$")


def parse_duration(text: str) -> timedelta | None:
    """``8h``, ``90m``, ``1h30m``; None when it is not one (or is zero)."""
    match = _DURATION.match(text.strip())
    if not match or not any(match.groups()):
        return None
    hours, minutes = (int(g or 0) for g in match.groups())
    value = timedelta(hours=hours, minutes=minutes)
    return value if value > timedelta(0) else None


@dataclass(frozen=True)
class Lifetime:
    """Where an instance's lifetime stands."""

    started_at: datetime
    expires_at: datetime
    extended: timedelta
    """The extensions so far, added up."""
    last_extension: str | None
    """The annotation value the last extension came from (a new value extends once more)."""
    ending: bool
    """Within WARN_BEFORE of the end."""
    expired: bool
    problem: str | None = None
    """Why the annotation's value was not taken, if it was not."""

    def status(self, action: str) -> dict[str, object]:
        return {
            "startedAt": stamp(self.started_at),
            "expiresAt": stamp(self.expires_at),
            "extendedBy": _words(self.extended),
            "lastExtension": self.last_extension,
            "action": action,
            "expired": self.expired,
        }

    def next_moment(self, now: datetime) -> float | None:
        """Seconds until the warning or the end, whichever comes next; None once expired."""
        for moment in (self.expires_at - WARN_BEFORE, self.expires_at):
            if moment > now:
                return (moment - now).total_seconds() + 0.5
        return None


def lifetime_of(
    duration: str,
    started: datetime | None,
    annotation: str | None,
    recorded: dict[str, object] | None,
    now: datetime,
) -> Lifetime:
    """The lifetime from the spec's duration and its start (None: now), with the extensions status
    recorded and the annotation's value when it is new."""
    recorded = recorded or {}
    extended = parse_duration(str(recorded.get("extendedBy") or "")) or timedelta(0)
    last = recorded.get("lastExtension")
    problem = None
    if annotation and annotation != last:
        more = parse_duration(annotation)
        if more is None:
            problem = (
                f"annotation {EXTEND_ANNOTATION}: {annotation!r} is not a duration such as 2h or 90m; ignored"
            )
        else:
            extended, last = extended + more, annotation
    start = started or now
    expires = start + (parse_duration(duration) or timedelta(0)) + extended
    return Lifetime(
        started_at=start,
        expires_at=expires,
        extended=extended,
        last_extension=str(last) if last else None,
        ending=expires - WARN_BEFORE <= now < expires,
        expired=now >= expires,
        problem=problem,
    )


def _words(value: timedelta) -> str | None:
    if not value:
        return None
    minutes = int(value.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "")


LIFETIME_STATE = {"Hibernate": specs.PowerState.HIBERNATED.value, "Stop": specs.PowerState.STOPPED.value}


def instance_lifetime(wanted: specs.Lifetime, obj: ObjectView, clock: BarrackClock) -> Lifetime:
    """Where the object's spec.lifetime stands now on Barrack's clock, from what its status
    recorded. It started when status says (``startedAt``), else at the object's creation, on
    Barrack's clock as it reads now."""
    recorded = obj.status.get("lifetime") or {}
    created = parse_time(obj.created_at)
    started = parse_time(recorded.get("startedAt")) or (
        None if created is None else created + timedelta(seconds=clock.offset)
    )
    return lifetime_of(wanted.duration, started, obj.extend_lifetime, recorded, clock.now())


def report_lifetime(out: Outcome, lifetime: Lifetime, action: str, exists: bool, now: datetime) -> None:
    """status.expiresAt and status.lifetime, the warning before the end, the end itself (a Delete
    asks for this object's deletion), and a look again at the next moment that matters."""
    out.status["expiresAt"] = stamp(lifetime.expires_at)
    out.status["lifetime"] = lifetime.status(action)
    if lifetime.problem:
        out.warn(Reason.INVALID_SPEC, lifetime.problem)
    if lifetime.ending:
        out.warn(
            "LifetimeEnding",
            f"spec.lifetime ends at {stamp(lifetime.expires_at)}: the instance is then {LIFETIME_DONE[action]}; "
            f"to keep it longer, set the annotation {EXTEND_ANNOTATION}, e.g. 2h",
        )
    if lifetime.expired and exists:
        out.note(
            "LifetimeExpired", f"spec.lifetime ended at {stamp(lifetime.expires_at)}: {LIFETIME_DONE[action]}"
        )
        out.delete_object = action == "Delete"
    upcoming = lifetime.next_moment(now)
    if upcoming is not None:
        out.requeue_after = min(out.requeue_after or upcoming, upcoming)


LIFETIME_DONE = {"Hibernate": "hibernated", "Stop": "stopped", "Delete": "deleted (as deletionPolicy says)"}
