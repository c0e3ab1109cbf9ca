"""The guards around creates and deletes. A resource found by the object's Barrack name is taken
only when the object asked for a create before (in this process, or in a crashed one that left its
mark); any other is someone else's, neither taken nor deleted. The mark is written before the
create is sent. A deletion ends only when the resource is gone, not on any 404."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from barrack_operator.barrack import models as m
from barrack_operator.barrack import requests as rq
from barrack_operator.engine.references import Registry
from barrack_operator.inventory import Inventory
from barrack_operator.resources import volume
from barrack_operator.resources.common import failure_reason
from barrack_operator.resources.guard import AlreadyManaged, NameTaken, ensure_exists, find_for_deletion
from barrack_operator.resources.model import Context, MarkNotWritten, ObjectView
from barrack_operator.resources.ownership import released_without_call
from barrack_sim.app import Simulator
from tests.unit.conftest import SSH_PUBLIC_KEY, make_client

REQUEST = rq.CreateVolumeRequest(name="data", region="US-1", size_gb=100, volume_type="NVMe")


def view(mark: str | None = None, uid: str = "uid-1") -> ObjectView:
    spec = {"region": "US-1", "sizeGB": 100}
    return ObjectView("BarrackVolume", "ns", "data", uid, 1, spec, {}, create_requested_name=mark)


async def test_only_a_marked_object_takes_a_resource_of_its_name(sim: Simulator) -> None:
    async with make_client(sim) as client:
        theirs = await client.create_volume(REQUEST)
        ctx = Context(client=client, inventory=Inventory(client), refs=Registry())
        await ctx.inventory.poll_once()

        async def create() -> m.Volume:
            raise AssertionError("no create may be sent")

        with pytest.raises(NameTaken) as taken:
            await ensure_exists(ctx, view(), lambda: ctx.inventory.volumes, client.get_volume, create)
        reason, message = failure_reason(taken.value)
        assert reason == "NameTaken" and f"spec.adoptId: {theirs.id}" in message
        assert await find_for_deletion(ctx, view(), lambda: ctx.inventory.volumes, client.get_volume) is None

        marked = view(mark="data")
        found = await ensure_exists(ctx, marked, lambda: ctx.inventory.volumes, client.get_volume, create)
        assert (found.item.id, found.created) == (theirs.id, False)
        # A mark for another Barrack name (spec.name changed since) does not count.
        assert not view(mark="old-name").create_requested


async def test_the_mark_is_written_before_the_create_is_sent(sim: Simulator) -> None:
    async with make_client(sim) as client:
        order: list[str] = []

        async def mark(obj: ObjectView, spec_defaults: dict[str, Any]) -> None:
            order.append(f"mark {obj.barrack_name}")

        async def create() -> m.Volume:
            order.append("create")
            return await client.create_volume(REQUEST)

        ctx = Context(client=client, inventory=Inventory(client), refs=Registry(), mark_create=mark)
        await ctx.inventory.poll_once()
        found = await ensure_exists(ctx, view(), lambda: ctx.inventory.volumes, client.get_volume, create)
        assert found.created and order == ["mark data", "create"]
        # The same process looks again (it remembers the id): no second create.
        again = await ensure_exists(ctx, view(), lambda: ctx.inventory.volumes, client.get_volume, create)
        assert again.item.id == found.item.id and order == ["mark data", "create"]


async def test_a_failed_mark_sends_no_create(sim: Simulator) -> None:
    async with make_client(sim) as client:

        async def mark(obj: ObjectView, spec_defaults: dict[str, Any]) -> None:
            raise MarkNotWritten("could not mark the object before creating (the apiserver is away)")

        async def create() -> m.Volume:
            raise AssertionError("no create may be sent")

        ctx = Context(client=client, inventory=Inventory(client), refs=Registry(), mark_create=mark)
        await ctx.inventory.poll_once()
        with pytest.raises(MarkNotWritten):
            await ensure_exists(ctx, view(), lambda: ctx.inventory.volumes, client.get_volume, create)


async def test_a_404_for_the_attached_instance_does_not_end_a_volume_deletion(sim: Simulator) -> None:
    """Found by the soak: the volume's instance is deleted at the same time; the volumes listing
    still shows the volume attached while the instance is gone, so the detach answers 404. That
    404 is about the instance: the volume must still be deleted, not left billed on Barrack."""
    async with make_client(sim) as client:
        key = await client.create_ssh_key(rq.CreateSSHKeyRequest(name="k", public_key=SSH_PUBLIC_KEY))
        image = (await client.list_os_images("US-1"))[0].id
        deployment = rq.DeploymentRequest(
            name="vm", region="US-1", gpu_model="A40", gpu_count=1, image_id=image, ssh_key_ids=[key.id]
        )
        instance = await client.create_instance(deployment)
        data = await client.create_volume(REQUEST)
        advance(sim)
        await client.attach_volumes(instance.id, [data.id])
        advance(sim)
        ctx = Context(client=client, inventory=Inventory(client), refs=Registry())
        await ctx.inventory.poll_once()  # the volume is attached to the instance
        await client.delete_instance(instance.id)
        advance(sim)  # the instance is gone; Barrack detached the volume
        await ctx.inventory.poll_once(["instances"])  # the volumes listing is older than that

        obj = view()
        obj = ObjectView(obj.kind, obj.namespace, obj.name, obj.uid, 1, obj.spec, {"id": data.id})
        first = await volume.finalize(ctx, obj)
        assert not first.done and data.id in sim.account.volumes
        for _ in range(3):  # the next passes, with fresh listings, delete it
            await ctx.inventory.poll_once()
            if (await volume.finalize(ctx, obj)).done:
                break
            advance(sim)
        assert data.id not in sim.account.volumes


def advance(sim: Simulator) -> None:
    sim.account.clock.advance(60)
    sim.account.tick()


async def test_two_objects_adopting_one_id_at_once_take_it_once_and_the_other_owns_nothing(
    sim: Simulator,
) -> None:
    async with make_client(sim) as client:
        theirs = await client.create_volume(REQUEST)
        ctx = Context(client=client, inventory=Inventory(client), refs=Registry())
        await ctx.inventory.poll_once()

        async def create() -> m.Volume:
            raise AssertionError("an adoption creates nothing")

        def adopting(uid: str) -> ObjectView:
            spec = {"region": "US-1", "sizeGB": 100, "adoptId": theirs.id}
            return ObjectView("BarrackVolume", "ns", uid, uid, 1, spec, {})

        results = await asyncio.gather(
            *(ensure_exists(ctx, adopting(u), lambda: ctx.inventory.volumes, client.get_volume, create)
              for u in ("first", "second")),
            return_exceptions=True,
        )  # fmt: skip
        taken = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, AlreadyManaged)]
        assert len(taken) == 1 and len(refused) == 1, results
        loser = "second" if results[1] is refused[0] else "first"
        # The one refused owns nothing: its deletion finds nothing to delete.
        assert (
            await find_for_deletion(ctx, adopting(loser), lambda: ctx.inventory.volumes, client.get_volume)
            is None
        )
        assert released_without_call(adopting(loser), ctx.memory, ctx.refs) is not None
