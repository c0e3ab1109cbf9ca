"""Table tests of the snapshot's and the image's decisions, as the volume, instance and firewall
have theirs: when a snapshot may be taken (Barrack's rules before the create), what a snapshot a
BarrackImage or a restore names must be, and the state words each reports. Pure: no simulator."""

from __future__ import annotations

import pytest

from barrack_operator.barrack import models as m
from barrack_operator.conditions import Reason
from barrack_operator.resources import specs, steps
from barrack_operator.resources.frame import state_step
from barrack_operator.resources.image import ImageReconciler
from barrack_operator.resources.model import RefInfo
from barrack_operator.resources.snapshot import SnapshotInputs, SnapshotReconciler, snapshot_blocked
from barrack_operator.resources.sources import snapshot_source


def _instance(status: str) -> m.VMInstance:
    return m.VMInstance(id="BRK-1", name="gpu", status=status, region="US-1", gpu_model="H100", gpu_count=1)


def _snapshot(status: str, name: str = "other") -> m.Snapshot:
    return m.Snapshot(id="SNAP-9", name=name, instance_id="BRK-1", region="US-1", status=status)


SNAPSHOT_CASES = [
    ("the instance has no id yet: the create waits for the reference, not blocked", None, None, None, None),
    ("Barrack lists no such instance", "BRK-1", None, None, "Barrack lists no instance"),
    ("a stopped instance is never snapshotted: say how to start it", "BRK-1", _instance("SHUTOFF"), None,
     "set its powerState to Running"),
    ("an instance on its way waits to be ACTIVE", "BRK-1", _instance("STOPPING"), None,
     "the snapshot is taken once it is ACTIVE"),
    ("a hibernated instance must be woken", "BRK-1", _instance("HIBERNATED"), None, "set its powerState"),
    ("one snapshot at a time per instance", "BRK-1", _instance("ACTIVE"), _snapshot("CREATING"),
     "one snapshot at a time"),
    ("an ACTIVE instance with none under way is snapshotted", "BRK-1", _instance("ACTIVE"), None, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "instance_id", "instance", "in_progress", "blocked"),
    SNAPSHOT_CASES,
    ids=[c[0] for c in SNAPSHOT_CASES],
)
def test_snapshot_blocked(
    case: str,
    instance_id: str | None,
    instance: m.VMInstance | None,
    in_progress: m.Snapshot | None,
    blocked: str | None,
) -> None:
    got = snapshot_blocked(SnapshotInputs(instance_id, "gpu (BRK-1)", instance, in_progress))
    if blocked is None:
        assert got is None, case
    else:
        assert got is not None and got.reason == Reason.SNAPSHOT_BLOCKED, case
        assert blocked in got.message and "gpu (BRK-1)" in got.message, case


REF = specs.LocalRef(name="nightly")


def _info(ready: bool, barrack_id: str | None = "SNAP-9") -> RefInfo:
    return RefInfo(uid="u", id=barrack_id, ready=ready, state=None)


SOURCE_CASES = [
    ("a referenced snapshot not Ready waits for it", REF, _info(False), None, None, True,
     "BarrackSnapshot nightly is not Ready yet"),
    ("a referenced snapshot that does not exist waits for it", REF, None, None, None, True,
     "BarrackSnapshot nightly is not Ready yet"),
    ("Ready without an id is not Ready", REF, _info(True, None), None, None, True, "not Ready yet"),
    ("an id Barrack does not list, once listed", None, None, "SNAP-9", None, True,
     "Barrack lists no snapshot SNAP-9"),
    ("an id not listed yet says so, not 'gone'", None, None, "SNAP-9", None, False, "not listed yet"),
    ("a snapshot still CREATING is not a source", None, None, "SNAP-9", _snapshot("CREATING"), True,
     "is CREATING, and Barrack needs it SUCCESS"),
    ("a SUCCESS snapshot by id is the source", None, None, "SNAP-9", _snapshot("SUCCESS"), True, None),
    ("a Ready reference to a SUCCESS snapshot is the source", REF, _info(True), "SNAP-9", _snapshot("SUCCESS"),
     True, None),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "ref", "info", "snapshot_id", "snapshot", "listed", "unready"),
    SOURCE_CASES,
    ids=[c[0] for c in SOURCE_CASES],
)
def test_snapshot_source(
    case: str,
    ref: specs.LocalRef | None,
    info: RefInfo | None,
    snapshot_id: str | None,
    snapshot: m.Snapshot | None,
    listed: bool,
    unready: str | None,
) -> None:
    got = snapshot_source(ref, info, snapshot_id, snapshot, listed)
    if unready is None:
        assert got.snapshot_id == "SNAP-9" and got.unready is None, case
    else:
        assert got.snapshot_id is None and got.unready is not None and unready in got.unready, case


STATE_CASES = [
    ("a snapshot being made waits", "snapshot", "CREATING", m.SnapshotState, steps.Wait, "Creating"),
    ("a snapshot in ERROR is never Ready", "snapshot", "ERROR", m.SnapshotState, steps.Blocked, Reason.ERROR),
    ("a SUCCESS snapshot goes on to its plan", "snapshot", "SUCCESS", m.SnapshotState, type(None), None),
    ("an image being made waits", "image", "CREATING", m.ImageState, steps.Wait, "Creating"),
    ("an image in ERROR is never Ready", "image", "ERROR", m.ImageState, steps.Blocked, Reason.ERROR),
    ("an AVAILABLE image goes on to its plan", "image", "AVAILABLE", m.ImageState, type(None), None),
    ("a word nobody knows is UnknownState", "image", "MELTING", m.ImageState, steps.Blocked, Reason.UNKNOWN_STATE),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "what", "state", "states", "step_type", "reason"), STATE_CASES, ids=[c[0] for c in STATE_CASES]
)
def test_backup_states(
    case: str, what: str, state: str, states: type, step_type: type, reason: str | None
) -> None:
    step = state_step(what, "X-1", state, states)
    assert isinstance(step, step_type), case
    if reason is not None:
        assert step is not None and step.reason == reason, case  # type: ignore[union-attr]


def test_a_settled_snapshot_and_image_say_what_they_are_for() -> None:
    snap = SnapshotReconciler().plan(None, None, _snapshot("SUCCESS"), None)  # type: ignore[arg-type]
    assert isinstance(snap, steps.Done) and "restoreFrom" in snap.message and "BarrackImage" in snap.message
    image = m.CustomImage(id="IMG-1", name="base", snapshot_id="SNAP-9", region="EU-2", status="AVAILABLE")
    done = ImageReconciler().plan(None, None, image, None)  # type: ignore[arg-type]
    assert isinstance(done, steps.Done) and "in EU-2" in done.message and "customImageRef" in done.message
