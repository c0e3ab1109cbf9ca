"""BarrackVolume: create (or clone, or adopt), grow, attach and detach under Barrack's rules, and
delete only once detached.

Barrack's rules checked before a call (the API stays the authority: its 409 maps the same way):
attach needs an AVAILABLE volume and an ACTIVE or SHUTOFF instance in the same region; detach
needs a non-bootable volume on a SHUTOFF instance; delete needs a detached volume.
"""

from __future__ import annotations

from barrack_operator.barrack import BarrackError, InvalidRequest, NotFound, PreconditionFailed
from barrack_operator.barrack import models as wire
from barrack_operator.barrack.credentials import MissingApiKey
from barrack_operator.conditions import ATTACHED, READY, Condition, Reason
from barrack_operator.resources import specs
from barrack_operator.resources.common import (
    Context,
    ObjectView,
    Outcome,
    available,
    blocked,
    ensure_exists,
    failed,
    finalize_guarded,
    find_for_deletion,
    id_key,
    progressing,
    ref_key,
    synced,
    waiting_on_state,
)

VS, IS = wire.VolumeState, wire.InstanceState
ATTACHABLE_INSTANCE_STATES = {IS.ACTIVE, IS.SHUTOFF}


class Unresolved(Exception):
    """A reference has no Barrack id yet."""


def detach_blocked_reason(volume: wire.Volume, instance: wire.VMInstance | None) -> str | None:
    """Why a detach cannot be asked for now, or None when it can."""
    label = _instance_label(volume.instance_id or "", instance)
    if volume.bootable:
        return f"volume {volume.id} is the boot volume of instance {label}: boot volumes stay attached and are never detached"
    if instance is not None and instance.status != IS.SHUTOFF:
        return (
            f"detach needs instance {label} in SHUTOFF, it is {instance.status}: "
            f"stop it, or set powerState: Stopped on its BarrackInstance"
        )
    return None


def _instance_label(instance_id: str, instance: wire.VMInstance | None) -> str:
    return f"{instance.name} ({instance_id})" if instance is not None else instance_id


def desired_instance_id(ctx: Context, obj: ObjectView, out: Outcome) -> str | None:
    ref = obj.spec.get("instanceRef")
    if ref:
        out.watch.add(ref_key("BarrackInstance", obj.namespace, ref["name"]))
        info = ctx.refs.get("BarrackInstance", obj.namespace, ref["name"])
        if info is None or not info.id:
            raise Unresolved(f"BarrackInstance {ref['name']} has no Barrack id yet")
        return info.id
    instance_id = obj.spec.get("instanceId")
    return str(instance_id) if instance_id else None


def _source_id(ctx: Context, obj: ObjectView, out: Outcome) -> str | None:
    source = obj.spec.get("source") or {}
    if source.get("volumeRef"):
        name = source["volumeRef"]["name"]
        out.watch.add(ref_key("BarrackVolume", obj.namespace, name))
        info = ctx.refs.get("BarrackVolume", obj.namespace, name)
        if info is None or not info.id:
            raise Unresolved(f"source BarrackVolume {name} has no Barrack id yet")
        return info.id
    return source.get("volumeId")


