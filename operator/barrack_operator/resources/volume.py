"""BarrackVolume: create (or clone, or adopt), grow, attach and detach under Barrack's rules, and
delete only once detached.

Barrack's rules checked before a call (the API stays the authority: its 409 maps the same way):
attach needs an AVAILABLE volume and an ACTIVE or SHUTOFF instance in the same region; detach
needs a non-bootable volume on a SHUTOFF instance; delete needs a detached volume. A bootable volume
attached to an instance is that instance's boot volume: it stays attached for the instance's life.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from barrack_operator.barrack import NotFound
from barrack_operator.barrack import models as wire
from barrack_operator.barrack import requests as rq
from barrack_operator.conditions import ATTACHED, Condition, Reason
from barrack_operator.costs import Demand
from barrack_operator.resources import specs, steps
from barrack_operator.resources.deletion import DELETIONS
from barrack_operator.resources.frame import KindReconciler, Unresolved
from barrack_operator.resources.guard import differences
from barrack_operator.resources.messages import detach_blocked_reason, instance_label
from barrack_operator.resources.model import Context, ObjectView, Outcome, id_key, ref_key
from barrack_operator.resources.power import PowerOverride

VS, IS = wire.VolumeState, wire.InstanceState
ATTACHABLE_INSTANCE_STATES = {IS.ACTIVE, IS.SHUTOFF}


@dataclass(frozen=True)
class NotAttached(steps.Blocked):
    """A Blocked step that is also why the volume is not attached (Attached=False gives its reason)."""


@dataclass(frozen=True)
class AttachWait(steps.Wait):
    """A wait for the instance to become attachable (Attached=False AttachBlocked)."""


@dataclass(frozen=True)
class VolumeInputs:
    """What a volume's plan needs besides the spec and the volume: the instance the spec asks for
    (its id, and the instance as Barrack lists it), every listed instance, the source of a clone,
    and which BarrackInstance object manages each instance id."""

    target: str | None
    target_instance: wire.VMInstance | None
    instances: Mapping[str, wire.VMInstance]
    source: wire.Volume | None = None
    managers: Mapping[str, str] | None = None
    pending: str | None = None
    """The BarrackInstance the spec names when it has no Barrack id yet but is on its way in the
    volume's region and account: the volume is made meanwhile and attached once it has one."""
    region: str | None = None
    """Where the volume is made: spec.region, or (left out) the region its instance is in or lands in."""
    power: PowerOverride | None = None
    """What a power schedule says of the instance the volume attaches to (or is attached to)."""


def _region_mismatch(volume: str, region: str, target: str, instance: wire.VMInstance) -> str:
    return (
        f"volume {volume} is in {region} and instance {instance_label(target, instance)} in "
        f"{instance.region}: a volume attaches only in its own region; point instanceRef at an instance in {region}"
    )


def clone_mismatch(spec: specs.BarrackVolumeSpec, source: wire.Volume) -> str | None:
    """Why a clone of ``source`` cannot be what the spec asks for, or None."""
    problems = []
    if source.region != spec.region:
        problems.append(f"the source {source.id} is in {source.region}, the spec says region {spec.region}")
    if str(source.volume_type).upper() != str(spec.volumeType).upper():
        problems.append(f"the source is {source.volume_type}, the spec says volumeType {spec.volumeType}")
    if source.bootable != spec.bootable:
        problems.append(f"the source has bootable={source.bootable}, the spec says {spec.bootable}")
    if not problems:
        return None
    return (
        "a clone has its source's region, type and bootability: " + "; ".join(problems) + ". Change the spec"
    )


