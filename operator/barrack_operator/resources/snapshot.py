"""BarrackSnapshot: snapshot an instance under Barrack's rules, report it Ready once Barrack says
SUCCESS, and delete it on request.

Barrack's rules, checked before the create (Barrack stays the authority: its 409 maps the same
way): the instance is ACTIVE; one snapshot at a time per instance, so a second one waits its turn.
Once made, a snapshot stands alone: its instance may stop, go or be deleted and it stays Ready.
Deleting a snapshot while a restore from it runs is refused: DeletionBlocked until the restore
ends, then it goes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from barrack_operator.barrack import PreconditionFailed
from barrack_operator.barrack import models as wire
from barrack_operator.barrack import requests as rq
from barrack_operator.conditions import Reason
from barrack_operator.resources import specs, steps
from barrack_operator.resources.deletion import DELETIONS
from barrack_operator.resources.frame import KindReconciler, Unresolved
from barrack_operator.resources.guard import differences
from barrack_operator.resources.messages import instance_label
from barrack_operator.resources.model import Context, ObjectView, Outcome, id_key, ref_key

SS, IS = wire.SnapshotState, wire.InstanceState


@dataclass(frozen=True)
class SnapshotInputs:
    """The instance the spec names: its id (None while its BarrackInstance has none), how messages
    name it, the instance as Barrack lists it, and another snapshot of it being made."""

    instance_id: str | None
    label: str
    instance: wire.VMInstance | None
    in_progress: wire.Snapshot | None


def snapshot_blocked(inputs: SnapshotInputs) -> steps.Blocked | None:
    """Why the snapshot cannot be taken now, or None when it can (or the instance is not known yet:
    the create then waits for the reference)."""
    if inputs.instance_id is None:
        return None
    instance = inputs.instance
    if instance is None:
        return steps.Blocked(
            Reason.SNAPSHOT_BLOCKED,
            f"Barrack lists no instance {inputs.label} in this account: the snapshot is taken once it does; "
            "point instanceRef or instanceId at an instance of the account",
        )
    if instance.status != IS.ACTIVE:
        moving = wire.is_transitional(IS, instance.status)
        return steps.Blocked(
            Reason.SNAPSHOT_BLOCKED,
            f"instance {inputs.label} is {instance.status}; Barrack snapshots ACTIVE instances only: "
            + (
                "the snapshot is taken once it is ACTIVE"
                if moving
                else "set its powerState to Running; the snapshot is taken once it is ACTIVE"
            ),
        )
    if inputs.in_progress is not None:
        other = inputs.in_progress
        return steps.Blocked(
            Reason.SNAPSHOT_BLOCKED,
            f"instance {inputs.label} has snapshot {other.name} ({other.id}) being made, and Barrack makes one "
            "snapshot at a time per instance: this one is taken once that one is done",
        )
    return None


class SnapshotReconciler(KindReconciler[specs.BarrackSnapshotSpec, wire.Snapshot, SnapshotInputs]):
    what = "snapshot"
    spec_model = specs.BarrackSnapshotSpec
    states = SS

    async def observe(
        self, ctx: Context, obj: ObjectView, spec: specs.BarrackSnapshotSpec, out: Outcome
    ) -> SnapshotInputs:
        ref = spec.instanceRef
        if ref is not None:
            out.watch.add(ref_key("BarrackInstance", obj.namespace, ref.name))
            info = ctx.refs.get("BarrackInstance", obj.namespace, ref.name)
            instance_id = info.id if info is not None else None
        else:
            instance_id = spec.instanceId
        if instance_id is None:
            return SnapshotInputs(None, ref.name if ref else "", None, None)
        await ctx.inventory.listed_once("instances")
        out.watch.add(id_key(instance_id))
        instance = ctx.inventory.instances.items.get(instance_id)
        in_progress = next(
            (
                s
                for s in ctx.inventory.snapshots.items.values()
                if s.instance_id == instance_id and s.status == SS.CREATING and s.name != obj.barrack_name
            ),
            None,
        )
        if in_progress is not None:
            out.watch.add(id_key(in_progress.id))
        label = f"{ref.name} ({instance_id})" if ref else instance_label(instance_id, instance)
        return SnapshotInputs(instance_id, label, instance, in_progress)

    def before_create(
        self, ctx: Context, obj: ObjectView, spec: specs.BarrackSnapshotSpec, inputs: SnapshotInputs
    ) -> steps.Blocked | None:
        return snapshot_blocked(inputs)

    def fetch(self, ctx: Context) -> Callable[[str], Awaitable[wire.Snapshot]]:
        return ctx.client.get_snapshot

    async def create(
        self, ctx: Context, obj: ObjectView, spec: specs.BarrackSnapshotSpec, inputs: SnapshotInputs
    ) -> wire.Snapshot:
        if inputs.instance_id is None:
            raise Unresolved(f"BarrackInstance {inputs.label} has no Barrack id yet")
        return await ctx.client.create_snapshot(
            rq.CreateSnapshotRequest(
                name=obj.barrack_name, instance_id=inputs.instance_id, description=spec.description or None
            )
        )

    def refused(self, error: PreconditionFailed) -> steps.Blocked:
        return steps.Blocked(
            Reason.SNAPSHOT_BLOCKED,
            f"Barrack refused the snapshot for now: {error.message}; the operator tries again",
        )

    def mismatches(self, spec: specs.BarrackSnapshotSpec, item: wire.Snapshot) -> list[str]:
        if spec.instanceId is None or item.instance_id is None:
            return []
        return differences([("instanceId", spec.instanceId, item.instance_id)])

    def status(self, item: wire.Snapshot) -> dict[str, Any]:
        return {
            "id": item.id,
            "state": item.status,
            "sizeGB": item.size_gb,
            "region": item.region,
            "sourceInstanceId": item.instance_id,
        }

    def plan(
        self, ctx: Context, spec: specs.BarrackSnapshotSpec, item: wire.Snapshot, inputs: SnapshotInputs
    ) -> steps.Step:
        return steps.Done(
            f"Snapshot {item.id} is {item.status}: restore it into a new instance (restoreFrom) or make an "
            "image of it (BarrackImage)."
        )

    async def act(self, ctx: Context, item: wire.Snapshot, step: steps.Call, out: Outcome) -> None:
        raise AssertionError(f"a snapshot has no {type(step).__name__} step")


reconcile = SnapshotReconciler().reconcile


finalize = DELETIONS["BarrackSnapshot"].finalize
