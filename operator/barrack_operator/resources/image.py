"""BarrackImage: a custom image made from a SUCCESS snapshot, Ready once Barrack says AVAILABLE,
deleted on request. Once made, the image stands alone: deleting its snapshot does not touch it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from barrack_operator.barrack import models as wire
from barrack_operator.resources import specs, steps
from barrack_operator.resources.common import (
    Context,
    ObjectView,
    Outcome,
    id_key,
    ref_key,
)
from barrack_operator.resources.deletion import KindDeletion, plan_delete_image
from barrack_operator.resources.frame import KindReconciler, Unresolved

ImS, SS = wire.ImageState, wire.SnapshotState


@dataclass(frozen=True)
class SnapshotSource:
    """The snapshot the spec names: its id (None while its BarrackSnapshot has none or is not
    Ready) and why it cannot be used yet, if it cannot."""

    snapshot_id: str | None
    unready: str | None


async def resolve_snapshot(
    ctx: Context, obj: ObjectView, out: Outcome, ref: specs.LocalRef | None, snapshot_id: str | None
) -> SnapshotSource:
    """Resolve a snapshot named by reference or id to a SUCCESS snapshot's id, watching it; a
    BarrackImage's source and a restore's alike."""
    await ctx.inventory.listed_once("snapshots")
    if ref is not None:
        out.watch.add(ref_key("BarrackSnapshot", obj.namespace, ref.name))
        info = ctx.refs.get("BarrackSnapshot", obj.namespace, ref.name)
        if info is None or not info.id or not info.ready:
            return SnapshotSource(None, f"BarrackSnapshot {ref.name} is not Ready yet")
        snapshot_id = info.id
    assert snapshot_id is not None
    out.watch.add(id_key(snapshot_id))
    listing = ctx.inventory.snapshots
    snapshot = listing.items.get(snapshot_id)
    if snapshot is None:
        if not listing.ok:
            return SnapshotSource(None, "Barrack's snapshots are not listed yet")
        return SnapshotSource(None, f"Barrack lists no snapshot {snapshot_id} in this account")
    if snapshot.status != SS.SUCCESS:
        return SnapshotSource(
            None, f"snapshot {snapshot_id} is {snapshot.status}, and Barrack needs it SUCCESS"
        )
    return SnapshotSource(snapshot_id, None)


class ImageReconciler(KindReconciler[specs.BarrackImageSpec, wire.CustomImage, SnapshotSource]):
    what = "image"
    spec_model = specs.BarrackImageSpec
    states = ImS

    async def observe(
        self, ctx: Context, obj: ObjectView, spec: specs.BarrackImageSpec, out: Outcome
    ) -> SnapshotSource:
        return await resolve_snapshot(ctx, obj, out, spec.snapshotRef, spec.snapshotId)

    def fetch(self, ctx: Context) -> Callable[[str], Awaitable[wire.CustomImage]]:
        return ctx.client.get_image

    async def create(
        self, ctx: Context, obj: ObjectView, spec: specs.BarrackImageSpec, inputs: SnapshotSource
    ) -> wire.CustomImage:
        if inputs.snapshot_id is None:
            raise Unresolved(inputs.unready or "the snapshot is not known yet")
        return await ctx.client.create_image(inputs.snapshot_id, obj.barrack_name)

    def status(self, item: wire.CustomImage) -> dict[str, Any]:
        return {
            "id": item.id,
            "state": item.status,
            "sizeGB": item.size_gb,
            "region": item.region,
            "sourceSnapshotId": item.snapshot_id,
        }

    def plan(
        self, ctx: Context, spec: specs.BarrackImageSpec, item: wire.CustomImage, inputs: SnapshotSource
    ) -> steps.Step:
        return steps.Done(
            f"Image {item.id} is {item.status} in {item.region}: BarrackInstances of that region boot from it "
            "with customImageRef."
        )

    async def act(self, ctx: Context, item: wire.CustomImage, step: steps.Call, out: Outcome) -> None:
        raise AssertionError(f"an image has no {type(step).__name__} step")


reconcile = ImageReconciler().reconcile


DELETION = KindDeletion(
    what="image",
    listing="images",
    fetch=lambda ctx: ctx.client.get_image,
    plan=plan_delete_image,
    remove=lambda ctx: ctx.client.delete_image,
    status=lambda i: {"id": i.id, "state": i.status},
)
finalize = DELETION.finalize
