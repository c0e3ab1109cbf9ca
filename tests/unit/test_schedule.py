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
from barrack_operator.resources.schedule import (
    Cadence,
    Child,
    InvalidSchedule,
    Target,
    barrack_snapshot_name,
    beyond_keep,
    due_slot,
    matches,
    snapshot_manifest,
    snapshot_object_name,
)

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
