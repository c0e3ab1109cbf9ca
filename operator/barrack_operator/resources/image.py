"""BarrackImage: a custom image made from a SUCCESS snapshot, Ready once Barrack says AVAILABLE,
deleted on request. Once made, the image stands alone: deleting its snapshot does not touch it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from barrack_operator.barrack import models as wire
from barrack_operator.resources import specs, steps
from barrack_operator.resources.deletion import DELETIONS
from barrack_operator.resources.frame import KindReconciler, Unresolved
from barrack_operator.resources.model import Context, ObjectView, Outcome
from barrack_operator.resources.sources import SnapshotSource, resolve_snapshot

ImS, SS = wire.ImageState, wire.SnapshotState


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


finalize = DELETIONS["BarrackImage"].finalize