async def reconcile(ctx: Context, obj: ObjectView) -> Outcome:
    out = Outcome()
    spec = specs.BarrackVolumeSpec.model_validate(obj.spec)
    try:
        source_id = _source_id(ctx, obj, out)
        target_instance = desired_instance_id(ctx, obj, out)
    except Unresolved as exc:
        observed = ctx.inventory.volumes.items.get(obj.recorded_id or ctx.memory.known_ids.get(obj.uid) or "")
        if observed is not None:  # what Barrack lists, not what the last pass wrote
            out.conditions.append(_attached_condition(observed.instance_id, ctx))
        return blocked(out, Reason.REFERENCE_NOT_READY, f"{exc}; waiting for it to become Ready", ctx.timing)

    not_created = not (obj.recorded_id or ctx.memory.known_ids.get(obj.uid))
    instance = ctx.inventory.instances.items.get(target_instance or "")
    if not_created and instance is not None and instance.region != spec.region:
        # Creating it would bill a volume that can never attach as declared.
        assert target_instance is not None
        message = _region_mismatch(
            f"{obj.barrack_name} (not created)", spec.region, target_instance, instance
        )
        out.conditions.append(Condition(ATTACHED, False, Reason.INVALID_SPEC, message))
        return blocked(out, Reason.INVALID_SPEC, message, ctx.timing)

    async def create() -> wire.Volume:
        if source_id:
            return await ctx.client.clone_volume(source_id, obj.barrack_name)
        return await ctx.client.create_volume(
            wire.CreateVolumeRequest(
                name=obj.barrack_name,
                region=spec.region,
                size_gb=spec.sizeGB,
                volume_type=spec.volumeType,
                bootable=spec.bootable,
                image_id=spec.imageId,
            )
        )

    try:
        found = await ensure_exists(ctx, obj, lambda: ctx.inventory.volumes, ctx.client.get_volume, create)
    except (BarrackError, MissingApiKey) as error:
        return failed(out, error, ctx.timing)
    volume: wire.Volume = found.item
    out.watch.add(id_key(volume.id))
    out.status = {
        "id": volume.id,
        "state": volume.status,
        "sizeGB": volume.size_gb,
        "attachedInstanceId": volume.instance_id,
    }
    if found.created:
        out.note("Created", f"Created Barrack volume {volume.id}")
    if volume.region != spec.region:
        return blocked(
            out,
            Reason.INVALID_SPEC,
            f"volume {volume.id} is in {volume.region}, the spec says {spec.region}",
            ctx.timing,
        )
    if wire.is_transitional(VS, volume.status):
        if volume.instance_id:
            out.watch.add(id_key(volume.instance_id))
        return waiting_on_state(out, "volume", volume.status, ctx.timing)
    try:
        return await _converge(ctx, obj, spec, volume, target_instance, out)
    except PreconditionFailed as error:
        reason = (
            Reason.DETACH_BLOCKED
            if volume.instance_id and volume.instance_id != target_instance
            else Reason.ATTACH_BLOCKED
        )
        return failed(out, error, ctx.timing, blocked=reason)
    except (BarrackError, MissingApiKey) as error:
        return failed(out, error, ctx.timing)


