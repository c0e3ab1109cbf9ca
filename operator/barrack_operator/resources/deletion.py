"""Deletion, planned like every pass: observe, a pure plan, one act, the conditions from the step.

    observe   the resource this object owns (``find_for_deletion``: by its recorded id, or by name
              for a create whose reply was lost; never by an adoptId alone) and what the kind's
              rule reads (a volume's instance, and the BarrackInstance that manages it)
    plan      ``plan_delete_<kind>(resource, ...) -> Step``: Done (nothing on Barrack is left),
              Wait (a transition to wait out), Blocked (a precondition; DeletionBlocked), or a
              call (Detach, Detach every instance, Delete)
    act       at most the plan's calls; a 409 maps to DeletionBlocked (``finalize_guarded``)

A kind's deletion is a :class:`KindDeletion`: its observation, plan and the route that deletes.
Resources Barrack deletes through a transition (volumes, instances, snapshots, images) are done
once Barrack no longer has them; firewalls and SSH keys go at the reply.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic

from barrack_operator.barrack import models as wire
from barrack_operator.conditions import Reason
from barrack_operator.listings import T
from barrack_operator.resources import steps
from barrack_operator.resources.common import blocked, finalize_guarded, progressing, waiting_on_state
from barrack_operator.resources.guard import find_for_deletion
from barrack_operator.resources.messages import detach_blocked_reason, instance_label
from barrack_operator.resources.model import Context, ObjectView, Outcome

VS, IS = wire.VolumeState, wire.InstanceState


@dataclass(frozen=True)
class Delete(steps.Call):
    resource_id: str


@dataclass(frozen=True)
class DeletionInputs:
    """What a deletion's plan reads besides the resource: the instance a volume is attached to,
    and the BarrackInstance object that manages it (the detach rule's next step names it); the
    instances a startup script is in use by."""

    instance: wire.VMInstance | None = None
    managed_by: str | None = None
    users: tuple[str, ...] = ()


NOTHING_LEFT = steps.Done("Barrack has nothing of this object's left to delete")


def delete(what: str, resource_id: str) -> Delete:
    return Delete(Reason.DELETION_BLOCKED, f"deleting {what} {resource_id}", resource_id)


def _settling(
    what: str,
    item: Any,
    states: type[wire.InstanceState | wire.VolumeState | wire.SnapshotState | wire.ImageState],
) -> steps.Step | None:
    """Nothing left, or a transition to wait out; None when the resource may be deleted now."""
    if item is None:
        return NOTHING_LEFT
    if wire.is_transitional(states, item.status):
        return steps.Wait(item.status.title().replace("_", ""), f"The {what} is {item.status} on Barrack.")
    return None


def plan_delete_volume(volume: wire.Volume | None, inputs: DeletionInputs) -> steps.Step:
    """A volume goes once detached, under the detach rule (SHUTOFF, never a boot volume)."""
    waiting = _settling("volume", volume, VS)
    if waiting is not None or volume is None:
        return waiting or NOTHING_LEFT
    if volume.instance_id is not None:
        why = detach_blocked_reason(volume, inputs.instance, inputs.managed_by)
        if why is not None:
            return steps.Blocked(Reason.DELETION_BLOCKED, f"deletion waits: {why}")
        label = instance_label(volume.instance_id, inputs.instance)
        return steps.Detach(Reason.DELETION_BLOCKED, "detaching before deletion", volume.instance_id, label)
    return delete("volume", volume.id)


def plan_delete_instance(instance: wire.VMInstance | None, inputs: DeletionInputs) -> steps.Step:
    return _settling("instance", instance, IS) or delete("instance", instance.id)  # type: ignore[union-attr]


def plan_delete_snapshot(snapshot: wire.Snapshot | None, inputs: DeletionInputs) -> steps.Step:
    return _settling("snapshot", snapshot, wire.SnapshotState) or delete("snapshot", snapshot.id)  # type: ignore[union-attr]


def plan_delete_image(image: wire.CustomImage | None, inputs: DeletionInputs) -> steps.Step:
    return _settling("image", image, wire.ImageState) or delete("image", image.id)  # type: ignore[union-attr]


def plan_delete_firewall(firewall: wire.Firewall | None, inputs: DeletionInputs) -> steps.Step:
    """A firewall goes once attached to no instance: both in one pass (detach every one, delete)."""
    if firewall is None:
        return NOTHING_LEFT
    if firewall.attachments:
        return steps.SetAttachments(
            Reason.DELETION_BLOCKED, "detaching from every instance", (), then=delete("firewall", firewall.id)
        )
    return delete("firewall", firewall.id)


def plan_delete_ssh_key(key: wire.SSHKey | None, inputs: DeletionInputs) -> steps.Step:
    return NOTHING_LEFT if key is None else delete("SSH key", key.id)


def plan_delete_script(script: wire.Script | None, inputs: DeletionInputs) -> steps.Step:
    """A script goes once no instance not yet deleted was created with it (Barrack refuses before)."""
    if script is None:
        return NOTHING_LEFT
    if inputs.users:
        return steps.Blocked(
            Reason.DELETION_BLOCKED,
            f"startup script {script.id} is in use by {', '.join(inputs.users)}: it is deleted once they are",
        )
    return delete("startup script", script.id)


@dataclass(frozen=True)
class KindDeletion(Generic[T]):
    """What a kind supplies to the deletion frame: how its resource is named in messages, read,
    planned, deleted and shown in status, and whether Barrack deletes it through a transition."""

    what: str
    listing: str
    """The inventory listing that holds the kind's resources."""
    fetch: Callable[[Context], Callable[[str], Awaitable[T]]]
    plan: Callable[[T | None, DeletionInputs], steps.Step]
    remove: Callable[[Context], Callable[[str], Awaitable[Any]]]
    status: Callable[[T], dict[str, Any]]
    settles: bool = True
    """Barrack deletes it through a transition (done once no longer listed); else at the reply."""

    async def finalize(self, ctx: Context, obj: ObjectView) -> Outcome:
        async def steps_(out: Outcome) -> Outcome:
            item: T | None = await find_for_deletion(
                ctx, obj, lambda: getattr(ctx.inventory, self.listing), self.fetch(ctx)
            )
            inputs = await self._observe(ctx, obj, item)
            if item is not None:
                out.status = self.status(item)
            return await self._act(ctx, out, item, self.plan(item, inputs))

        return await finalize_guarded(ctx, obj, steps_)

    async def _observe(self, ctx: Context, obj: ObjectView, item: T | None) -> DeletionInputs:
        if isinstance(item, wire.Script):
            await ctx.inventory.listed_once("instances")
            users = script_users(ctx, item.id)
            return DeletionInputs(users=tuple(_label(ctx, obj.namespace, i) for i in users))
        instance_id = item.instance_id if isinstance(item, wire.Volume) else None
        if instance_id is None:
            return DeletionInputs()
        await ctx.inventory.listed_once("instances")
        return DeletionInputs(
            ctx.inventory.instances.items.get(instance_id),
            ctx.refs.name_of("BarrackInstance", obj.namespace, instance_id),
        )

    async def _act(self, ctx: Context, out: Outcome, item: T | None, step: steps.Step) -> Outcome:
        if isinstance(step, steps.Done):
            out.done = True
            return out
        if isinstance(step, steps.Wait):
            return waiting_on_state(out, self.what, item.status if item is not None else "", ctx.timing)
        if isinstance(step, steps.Blocked):
            return blocked(out, step.reason, step.message, ctx.timing)
        assert item is not None
        if isinstance(step, steps.Detach):
            await ctx.client.detach_volumes(step.instance_id, [item.id])
            out.note(
                "Detaching",
                f"Detaching volume {item.id} from instance {step.instance_label} before deleting it",
            )
            return progressing(out, ctx.timing, "detaching before deletion")
        if isinstance(step, steps.SetAttachments):
            ctx.inventory.record(await ctx.client.attach_firewall(item.id, []))
            out.note("Detaching", f"Detaching {self.what} {item.id} from every instance before deleting it")
            assert step.then is not None
            step = step.then
        assert isinstance(step, Delete), step
        await self.remove(ctx)(step.resource_id)
        if self.settles:
            out.note("Deleting", f"Deleting Barrack {self.what} {item.id}")
            ctx.inventory.nudge([self.listing])
            return waiting_on_state(out, self.what, "DELETING", ctx.timing)
        getattr(ctx.inventory, self.listing).items.pop(item.id, None)
        out.note("Deleted", f"Deleted Barrack {self.what} {item.id}")
        out.done = True
        return out


def script_users(ctx: Context, script_id: str) -> list[str]:
    """The ids of the listed instances created with the script and not deleted, in order."""
    return sorted(i.id for i in ctx.inventory.instances.items.values()
                  if i.startup_script_id == script_id and i.status != "DELETED")  # fmt: skip


def _label(ctx: Context, namespace: str, instance_id: str) -> str:
    name = ctx.refs.name_of("BarrackInstance", namespace, instance_id)
    return f"BarrackInstance {name} ({instance_id})" if name else f"instance {instance_id}"


def _id_and_state(item: Any) -> dict[str, Any]:
    return {"id": item.id, "state": item.status}


DELETIONS: dict[str, KindDeletion[Any]] = {
    "BarrackVolume": KindDeletion(
        "volume", "volumes", lambda c: c.client.get_volume, plan_delete_volume, lambda c: c.client.delete_volume,
        lambda v: {**_id_and_state(v), "attachedInstanceId": v.instance_id},
    ),
    "BarrackInstance": KindDeletion(
        "instance", "instances", lambda c: c.client.get_instance, plan_delete_instance,
        lambda c: c.client.delete_instance, _id_and_state,
    ),
    "BarrackFirewall": KindDeletion(
        "firewall", "firewalls", lambda c: c.client.get_firewall, plan_delete_firewall,
        lambda c: c.client.delete_firewall, _id_and_state, settles=False,
    ),
    "BarrackSSHKey": KindDeletion(
        "SSH key", "ssh_keys", lambda c: c.client.get_ssh_key, plan_delete_ssh_key,
        lambda c: c.client.delete_ssh_key, _id_and_state, settles=False,
    ),
    "BarrackStartupScript": KindDeletion(
        "startup script", "scripts", lambda c: c.client.get_script, plan_delete_script,
        lambda c: c.client.delete_script, _id_and_state, settles=False,
    ),
    "BarrackSnapshot": KindDeletion(
        "snapshot", "snapshots", lambda c: c.client.get_snapshot, plan_delete_snapshot,
        lambda c: c.client.delete_snapshot, _id_and_state,
    ),
    "BarrackImage": KindDeletion(
        "image", "images", lambda c: c.client.get_image, plan_delete_image, lambda c: c.client.delete_image,
        _id_and_state,
    ),
}  # fmt: skip
"""Each kind's deletion: the one table its finalizer is read from."""
