"""Business time on Barrack's clock, end to end (issue 33): the simulator's clock is pushed
through a working week that crosses a daylight-saving change, and the operator follows it from
the Date header of Barrack's replies. An instance under a Mon-Fri 08:00-19:00 Europe/Berlin
schedule is hibernated at each 19:00 and restored at each 08:00 local, never on the weekend, as
the simulator's own billing records show; the account's month to date equals what the simulator
billed, and what it saved equals the full-price hours avoided. A lifetime of one hour with
Delete ends on that clock: the instance goes after its volume detaches, leaving nothing."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from barrack_testkit.stack import wait_for
from tests.integration.conftest import OPERATOR_SETTINGS, Kube, Operator, Sim, instance, ssh_key, volume
from tests.integration.test_every_reason import _default_account
from tests.integration.test_power import barrack_state, power_schedule

pytestmark = pytest.mark.integration
BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri"]
HIBERNATED_HOURLY = 0.01
SETTLE = 2.0
"""Seconds given, after the operator has seen a moment, for a wrong power change to show."""


@pytest.fixture
def operator_settings(kube: Kube) -> dict[str, str]:
    return {**OPERATOR_SETTINGS, "LEADER_ELECTION_NAMESPACE": kube.namespace, "IDLE_POLL_INTERVAL": "1.5"}


def berlin(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    """A moment of March 2027 in Berlin (CET until the 28th at 02:00, CEST after)."""
    return datetime(2027, 3, day, hour, minute, second, tzinfo=BERLIN)


def sim_clock(sim: Sim) -> dict[str, Any]:
    return sim.admin("clock")  # type: ignore[no-any-return]


def go_to(sim: Sim, moment: datetime) -> None:
    now = datetime.fromisoformat(sim_clock(sim)["now"])
    assert moment >= now, f"the simulator's clock is at {now}, past {moment}"
    sim.admin("advance", {"seconds": (moment - now).total_seconds()})


def account_status(kube: Kube) -> dict[str, Any]:
    out = kube.plane.kubectl("get", "bacct", "default", "-o", "json", check=False)
    return (json.loads(out.stdout).get("status") or {}) if out.returncode == 0 else {}


def account_condition(kube: Kube, status: str, reason: str) -> dict[str, Any]:
    """The account's BudgetForecast condition once it reads ``status`` for ``reason``."""

    def found() -> dict[str, Any] | None:
        conditions = account_status(kube).get("conditions", [])
        return next((c for c in conditions if c["type"] == "BudgetForecast" and c["status"] == status
                     and c["reason"] == reason), None)  # fmt: skip

    return wait_for(found, 60, what=f"BudgetForecast={status} {reason}")  # type: ignore[no-any-return]


def account_warnings(kube: Kube) -> list[str]:
    """The reasons of the Warning events on BarrackAccount default (kept in namespace default)."""
    out = kube.plane.kubectl("get", "events", "-n", "default", "-o", "json", "--field-selector",
                             "involvedObject.kind=BarrackAccount,involvedObject.name=default,type=Warning")  # fmt: skip
    return [e["reason"] for e in json.loads(out.stdout)["items"]]


def operator_saw(kube: Kube, moment: datetime) -> None:
    """Wait until the operator has counted the account's month at ``moment`` or later on
    Barrack's clock (it has seen the simulator's clock there), and has the burn Barrack has."""

    def seen() -> bool:
        counted = (account_status(kube).get("month") or {}).get("countedAt")
        return counted is not None and datetime.fromisoformat(counted.replace("Z", "+00:00")) >= moment

    wait_for(seen, 60, what=f"the operator to see {moment.isoformat()}")


def burn_settled(kube: Kube, sim: Sim) -> None:
    """Wait until the account's status burns what the simulator bills per hour now."""
    wait_for(lambda: abs((account_status(kube).get("burnPerHour") or -1) - sim_clock(sim)["burn"]) < 1e-5, 60,
             what="the account's burn to match Barrack's")  # fmt: skip