async def _converge(
    ctx: Context,
    obj: ObjectView,
    spec: specs.BarrackVolumeSpec,
    volume: wire.Volume,
    target: str | None,
    out: Outcome,
) -> Outcome:
    if spec.sizeGB > volume.size_gb:
        if not wire.VolumeType(volume.volume_type).advanced:
            return blocked(
                out,
                Reason.INVALID_SPEC,
                f"{volume.volume_type} volumes cannot be resized: only NVMe and HDD grow",
                ctx.timing,
            )
        ctx.inventory.record(await ctx.client.resize_volume(volume.id, spec.sizeGB))
        out.note("Resizing", f"Growing volume {volume.id} from {volume.size_gb} to {spec.sizeGB} GB")
        return progressing(out, ctx.timing, f"resizing to {spec.sizeGB} GB")

    current = volume.instance_id
    if current == target:
        out.conditions.append(_attached_condition(current, ctx))
        return available(out, ctx.timing, f"Volume {volume.id} is {volume.status}.")

    if current is not None:
        out.watch.add(id_key(current))
        instance = ctx.inventory.instances.items.get(current)
        out.conditions.append(_attached_condition(current, ctx))
        if instance is None:
            # Barrack no longer lists the instance (deleted, or deleting): it frees its volumes as it
            # goes. The volume is detached when Barrack's volume listing says so, not before.
            ctx.inventory.nudge(["volumes", "instances"])
            return progressing(
                out,
                ctx.timing,
                f"listing volume {volume.id} on instance {current}, which it no longer lists; "
                "waiting for the volume to be listed detached",
            )
        why = detach_blocked_reason(volume, instance)
        if why is not None:
            return blocked(out, Reason.DETACH_BLOCKED, why, ctx.timing)
        await ctx.client.detach_volumes(current, [volume.id])
        out.note(
            "Detaching", f"Detaching volume {volume.id} from instance {_instance_label(current, instance)}"
        )
        return progressing(out, ctx.timing, "detaching")

    assert target is not None
    out.watch.add(id_key(target))
    instance = ctx.inventory.instances.items.get(target)
    if instance is None:
        try:
            instance = await ctx.client.get_instance(target)
        except NotFound:
            out.conditions.append(
                Condition(ATTACHED, False, Reason.ATTACH_BLOCKED, f"instance {target} does not exist")
            )
            return blocked(
                out, Reason.REFERENCE_NOT_READY, f"instance {target} does not exist on Barrack", ctx.timing
            )
        ctx.inventory.record(instance)
    if instance.region != volume.region:
        message = _region_mismatch(volume.id, volume.region, target, instance)
        out.conditions.append(Condition(ATTACHED, False, Reason.INVALID_SPEC, message))
        return blocked(out, Reason.INVALID_SPEC, message, ctx.timing)
    if instance.status not in ATTACHABLE_INSTANCE_STATES:
        message = (
            f"attach needs instance {_instance_label(target, instance)} ACTIVE or SHUTOFF, it is {instance.status}: "
            "the operator attaches once it is"
        )
        out.conditions.append(Condition(ATTACHED, False, Reason.ATTACH_BLOCKED, message))
        out.conditions.append(Condition(READY, False, Reason.ATTACH_BLOCKED, message))
        synced(out)
        out.requeue_after = ctx.timing.transition_requeue
        return out
    try:
        await ctx.client.attach_volumes(target, [volume.id])
    except InvalidRequest as error:
        out.conditions.append(Condition(ATTACHED, False, Reason.INVALID_SPEC, error.message))
        raise
    except PreconditionFailed as error:
        out.conditions.append(Condition(ATTACHED, False, Reason.ATTACH_BLOCKED, error.message))
        raise
    out.note("Attaching", f"Attaching volume {volume.id} to instance {_instance_label(target, instance)}")
    return progressing(out, ctx.timing, "attaching")


def _region_mismatch(volume: str, region: str, target: str, instance: wire.VMInstance) -> str:
    return (
        f"volume {volume} is in {region} and instance {_instance_label(target, instance)} in "
        f"{instance.region}: a volume attaches only in its own region; point instanceRef at an instance in {region}"
    )


def _attached_condition(instance_id: str | None, ctx: Context) -> Condition:
    if instance_id is None:
        return Condition(ATTACHED, False, Reason.DETACHED, "The volume is not attached.")
    instance = ctx.inventory.instances.items.get(instance_id)
    return Condition(
        ATTACHED, True, Reason.ATTACHED, f"Attached to instance {_instance_label(instance_id, instance)}."
    )


async def finalize(ctx: Context, obj: ObjectView) -> Outcome:
    """Deletion: Retain leaves the volume; Delete detaches (under the same preconditions), deletes,
    and is done only once Barrack no longer lists the volume."""

    async def steps(out: Outcome) -> Outcome:
        volume = await find_for_deletion(ctx, obj, lambda: ctx.inventory.volumes, ctx.client.get_volume)
        if volume is None:
            out.done = True
            return out
        out.status = {"id": volume.id, "state": volume.status, "attachedInstanceId": volume.instance_id}
        if wire.is_transitional(VS, volume.status):
            return waiting_on_state(out, "volume", volume.status, ctx.timing)
        if volume.instance_id is not None:
            instance = ctx.inventory.instances.items.get(volume.instance_id)
            why = detach_blocked_reason(volume, instance)
            if why is not None:
                return blocked(out, Reason.DELETION_BLOCKED, f"deletion waits: {why}", ctx.timing)
            await ctx.client.detach_volumes(volume.instance_id, [volume.id])
            out.note("Detaching", f"Detaching volume {volume.id} before deleting it")
            return progressing(out, ctx.timing, "detaching before deletion")
        await ctx.client.delete_volume(volume.id)
        out.note("Deleting", f"Deleting Barrack volume {volume.id}")
        return waiting_on_state(out, "volume", VS.DELETING, ctx.timing)

    return await finalize_guarded(ctx, obj, steps)