def plan_volume(spec: specs.BarrackVolumeSpec, volume: wire.Volume, inputs: VolumeInputs) -> steps.Step:
    """The one step toward the spec, from the volume and the instances as Barrack lists them."""
    if spec.region is not None and volume.region != spec.region:
        return steps.Blocked(
            Reason.INVALID_SPEC, f"volume {volume.id} is in {volume.region}, the spec says {spec.region}"
        )
    if spec.sizeGB > volume.size_gb:
        if not wire.VolumeType(volume.volume_type).advanced:
            return steps.Blocked(
                Reason.INVALID_SPEC, f"{volume.volume_type} volumes cannot be resized: only NVMe and HDD grow"
            )
        return steps.resize(spec.sizeGB, volume.size_gb)
    current, target = volume.instance_id, inputs.target
    if current is not None and volume.bootable:
        if target is not None and target != current:
            label = instance_label(current, inputs.instances.get(current))
            return steps.Blocked(
                Reason.INVALID_SPEC,
                f"volume {volume.id} is the boot volume of instance {label} and never detaches; instanceRef "
                f"names {target}: point it at {current}, or remove it",
            )
        return steps.Done(f"Volume {volume.id} is the boot volume of instance {current}.")
    if inputs.pending is not None:
        return AttachWait(
            Reason.REFERENCE_NOT_READY,
            f"BarrackInstance {inputs.pending} has no Barrack id yet: the operator attaches volume "
            f"{volume.id} once it has one and is ACTIVE or SHUTOFF",
        )
    if current == target:
        return steps.Done(f"Volume {volume.id} is {volume.status}.")
    if current is not None:
        instance = inputs.instances.get(current)
        if instance is None:
            # Barrack no longer lists the instance (deleted, or deleting): it frees its volumes as it
            # goes. The volume is detached when Barrack's volume listing says so, not before.
            return steps.Wait(
                Reason.PROGRESSING,
                f"Instance {current} is gone from Barrack; waiting for Barrack to list volume {volume.id} detached.",
            )
        why = detach_blocked_reason(volume, instance, (inputs.managers or {}).get(current))
        if why is not None:
            return steps.Blocked(Reason.DETACH_BLOCKED, why + _by_schedule(inputs.power))
        return steps.detach(current, instance_label(current, instance))
    assert target is not None
    instance = inputs.target_instance
    if instance is None:
        return NotAttached(Reason.REFERENCE_NOT_READY, f"instance {target} does not exist on Barrack")
    if instance.region != volume.region:
        return NotAttached(Reason.INVALID_SPEC, _region_mismatch(volume.id, volume.region, target, instance))
    if instance.status not in ATTACHABLE_INSTANCE_STATES:
        return AttachWait(
            Reason.ATTACH_BLOCKED,
            f"attach needs instance {instance_label(target, instance)} ACTIVE or SHUTOFF, it is "
            f"{instance.status}{_by_schedule(inputs.power)}: the operator attaches once it is",
        )
    return steps.attach(target, instance_label(target, instance))


def _by_schedule(power: PowerOverride | None) -> str:
    """Off-hours of a power schedule, when they are why the instance is not ACTIVE or SHUTOFF."""
    if power is None or not power.off:
        return ""
    return (
        f" (kept {power.off_state} by BarrackPowerSchedule {power.schedule} {power.until()}, its next window)"
    )


def attached_condition(
    volume: wire.Volume | None, step: steps.Step, inputs: VolumeInputs | None
) -> list[Condition]:
    """Attached, from what Barrack lists (never from the last pass); a step that stops an attach
    gives its reason."""
    why_not = isinstance(step, NotAttached | AttachWait) or (
        isinstance(step, steps.Blocked) and step.reason == Reason.REFERENCE_NOT_READY
    )
    if volume is None:
        return (
            [Condition(ATTACHED, False, step.reason, step.message)] if isinstance(step, NotAttached) else []
        )
    current = volume.instance_id
    if current is None:
        if why_not and isinstance(step, steps.Wait | steps.Blocked):
            return [Condition(ATTACHED, False, step.reason, step.message)]
        return [Condition(ATTACHED, False, Reason.DETACHED, "The volume is not attached.")]
    label = instance_label(current, (inputs.instances if inputs else {}).get(current))
    if volume.bootable:
        return [Condition(ATTACHED, True, Reason.BOOT_VOLUME, f"The boot volume of instance {label}.")]
    return [Condition(ATTACHED, True, Reason.ATTACHED, f"Attached to instance {label}.")]