def state_at(kube: Kube, sim: Sim, moment: datetime, state: str) -> None:
    """Move Barrack's clock to ``moment`` and wait for the instance to be in ``state`` there, the
    operator's burn following."""
    go_to(sim, moment)
    operator_saw(kube, moment)
    wait_for(lambda: barrack_state(sim, "gpu") == state, 60, what=f"gpu {state} at {moment.isoformat()}")
    burn_settled(kube, sim)


def still_at(kube: Kube, sim: Sim, moment: datetime, state: str) -> None:
    """Move Barrack's clock to ``moment``: once the operator has seen it, and a wrong change has
    had time to show, the instance is still in ``state``."""
    go_to(sim, moment)
    operator_saw(kube, moment)
    time.sleep(SETTLE)
    assert barrack_state(sim, "gpu") == state, f"gpu left {state} at {moment.isoformat()}"


def test_a_working_week_across_a_dst_change_on_barracks_clock(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    go_to(sim, berlin(22, 8, 5))  # Monday 22 March 2027, 08:05 CET
    kube.plane.kubectl("apply", "-f", "-", input_text=_default_account(kube, sim, monthlyBudget=100_000))
    try:
        kube.apply(ssh_key())
        kube.apply(instance("gpu", sim.image(), gpuCount=2))
        windows = [{"days": WEEKDAYS, "from": "08:00", "to": "19:00"}]
        kube.apply(power_schedule("office", windows, timeZone="Europe/Berlin", instanceRef={"name": "gpu"}))
        kube.wait_condition("binst", "gpu", "Ready", "True", timeout=90)
        burn_settled(kube, sim)
        forecast = account_condition(kube, "True", "WithinBudget")
        assert "monthlyBudget 100000.00" in forecast["message"]

        for day in (22, 23, 24, 25, 26):  # Monday to Friday, CET
            if day != 22:
                still_at(kube, sim, berlin(day, 7, 59), "HIBERNATED")
                state_at(kube, sim, berlin(day, 8, 0, 30), "ACTIVE")
            still_at(kube, sim, berlin(day, 18, 59), "ACTIVE")
            state_at(kube, sim, berlin(day, 19, 0, 30), "HIBERNATED")
        for moment in (berlin(27, 8, 0, 30), berlin(27, 12), berlin(28, 8, 0, 30), berlin(28, 12)):
            still_at(kube, sim, moment, "HIBERNATED")  # the weekend; clocks go forward on the 28th
        still_at(kube, sim, berlin(29, 7, 59), "HIBERNATED")  # Monday 29th, CEST: 05:59 UTC
        state_at(kube, sim, berlin(29, 8, 0, 30), "ACTIVE")
        state_at(kube, sim, berlin(29, 19, 0, 30), "HIBERNATED")

        gpu = next(i for i in sim.inventory()["instances"] if i["name"] == "gpu")
        records = [r for r in sim_clock(sim)["records"] if r["id"] == gpu["id"]]
        running = [r for r in records if r["status"] in ("active", "completed")]
        starts = [datetime.fromisoformat(r["start"]).astimezone(BERLIN) for r in running]
        ends = [datetime.fromisoformat(r["end"]).astimezone(BERLIN) for r in running]
        assert [s.day for s in starts] == [22, 23, 24, 25, 26, 29], (
            "billed in full on each weekday, never else"
        )
        for start, end in zip(starts[1:], ends[1:], strict=True):
            assert (start.hour, start.minute) == (8, 0), f"restored at {start}, not at 08:00 local: {records}"
            assert (end.hour, end.minute) == (19, 0), f"hibernated at {end}, not at 19:00 local"
        assert starts[-1].utcoffset() == timedelta(hours=2) and starts[0].utcoffset() == timedelta(hours=1)

        go_to(sim, berlin(29, 19, 5))
        operator_saw(kube, berlin(29, 19, 5))
        status, billed = account_status(kube), sim_clock(sim)["billed"]
        print(
            f"month to date {status['monthToDate']} against {billed:.4f} billed; saved {status['savedThisMonth']}"
        )
        assert status["monthToDate"] == pytest.approx(billed, rel=0.005, abs=0.05), (status, billed)
        full_hourly = running[0]["hourly"]
        hibernated_hours = sum(r["minutes"] for r in records if r["status"] == "hibernated") / 60
        saved = hibernated_hours * (full_hourly - HIBERNATED_HOURLY)
        print(f"saved {status['savedThisMonth']} against {saved:.4f} ({hibernated_hours:.2f} h hibernated)")
        assert status["savedThisMonth"] == pytest.approx(saved, rel=0.005, abs=0.05), (status, saved)
        assert status["month"]["month"] == "2027-03"
        hours_left = (datetime(2027, 4, 1, tzinfo=ZoneInfo("UTC")) - berlin(29, 19, 5)).total_seconds() / 3600
        projected = status["monthToDate"] + status["burnPerHour"] * hours_left
        assert status["projectedMonthEnd"] == pytest.approx(projected, rel=0.01)

        kube.plane.kubectl(
            "patch", "bacct", "default", "--type=merge", "-p", '{"spec": {"monthlyBudget": 1}}'
        )
        over = account_condition(kube, "False", "ProjectedOverBudget")
        assert "monthlyBudget 1.00" in over["message"]
        wait_for(lambda: "ProjectedOverBudget" in account_warnings(kube), 30, what="the Warning event")
    finally:
        kube.plane.kubectl("delete", "barrackaccount", "default", "--ignore-not-found")


def operator_saw_instance(kube: Kube, sim: Sim, moment: datetime) -> None:
    """Wait until a pass of BarrackInstance short ran at ``moment`` or later on Barrack's clock:
    the operator has seen the clock there (a reconcile request is answered by a pass)."""
    kube.run(
        "annotate", "--overwrite", "binst", "short", f"barrack.ai/reconcile-requested-at={moment.timestamp()}"
    )
    wait_for(lambda: (kube.get("binst", "short") or {}).get("status", {}).get("lastHandledReconcileAt")
             == str(moment.timestamp()), 30, what="a pass after the clock moved")  # fmt: skip


def test_a_one_hour_lifetime_ends_on_barracks_clock_and_leaves_nothing(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    go_to(sim, berlin(22, 9))  # months ahead of this machine's clock
    kube.apply(ssh_key())
    kube.apply(instance("short", sim.image(), lifetime={"duration": "1h", "action": "Delete"}))
    kube.apply(volume("data", instanceRef={"name": "short"}))
    kube.wait_condition("binst", "short", "Ready", "True", timeout=90)
    kube.wait_condition("bvol", "data", "Attached", "True", timeout=60)
    lifetime = kube.get("binst", "short")["status"]["lifetime"]  # type: ignore[index]
    started = datetime.fromisoformat(lifetime["startedAt"].replace("Z", "+00:00"))
    assert berlin(22, 9) - timedelta(seconds=5) <= started <= berlin(22, 9, 2), "counted on Barrack's clock"
    assert lifetime["expiresAt"] == (started + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    # An hour is inside the warning's lead (an hour and ten minutes): it is warned of at once.
    wait_for(lambda: any(e["reason"] == "LifetimeEnding" and e["type"] == "Warning" for e in kube.events("short")),
             30, what="the warning before the end")  # fmt: skip
    go_to(sim, started + timedelta(minutes=59))
    operator_saw_instance(kube, sim, started + timedelta(minutes=59))
    assert kube.get("binst", "short") is not None and barrack_state(sim, "short") == "ACTIVE", (
        "not before its end"
    )

    go_to(sim, started + timedelta(hours=1, seconds=30))
    wait_for(
        lambda: kube.get("binst", "short") is None, 90, what="the object deleted at the end of its lifetime"
    )
    assert barrack_state(sim, "short") is None, "its instance went with it"
    kube.wait_condition("bvol", "data", "Attached", "False", timeout=60)
    assert next(v for v in sim.inventory()["volumes"] if v["name"] == "data")["status"] == "AVAILABLE"
    kube.run("delete", "bvol", "data")
    inventory = sim.inventory()
    assert inventory["instances"] == [] and inventory["volumes"] == [], "nothing is left on Barrack"
