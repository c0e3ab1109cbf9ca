"""The snapshot schedule's decisions, as pure functions: slots of @every and cron schedules in a
time zone, one run for many missed slots, names that fit Kubernetes and Barrack, label selectors,
and which snapshots retention lets go."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from barrack_operator.resources import specs
from barrack_operator.resources.model import Outcome
from barrack_operator.resources.schedule import (
    IDLE_RECHECK,
    Cadence,
    Child,
    InvalidSchedule,
    Observation,
    RunDone,
    RunPlan,
    Target,
    barrack_snapshot_name,
    beyond_keep,
    due_slot,
    invalid,
    matches,
    plan_run,
    report,
    snapshot_manifest,
    snapshot_object_name,
)
from barrack_operator.resources.times import stamp

T0 = datetime(2026, 12, 2, 16, 0, 7, tzinfo=UTC)


def test_every_counts_slots_from_the_schedules_creation() -> None:
    cadence = Cadence.parse("@every 1h30m", None, T0)
    assert cadence.next_after(T0) == T0 + timedelta(minutes=90)
    assert cadence.next_after(T0 + timedelta(minutes=90)) == T0 + timedelta(minutes=180)
    assert cadence.latest_until(T0 + timedelta(minutes=100)) == T0 + timedelta(minutes=90)


def test_cron_slots_follow_the_time_zone_across_daylight_saving() -> None:
    cadence = Cadence.parse("0 3 * * *", "Europe/Berlin", T0)
    assert cadence.next_after(T0) == datetime(2026, 12, 3, 2, 0, tzinfo=UTC)  # 03:00 CET
    summer = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    assert cadence.next_after(summer) == datetime(2026, 7, 2, 1, 0, tzinfo=UTC)  # 03:00 CEST
    assert cadence.latest_until(datetime(2026, 12, 3, 2, 0, tzinfo=UTC)) == datetime(
        2026, 12, 3, 2, 0, tzinfo=UTC
    )
    assert Cadence.parse("@daily", None, T0).next_after(T0) == datetime(2026, 12, 3, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("schedule", "zone", "names"),
    [
        ("@every 10 minutes", None, "@every"),
        ("@every 5s", None, "at least 10s"),
        ("@every", None, "@every"),
        ("0 3 * *", None, "spec.schedule"),
        ("61 * * * *", None, "spec.schedule"),
        ("0 3 * * * *", None, "spec.schedule"),
        ("0 3 * * *", "Mars/Olympus", "spec.timeZone"),
    ],
)
def test_a_schedule_that_cannot_be_read_names_the_field(schedule: str, zone: str | None, names: str) -> None:
    with pytest.raises(InvalidSchedule, match=names):
        Cadence.parse(schedule, zone, T0)


def test_missed_slots_run_once_at_the_latest() -> None:
    cadence = Cadence.parse("@every 10m", None, T0)
    assert due_slot(cadence, None, T0, T0 + timedelta(minutes=9)) is None
    assert due_slot(cadence, None, T0, T0 + timedelta(minutes=10)) == T0 + timedelta(minutes=10)
    last = T0 + timedelta(minutes=10)
    back = T0 + timedelta(hours=5, minutes=3)  # the operator was down for hours
    assert due_slot(cadence, last, T0, back) == T0 + timedelta(hours=5)
    assert due_slot(cadence, T0 + timedelta(hours=5), T0, back) is None  # and only once


@given(
    minutes=st.integers(min_value=1, max_value=24 * 60),
    down=st.integers(min_value=0, max_value=10_000),
)
def test_a_due_slot_is_never_in_the_future_nor_before_the_last_run(minutes: int, down: int) -> None:
    cadence = Cadence.parse(f"@every {minutes}m", None, T0)
    last = T0 + timedelta(minutes=minutes * 3)
    now = last + timedelta(minutes=down)
    slot = due_slot(cadence, last, T0, now)
    if slot is None:
        assert cadence.next_after(last) > now
    else:
        assert last < slot <= now and now - slot < timedelta(minutes=minutes)


def test_names_fit_kubernetes_and_barrack() -> None:
    slot = datetime(2026, 12, 2, 16, 20, 0, tzinfo=UTC)
    assert snapshot_object_name("nightly", "gpu-1", slot) == "nightly-gpu-1-20261202-162000"
    long = "a" * 200
    assert len(snapshot_object_name(long, long, slot)) <= 253
    for namespace, schedule, instance in (("ml", "nightly", "gpu-1"), ("ml", long, long)):
        name = barrack_snapshot_name(namespace, schedule, instance, slot)
        assert re.fullmatch(specs.RESOURCE_NAME_PATTERN, name), name
    # Two schedules of the same names in two namespaces make two Barrack names.
    assert barrack_snapshot_name("a", "s", "i", slot) != barrack_snapshot_name("b", "s", "i", slot)


def test_the_manifest_is_labelled_not_owned_and_uses_the_instances_account() -> None:
    """Backups outlive their schedule: labels say whose they are, no ownerReference lets the
    garbage collector take them with it."""
    schedule = {"metadata": {"name": "nightly", "namespace": "ml", "uid": "u-1"}}
    slot = datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    manifest = snapshot_manifest(schedule, Target("gpu-1", "team-a"), slot, "barrack.ai/v1alpha1")
    meta = manifest["metadata"]
    assert meta["labels"] == {
        "barrack.ai/schedule": "nightly",
        "barrack.ai/instance": "gpu-1",
        "barrack.ai/slot": "20261202T030000Z",
    }
    assert "ownerReferences" not in meta
    assert manifest["spec"]["instanceRef"] == {"name": "gpu-1"}
    assert manifest["spec"]["accountRef"] == {"name": "team-a"}
    specs.BarrackSnapshotSpec.model_validate(manifest["spec"])  # the CRD's model takes it


def test_label_selectors_mean_what_kubernetes_means() -> None:
    selector = specs.LabelSelector.model_validate(
        {
            "matchLabels": {"team": "ml"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["gpu", "big"]},
                {"key": "scratch", "operator": "DoesNotExist"},
            ],
        }
    )
    assert matches(selector, {"team": "ml", "tier": "gpu"})
    assert not matches(selector, {"team": "ml", "tier": "cpu"})
    assert not matches(selector, {"team": "ml", "tier": "gpu", "scratch": "yes"})
    assert not matches(selector, {"tier": "gpu"})
    assert matches(specs.LabelSelector(), {})  # empty selects everything, as in Kubernetes
    not_in = specs.LabelSelector.model_validate(
        {"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]}
    )
    assert matches(not_in, {}) and not matches(not_in, {"env": "prod"})


def _child(instance: str, slot: int, ready: bool = True, failed: bool = False) -> Child:
    return Child(f"{instance}-{slot}", instance, f"2026120{slot}T000000Z", ready, failed)


def test_retention_keeps_the_newest_ready_per_instance() -> None:
    children = [_child("a", n) for n in (1, 2, 3, 4)] + [_child("b", 1), _child("b", 2)]
    assert beyond_keep(children, 2) == ["a-1", "a-2"]
    # A newer one still being made keeps the older Ready ones until it is Ready itself.
    assert beyond_keep([_child("a", 1), _child("a", 2), _child("a", 3, ready=False)], 2) == []
    # Older failed or stuck ones go once keep newer ones are Ready.
    stuck = [_child("a", 1, ready=False, failed=True), _child("a", 2), _child("a", 3)]
    assert beyond_keep(stuck, 2) == ["a-1"]
    assert beyond_keep([_child("a", 1)], 1) == []


# plan_run and report: one pass over a schedule, as a table ------------------------------------------

EVERY_HOUR = Cadence.parse("@every 1h", None, T0)


def _spec(**fields: object) -> specs.BarrackSnapshotScheduleSpec:
    return specs.BarrackSnapshotScheduleSpec.model_validate(
        {"schedule": "@every 1h", "keep": 2, "instanceRef": {"name": "a"}, **fields}
    )


def _seen(minutes: int, last: int | None = None, **fields: object) -> Observation:
    return Observation(
        now=T0 + timedelta(minutes=minutes),
        created=T0,
        last=None if last is None else T0 + timedelta(minutes=last),
        last_successful=None,
        children=tuple(fields.pop("children", ())),  # type: ignore[arg-type]
        targets=tuple(fields.pop("targets", (Target("a"),))),  # type: ignore[arg-type]
        **fields,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("case", "spec", "seen", "slot", "create", "skipped", "prune"),
    [
        ("before the first slot", _spec(), _seen(30), None, [], [], []),
        ("at the first slot", _spec(), _seen(61), 60, ["a"], [], []),
        ("slot already run", _spec(), _seen(90, last=60), None, [], [], []),
        ("three missed slots run once", _spec(), _seen(200, last=60), 180, ["a"], [], []),
        ("suspended takes none", _spec(suspend=True), _seen(200), None, [], [], []),
        (
            "a pending snapshot skips its instance only",
            _spec(),
            _seen(61, targets=[Target("a"), Target("b")], children=[_child("a", 1, ready=False)]),
            60,
            ["b"],
            ["a (its snapshot a-1 is not Ready yet)"],
            [],
        ),
        (
            "a failed snapshot does not hold the next",
            _spec(),
            _seen(61, children=[_child("a", 1, ready=False, failed=True)]),
            60,
            ["a"],
            [],
            [],
        ),
        (
            "retention lets the oldest go once keep newer are Ready",
            _spec(),
            _seen(90, last=60, children=[_child("a", 1), _child("a", 2), _child("a", 3)]),
            None,
            [],
            [],
            ["a-1"],
        ),
        (
            "what was asked to go is not asked again",
            _spec(),
            _seen(
                90,
                last=60,
                children=[_child("a", 1), _child("a", 2), _child("a", 3)],
                deleting=frozenset({"a-1"}),
            ),
            None,
            [],
            [],
            [],
        ),
        (
            "retention runs while suspended",
            _spec(suspend=True),
            _seen(90, children=[_child("a", 1), _child("a", 2), _child("a", 3)]),
            None,
            [],
            [],
            ["a-1"],
        ),
        (
            "no targets: nothing to create",
            _spec(),
            _seen(61, targets=[], why_none="no match"),
            60,
            [],
            [],
            [],
        ),
    ],
)
def test_plan_run(
    case: str,
    spec: specs.BarrackSnapshotScheduleSpec,
    seen: Observation,
    slot: int | None,
    create: list[str],
    skipped: list[str],
    prune: list[str],
) -> None:
    plan = plan_run(spec, EVERY_HOUR, seen)
    assert plan.slot == (None if slot is None else T0 + timedelta(minutes=slot)), case
    assert [t.name for t in plan.create] == create, case
    assert plan.skipped == skipped, case
    assert plan.prune == prune, case


def _conditions(out: Outcome) -> dict[str, tuple[bool, str]]:
    return {c.type: (c.status, c.reason) for c in out.conditions}


def test_report_of_a_run_moves_the_last_slot_and_says_what_it_took() -> None:
    seen = _seen(61)
    plan = plan_run(_spec(), EVERY_HOUR, seen)
    out = report(_spec(), EVERY_HOUR, seen, plan, RunDone(created=["a-x"]), soon=7.0)
    assert out.status["lastScheduleTime"] == stamp(T0 + timedelta(minutes=60))
    assert out.status["nextScheduleTime"] == stamp(T0 + timedelta(minutes=120))
    assert out.status["instances"] == ["a"]
    assert _conditions(out) == {"Ready": (True, "Scheduled"), "Synced": (True, "Reconciled")}
    assert [e.reason for e in out.events] == ["ScheduledRun"] and "took a-x" in out.events[0].message
    assert out.requeue_after == 7.0  # a run was made: look again soon


def test_report_of_a_failed_run_keeps_the_slot_due_and_says_kubernetes_refused() -> None:
    seen = _seen(61)
    plan = plan_run(_spec(), EVERY_HOUR, seen)
    out = report(_spec(), EVERY_HOUR, seen, plan, RunDone(error="403 forbidden"), soon=7.0)
    assert out.status["lastScheduleTime"] is None  # the slot runs again
    assert _conditions(out)["Synced"] == (False, "KubernetesUnavailable")
    assert "403 forbidden" in out.conditions[-1].message


def test_report_without_targets_warns_and_an_idle_schedule_sleeps_until_its_next_slot() -> None:
    seen = _seen(61, targets=[], why_none="no BarrackInstance in ns matches spec.instanceSelector")
    plan = plan_run(_spec(), EVERY_HOUR, seen)
    out = report(_spec(), EVERY_HOUR, seen, plan, RunDone(), soon=7.0)
    assert _conditions(out)["Synced"] == (False, "NoInstances")
    assert any(e.type == "Warning" and e.reason == "NoInstances" for e in out.events)
    idle = _seen(118, last=60)
    quiet = report(_spec(), EVERY_HOUR, idle, plan_run(_spec(), EVERY_HOUR, idle), RunDone(), soon=7.0)
    assert quiet.requeue_after == pytest.approx(120)  # at the next slot, two minutes on
    far = _seen(70, last=60)
    distant = report(_spec(), EVERY_HOUR, far, plan_run(_spec(), EVERY_HOUR, far), RunDone(), soon=7.0)
    assert distant.requeue_after == IDLE_RECHECK  # 50 minutes on: a look every IDLE_RECHECK meanwhile
    suspended = report(_spec(suspend=True), EVERY_HOUR, idle, RunPlan(slot=None), RunDone(), soon=7.0)
    assert _conditions(suspended)["Ready"] == (True, "Suspended")
    assert suspended.status["nextScheduleTime"] is None


def test_an_unreadable_spec_is_invalid_naming_the_field_and_takes_nothing() -> None:
    with pytest.raises(InvalidSchedule) as caught:
        Cadence.parse("@every 5s", None, T0)
    out = invalid(caught.value)
    assert _conditions(out) == {"Synced": (False, "InvalidSpec"), "Ready": (False, "InvalidSpec")}
    assert "spec.schedule" in out.conditions[0].message and out.status == {"nextScheduleTime": None}
