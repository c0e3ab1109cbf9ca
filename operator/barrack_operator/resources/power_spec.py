"""The BarrackPowerSchedule's spec and status models (with :mod:`specs` and :mod:`statuses`, the
one source of the CRD schemas)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import Field

from barrack_operator.resources.specs import LabelSelector, LocalRef, Model
from barrack_operator.resources.statuses import Condition

TIME_OF_DAY_PATTERN = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$"


class Day(StrEnum):
    MON = "Mon"
    TUE = "Tue"
    WED = "Wed"
    THU = "Thu"
    FRI = "Fri"
    SAT = "Sat"
    SUN = "Sun"


class PowerWindow(Model):
    days: list[Day] = Field(
        description="Weekdays the window starts on, e.g. [Mon, Tue, Wed, Thu, Fri].",
        min_length=1,
        max_length=7,
    )
    from_: str = Field(
        alias="from", description="Local start, HH:MM (00:00 to 23:59).", pattern=TIME_OF_DAY_PATTERN
    )
    to: str = Field(
        description="Local end, HH:MM; at or before from, the window runs past midnight; 24:00 ends at midnight.",
        pattern=TIME_OF_DAY_PATTERN,
    )


class BarrackPowerScheduleSpec(Model):
    instanceRef: LocalRef | None = Field(
        default=None, description="The BarrackInstance this schedule powers."
    )
    instanceSelector: LabelSelector | None = Field(
        default=None, description="The BarrackInstances of this namespace whose labels match."
    )
    windows: list[PowerWindow] = Field(
        description="On-hours: inside any of them the instance's own spec.powerState rules.",
        min_length=1,
        max_length=28,
    )
    timeZone: str = Field(
        default="UTC",
        description="IANA time zone of the windows, e.g. Europe/Berlin (daylight saving is followed).",
        max_length=64,
    )
    offState: Literal["Hibernated", "Stopped"] = Field(
        default="Hibernated",
        description="The state outside the windows: Hibernated (billed at a flat 0.01 an hour) or Stopped "
        "(billed in full, keeps the hardware).",
    )
    suspend: bool = Field(default=False, description="true: the schedule keeps nothing off.")


class BarrackPowerScheduleStatus(Model):
    state: str | None = Field(default=None, description="On (inside a window, or suspended) or Off.")
    nextChange: datetime | None = Field(default=None, description="When the state changes next (RFC 3339).")
    instances: list[str] = Field(
        default_factory=list, description="The BarrackInstances the schedule powers now."
    )
    observedGeneration: int | None = Field(default=None, description="Last metadata.generation handled.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready (the schedule is valid) and Synced (it powers every instance it selects); one per type.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
