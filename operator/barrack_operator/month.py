"""An account's calendar month in money, kopf-free and pure: what it accrued so far, where it ends
at the burn now, and what schedules and lifetimes saved.

The month is counted on Barrack's clock, UTC calendar months. Between two counts the account is
taken to have burnt (and saved) at the rates of the first: the operator counts before each change
of burn it sees (a listing, a power change, a jump of Barrack's clock), so the figure follows
Barrack's per-minute billing to within the seconds it takes a change to be listed. A count that
crosses into a new month puts each side in its own month. The figures are kept in the
BarrackAccount's status, so a restart goes on from them (the time it was down counted at the burn
it first sees)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from barrack_operator.conditions import BUDGET_FORECAST, Condition, Reason
from barrack_operator.resources.times import parse_time, stamp


def month_of(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m")


def month_end(at: datetime) -> datetime:
    """The first instant of the month after ``at``'s (UTC)."""
    at = at.astimezone(UTC)
    year, month = (at.year + 1, 1) if at.month == 12 else (at.year, at.month + 1)
    return datetime(year, month, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Month:
    month: str
    """``YYYY-MM``."""
    to_date: float
    """Accrued so far this month."""
    saved: float
    """What schedules and lifetimes avoided so far this month."""
    counted_at: datetime
    last: dict[str, Any] | None = None
    """The month before, as it closed: ``{month, total, saved}``."""

    @classmethod
    def start(cls, now: datetime) -> Month:
        return cls(month_of(now), 0.0, 0.0, now)

    @classmethod
    def from_status(cls, status: dict[str, Any], now: datetime) -> Month:
        """The month as a BarrackAccount's status recorded it; a new one when it recorded none."""
        recorded = status.get("month") or {}
        counted = parse_time(recorded.get("countedAt"))
        if counted is None or not recorded.get("month"):
            return cls.start(now)
        return cls(
            str(recorded["month"]),
            float(status.get("monthToDate") or 0.0),
            float(status.get("savedThisMonth") or 0.0),
            counted,
            status.get("lastMonth"),
        )

    def count(self, now: datetime, burn: float, saving: float) -> Month:
        """Counted up to ``now`` at ``burn`` and ``saving`` per hour since the last count (a clock
        read earlier than the last count changes nothing)."""
        if now <= self.counted_at:
            return self
        boundary = month_end(self.counted_at)
        if now < boundary:
            return self._add(now, burn, saving)
        closed = self._add(boundary, burn, saving)
        last = {"month": closed.month, "total": round(closed.to_date, 4), "saved": round(closed.saved, 4)}
        return Month(month_of(boundary), 0.0, 0.0, boundary, last).count(now, burn, saving)

    def _add(self, until: datetime, burn: float, saving: float) -> Month:
        hours = (until - self.counted_at).total_seconds() / 3600
        return replace(
            self, to_date=self.to_date + burn * hours, saved=self.saved + saving * hours, counted_at=until
        )

    def projected_end(self, burn: float) -> float:
        """Accrued so far plus the burn now over the hours left in the month."""
        hours_left = (month_end(self.counted_at) - self.counted_at).total_seconds() / 3600
        return self.to_date + burn * hours_left

    def status(self, burn: float, budget: float | None) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "monthToDate": round(self.to_date, 4),
            "projectedMonthEnd": round(self.projected_end(burn), 4),
            "savedThisMonth": round(self.saved, 4),
            "month": {"month": self.month, "countedAt": stamp(self.counted_at)},
        }
        if self.last is not None:
            fields["lastMonth"] = self.last
        if budget is not None:
            fields["monthlyBudget"] = budget
        return fields


def forecast(month: Month, burn: float, budget: float | None, currency: str) -> Condition | None:
    """BudgetForecast: whether the month's projection fits ``budget`` (None without one)."""
    if budget is None:
        return None
    projected = month.projected_end(burn)
    figures = (
        f"{month.to_date:.2f} {currency} so far this month and {burn:.2f}/h now project {projected:.2f} by "
        f"its end, against monthlyBudget {budget:.2f}"
    )
    if projected > budget:
        return Condition(
            BUDGET_FORECAST,
            False,
            Reason.PROJECTED_OVER_BUDGET,
            f"{figures}: hibernate what is idle (a BarrackPowerSchedule, spec.lifetime), or raise monthlyBudget",
        )
    return Condition(BUDGET_FORECAST, True, Reason.WITHIN_BUDGET, figures)