class VolumeReconciler(KindReconciler[specs.BarrackVolumeSpec, wire.Volume, VolumeInputs]):
    what = "volume"
    spec_model = specs.BarrackVolumeSpec
    states = VS

    def demand(self, spec: specs.BarrackVolumeSpec, inputs: VolumeInputs) -> Demand:
        return Demand("volumes", volume_type=str(spec.volumeType), size_gb=spec.sizeGB)

    async def observe(
        self, ctx: Context, obj: ObjectView, spec: specs.BarrackVolumeSpec, out: Outcome
    ) -> VolumeInputs:
        source = await self._source(ctx, obj, spec, out)
        target, pending, landing = self._target(ctx, obj, spec, out)
        current = ctx.inventory.volumes.items.get(obj.recorded_id or "")
        if target is not None or (current is not None and current.instance_id):
            await ctx.inventory.listed_once("instances")  # what an attach or a detach decides on
        instance = ctx.inventory.instances.items.get(target or "")
        if target is not None:
            out.watch.add(id_key(target))
            if instance is None:
                try:
                    instance = await ctx.client.get_instance(target)
                    ctx.inventory.record(instance)
                except NotFound:
                    instance = None
        managers = {}
        for instance_id in {target, current.instance_id if current else None} - {None}:
            assert instance_id is not None
            name = ctx.refs.name_of("BarrackInstance", obj.namespace, instance_id)
            if name is not None:
                managers[instance_id] = name
        region = spec.region or (instance.region if instance is not None else landing)
        manager = managers.get(target or (current.instance_id if current else None) or "")
        power = ctx.power(obj.namespace, manager) if manager else None
        return VolumeInputs(
            target, instance, ctx.inventory.instances.items, source, managers, pending, region, power
        )

    def _target(
        self, ctx: Context, obj: ObjectView, spec: specs.BarrackVolumeSpec, out: Outcome
    ) -> tuple[str | None, str | None, str | None]:
        """(the instance id the spec names, the BarrackInstance on its way with no id yet, the
        region that one lands in). A volume waits, uncreated, for an instance object that does
        not exist or is in another region or account (it would bill a volume that can never
        attach); not for one on its way to it. A volume without a region waits for its instance
        to be placed."""
        ref = obj.spec.get("instanceRef")
        if ref:
            name = ref["name"]
            out.watch.add(ref_key("BarrackInstance", obj.namespace, name))
            info = ctx.refs.get("BarrackInstance", obj.namespace, name)
            if info is not None and info.id:
                return info.id, None, info.region
            if (
                info is not None
                and info.region is not None
                and info.region == (spec.region or info.region)
                and (info.account or specs.DEFAULT_ACCOUNT) == specs.account_name(obj.spec)
            ):
                return None, name, info.region
            if info is not None and spec.region is None:
                raise Unresolved(
                    f"BarrackInstance {name} is not placed yet: the volume is made in the region it lands in"
                )
            raise Unresolved(f"BarrackInstance {name} has no Barrack id yet")
        instance_id = obj.spec.get("instanceId")
        return (str(instance_id) if instance_id else None), None, None

    async def _source(
        self, ctx: Context, obj: ObjectView, spec: specs.BarrackVolumeSpec, out: Outcome
    ) -> wire.Volume | None:
        if spec.source is None:
            return None
        source_id = spec.source.volumeId
        if spec.source.volumeRef is not None:
            name = spec.source.volumeRef.name
            out.watch.add(ref_key("BarrackVolume", obj.namespace, name))
            info = ctx.refs.get("BarrackVolume", obj.namespace, name)
            if info is None or not info.id:
                raise Unresolved(f"source BarrackVolume {name} has no Barrack id yet")
            source_id = info.id
        assert source_id is not None
        listed = ctx.inventory.volumes.items.get(source_id)
        return listed if listed is not None else await ctx.client.get_volume(source_id)

    def before_create(
        self, ctx: Context, obj: ObjectView, spec: specs.BarrackVolumeSpec, inputs: VolumeInputs
    ) -> steps.Blocked | None:
        if inputs.source is not None:
            mismatch = clone_mismatch(spec, inputs.source)
            if mismatch is not None:
                return steps.Blocked(Reason.INVALID_SPEC, mismatch)
        instance = inputs.target_instance
        if inputs.target is not None and instance is not None and instance.region != inputs.region:
            # Creating it would bill a volume that can never attach as declared.
            message = _region_mismatch(
                f"{obj.barrack_name} (not created)", str(inputs.region), inputs.target, instance
            )
            return NotAttached(Reason.INVALID_SPEC, message)
        return None

    def fetch(self, ctx: Context) -> Callable[[str], Awaitable[wire.Volume]]:
        return ctx.client.get_volume

    async def create(
        self, ctx: Context, obj: ObjectView, spec: specs.BarrackVolumeSpec, inputs: VolumeInputs
    ) -> wire.Volume:
        if inputs.source is not None:
            return await ctx.client.clone_volume(inputs.source.id, obj.barrack_name)
        return await ctx.client.create_volume(
            rq.CreateVolumeRequest(
                name=obj.barrack_name,
                region=str(inputs.region),
                size_gb=spec.sizeGB,
                volume_type=spec.volumeType,
                bootable=spec.bootable,
                image_id=spec.imageId,
            )
        )

    def mismatches(self, spec: specs.BarrackVolumeSpec, item: wire.Volume) -> list[str]:
        found = differences(
            [
                ("region", spec.region or item.region, item.region),
                ("volumeType", spec.volumeType, item.volume_type),
                ("bootable", spec.bootable, item.bootable),
            ]
        )
        if spec.sizeGB < item.size_gb:
            found.append(f"sizeGB: spec {spec.sizeGB}, Barrack {item.size_gb} (volumes never shrink)")
        return found

    def status(self, item: wire.Volume) -> dict[str, Any]:
        return {
            "id": item.id,
            "state": item.status,
            "region": item.region,
            "sizeGB": item.size_gb,
            "attachedInstanceId": item.instance_id,
        }

    def plan(
        self, ctx: Context, spec: specs.BarrackVolumeSpec, item: wire.Volume, inputs: VolumeInputs
    ) -> steps.Step:
        if item.instance_id and item.instance_id not in inputs.instances:
            ctx.inventory.nudge(["volumes", "instances"])  # the instance went: see the volume freed soon
        return plan_volume(spec, item, inputs)

    async def act(self, ctx: Context, item: wire.Volume, step: steps.Call, out: Outcome) -> None:
        if isinstance(step, steps.Resize):
            ctx.inventory.record(await ctx.client.resize_volume(item.id, step.size_gb))
            out.note("Resizing", f"Growing volume {item.id} from {step.from_gb} to {step.size_gb} GB")
        elif isinstance(step, steps.Detach):
            out.watch.add(id_key(step.instance_id))
            await ctx.client.detach_volumes(step.instance_id, [item.id])
            out.note("Detaching", f"Detaching volume {item.id} from instance {step.instance_label}")
        elif isinstance(step, steps.Attach):
            await ctx.client.attach_volumes(step.instance_id, [item.id])
            out.note("Attaching", f"Attaching volume {item.id} to instance {step.instance_label}")

    def extra_conditions(
        self, ctx: Context, item: wire.Volume | None, step: steps.Step, inputs: VolumeInputs | None
    ) -> list[Condition]:
        return attached_condition(item, step, inputs)

    def waits_on_unlisted(self, ctx: Context, inputs: VolumeInputs | None, since: float) -> bool:
        """The instance to attach to has no Barrack id yet, or no read of it was asked for since the
        volume's create (in a burst the instances are listed whole every minute or so)."""
        if inputs is None or (inputs.target is None and inputs.pending is None):
            return False
        return inputs.target is None or not ctx.inventory.instances.shown_since(inputs.target, since)


reconcile = VolumeReconciler().reconcile


finalize = DELETIONS["BarrackVolume"].finalize
