"""An account's month in money (:mod:`barrack_operator.month`) and Barrack's clock
(:mod:`barrack_operator.barrack.clock`), on fixed moments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import formatdate

import pytest

from barrack_operator.barrack.clock import BarrackClock
from barrack_operator.month import Month, forecast, month_end

T0 = datetime(2027, 3, 22, 6, 0, tzinfo=UTC)


def test_a_month_accrues_the_burn_and_the_saving_between_counts() -> None:
    month = Month.start(T0)
    month = month.count(T0 + timedelta(hours=2), burn=3.0, saving=1.5)
    month = month.count(T0 + timedelta(hours=3), burn=0.5, saving=0.0)
    assert month.to_date == pytest.approx(6.5) and month.saved == pytest.approx(3.0)
    assert month.count(T0, burn=100.0, saving=100.0) == month, "a count before the last changes nothing"


def test_a_count_across_the_month_end_closes_the_month_and_starts_the_next() -> None:
    late = datetime(2027, 3, 31, 22, 0, tzinfo=UTC)
    month = Month.start(late).count(datetime(2027, 4, 1, 1, 0, tzinfo=UTC), burn=2.0, saving=1.0)
    assert (
        month.month == "2027-04" and month.to_date == pytest.approx(2.0) and month.saved == pytest.approx(1.0)
    )
    assert month.last == {"month": "2027-03", "total": 4.0, "saved": 2.0}
    december = Month.start(datetime(2027, 12, 31, 23, 0, tzinfo=UTC))
    assert december.count(datetime(2028, 1, 1, 0, 30, tzinfo=UTC), 1.0, 0.0).month == "2028-01"
    assert month_end(datetime(2027, 12, 5, tzinfo=UTC)) == datetime(2028, 1, 1, tzinfo=UTC)


def test_the_projection_is_the_month_so_far_plus_the_burn_over_the_hours_left() -> None:
    month = Month.start(datetime(2027, 3, 31, 0, 0, tzinfo=UTC)).count(
        datetime(2027, 3, 31, 12, 0, tzinfo=UTC), burn=1.0, saving=0.0
    )
    assert month.projected_end(burn=2.0) == pytest.approx(12.0 + 2.0 * 12)


def test_a_month_goes_on_from_what_status_recorded_and_starts_anew_without_it() -> None:
    recorded = {
        "monthToDate": 10.0,
        "savedThisMonth": 4.0,
        "month": {"month": "2027-03", "countedAt": "2027-03-22T06:00:00Z"},
    }
    month = Month.from_status(recorded, T0 + timedelta(hours=1)).count(T0 + timedelta(hours=1), 2.0, 1.0)
    assert month.to_date == pytest.approx(12.0) and month.saved == pytest.approx(5.0)
    fresh = Month.from_status({}, T0)
    assert (fresh.to_date, fresh.saved, fresh.counted_at) == (0.0, 0.0, T0)
    status = month.status(burn=2.0, budget=50.0)
    assert status["monthToDate"] == 12.0 and status["monthlyBudget"] == 50.0
    assert status["month"] == {"month": "2027-03", "countedAt": "2027-03-22T07:00:00Z"}


def test_the_forecast_passes_and_fails_the_budget_with_its_figures() -> None:
    month = Month(month="2027-03", to_date=100.0, saved=0.0, counted_at=datetime(2027, 3, 31, 14, tzinfo=UTC))
    assert forecast(month, burn=1.0, budget=None, currency="USD") is None
    fits = forecast(month, burn=1.0, budget=200.0, currency="USD")
    assert fits is not None and fits.status and fits.reason == "WithinBudget" and "110.00" in fits.message
    over = forecast(month, burn=10.0, budget=150.0, currency="USD")
    assert over is not None and not over.status and over.reason == "ProjectedOverBudget"
    assert "200.00" in over.message and "monthlyBudget 150.00" in over.message


def test_barracks_clock_follows_the_date_header_and_tells_of_a_jump() -> None:
    wall = [1_800_000_000.0]
    clock = BarrackClock(wall=lambda: wall[0])
    jumps: list[float] = []
    clock.listen(jumps.append)
    assert clock.now() == datetime.fromtimestamp(wall[0], UTC), "before any reply: this machine's clock"
    clock.observe(formatdate(wall[0] + 1, usegmt=True))  # a second off: the header's rounding, kept
    assert clock.offset == 0.0 and jumps == []
    clock.observe(formatdate(wall[0] + 10, usegmt=True))  # skew: followed, not a jump
    assert clock.offset == pytest.approx(10.5) and jumps == []
    clock.observe(formatdate(wall[0] + 86_400, usegmt=True))
    assert clock.now() - datetime.fromtimestamp(wall[0], UTC) == timedelta(seconds=86_400.5)
    assert jumps == [pytest.approx(86_400 - 10)]
    clock.observe(None)
    clock.observe("not a date")
    assert clock.offset == pytest.approx(86_400.5)
