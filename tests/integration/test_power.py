"""Power schedules, end to end: outside its windows an instance is kept in the schedule's
offState and its spec is never written; inside, its own powerState rules again; a second schedule
over the same instance says it is not applied; an attach blocked by off-hours names the schedule.
(Whole weeks across a daylight-saving change are tests/unit/test_power.py: the decision is pure.)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from barrack_testkit.stack import wait_for
from tests.integration.conftest import Kube, Operator, Sim, instance, ssh_key, volume

pytestmark = pytest.mark.integration
EVERY_DAY = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def power_schedule(name: str, windows: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "barrack.ai/v1alpha1",
        "kind": "BarrackPowerSchedule",
        "metadata": {"name": name},
        "spec": {"windows": windows, "timeZone": "UTC", **spec},
    }


def _hhmm(moment: datetime) -> str:
    return moment.strftime("%H:%M")


def off_now() -> list[dict[str, Any]]:
    """A one-minute window twelve hours away: off-hours now."""
    at = datetime.now(UTC) + timedelta(hours=12)
    return [{"days": EVERY_DAY, "from": _hhmm(at), "to": _hhmm(at + timedelta(minutes=1))}]


def running_instance(kube: Kube, sim: Sim, labels: dict[str, str] | None = None) -> None:
    """An SSH key and a Ready BarrackInstance gpu (Running)."""
    kube.apply(ssh_key())
    manifest = instance("gpu", sim.image())
    manifest["metadata"]["labels"] = labels or {}
    kube.apply(manifest)
    kube.wait_condition("binst", "gpu", "Ready", "True", timeout=90)


def barrack_state(sim: Sim, name: str) -> str | None:
    return next((i["status"] for i in sim.inventory()["instances"] if i["name"] == name), None)


def test_off_hours_hibernate_the_instance_and_the_window_restores_it(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    running_instance(kube, sim, labels={"team": "ml"})
    start = datetime.now(UTC) + timedelta(minutes=1)
    start = start.replace(second=0, microsecond=0) + (
        timedelta(minutes=1) if start.second > 40 else timedelta()
    )
    window = [{"days": EVERY_DAY, "from": _hhmm(start), "to": _hhmm(start + timedelta(hours=2))}]
    kube.apply(power_schedule("office", window, instanceSelector={"matchLabels": {"team": "ml"}}))
    kube.wait_condition("bpow", "office", "Synced", "True", timeout=30)
    kube.wait_condition("binst", "gpu", "Ready", "True", timeout=90)  # Ready: as the schedule says
    status = kube.get("binst", "gpu")["status"]  # type: ignore[index]
    assert barrack_state(sim, "gpu") == "HIBERNATED"
    assert status["powerSchedule"]["name"] == "office" and status["powerSchedule"]["off"] is True
    assert status["powerSchedule"]["effectivePowerState"] == "Hibernated"
    assert kube.get("binst", "gpu")["spec"]["powerState"] == "Running", "the schedule never writes the spec"  # type: ignore[index]
    assert "true" in kube.run("get", "binst", "gpu").stdout.lower().split("\n")[1]  # SCHEDULED-OFF
    schedule = kube.get("bpow", "office")["status"]  # type: ignore[index]
    assert schedule["state"] == "Off" and schedule["instances"] == ["gpu"]
    assert schedule["nextChange"] == start.strftime("%Y-%m-%dT%H:%M:%SZ")

    # The window opens: the instance's own powerState (Running) rules again.
    wait_seconds = (start - datetime.now(UTC)).total_seconds() + 60
    kube.wait_condition("bpow", "office", "Ready", "True", timeout=5)
    wait_for(
        lambda: barrack_state(sim, "gpu") == "ACTIVE", wait_seconds, what="restored at the window's start"
    )
    wait_for(lambda: (kube.get("binst", "gpu") or {}).get("status", {}).get("powerSchedule", {}).get("off") is False,
             30, what="the instance's status says it is on by schedule")  # fmt: skip


def test_deleting_the_schedule_gives_the_instance_back_its_own_power_state(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    running_instance(kube, sim)
    kube.apply(power_schedule("nights", off_now(), instanceRef={"name": "gpu"}, offState="Stopped"))
    wait_for(lambda: barrack_state(sim, "gpu") == "SHUTOFF", 60, what="stopped off-hours")
    kube.run("delete", "bpow", "nights")
    wait_for(lambda: barrack_state(sim, "gpu") == "ACTIVE", 60, what="running again without the schedule")
    kube.wait_condition("binst", "gpu", "Ready", "True", timeout=60)
    assert not (kube.get("binst", "gpu") or {}).get("status", {}).get("powerSchedule")


def test_a_second_schedule_over_one_instance_says_so_and_is_not_applied(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    running_instance(kube, sim)
    always = [{"days": EVERY_DAY, "from": "00:00", "to": "24:00"}]
    kube.apply(power_schedule("first", always, instanceRef={"name": "gpu"}))
    kube.wait_condition("bpow", "first", "Synced", "True", timeout=30)
    kube.apply(power_schedule("second", off_now(), instanceRef={"name": "gpu"}))
    condition = kube.wait_condition(
        "bpow", "second", "Synced", "False", reason="ScheduleConflict", timeout=30
    )
    assert "gpu (by BarrackPowerSchedule first)" in condition["message"]
    kube.wait_condition("binst", "gpu", "Ready", "True", timeout=30)
    assert barrack_state(sim, "gpu") == "ACTIVE", "the second schedule's off-hours are not applied"
    assert kube.get("binst", "gpu")["status"]["powerSchedule"]["name"] == "first"  # type: ignore[index]


def test_an_attach_blocked_by_off_hours_names_the_schedule(kube: Kube, sim: Sim, operator: Operator) -> None:
    running_instance(kube, sim)
    kube.apply(power_schedule("nights", off_now(), instanceRef={"name": "gpu"}))
    wait_for(lambda: barrack_state(sim, "gpu") == "HIBERNATED", 60, what="hibernated off-hours")
    kube.apply(volume("data", instanceRef={"name": "gpu"}))
    condition = kube.wait_condition("bvol", "data", "Ready", "False", reason="AttachBlocked", timeout=60)
    assert "kept Hibernated by BarrackPowerSchedule nights until" in condition["message"]


def test_an_invalid_schedule_is_refused_or_reported(kube: Kube, operator: Operator) -> None:
    someday = power_schedule(
        "bad", [{"days": ["Someday"], "from": "08:00", "to": "19:00"}], instanceRef={"name": "x"}
    )
    bad = kube.run("apply", "-f", "-", check=False, input_text=yaml.safe_dump(someday))
    assert bad.returncode != 0 and "spec.windows[0].days[0]" in bad.stderr
    both = power_schedule(
        "both", off_now(), instanceRef={"name": "x"}, instanceSelector={"matchLabels": {"a": "b"}}
    )
    refused = kube.run("apply", "-f", "-", check=False, input_text=yaml.safe_dump(both))
    assert refused.returncode != 0 and "exactly one of instanceRef and instanceSelector" in refused.stderr
    kube.apply(power_schedule("zone", off_now(), instanceRef={"name": "x"}, timeZone="Mars/Olympus"))
    condition = kube.wait_condition("bpow", "zone", "Ready", "False", reason="InvalidSpec", timeout=30)
    assert "spec.timeZone 'Mars/Olympus' is not an IANA time zone" in condition["message"]


def test_a_restore_refused_at_the_windows_start_is_retried_with_the_reason_on_the_instance(
    kube: Kube, sim: Sim, operator: Operator
) -> None:
    running_instance(kube, sim)
    kube.apply(power_schedule("office", off_now(), instanceRef={"name": "gpu"}))
    wait_for(lambda: barrack_state(sim, "gpu") == "HIBERNATED", 60, what="hibernated off-hours")
    sim.admin(
        "stock", {"stock": [{"region": "US-1", "gpu_model": "A40", "available": 0}]}
    )  # others took them
    kube.apply(
        power_schedule(
            "office", [{"days": EVERY_DAY, "from": "00:00", "to": "24:00"}], instanceRef={"name": "gpu"}
        )
    )
    refused = kube.wait_condition("binst", "gpu", "Synced", "False", reason="PowerBlocked", timeout=60)
    assert "out of stock" in refused["message"] and "the operator tries again" in refused["message"]
    assert barrack_state(sim, "gpu") == "HIBERNATED"
    sim.admin("stock", {"stock": [{"region": "US-1", "gpu_model": "A40", "available": 1}]})
    wait_for(lambda: barrack_state(sim, "gpu") == "ACTIVE", 90, what="restored once GPUs are back")
    kube.wait_condition("binst", "gpu", "Ready", "True", timeout=60)
