"""BarrackInstance: create from an image, a boot volume, a custom image or by restoring a snapshot
once its SSH keys (and that source) are Ready, walk the
power state (start, stop, hibernate, restore) toward the spec, keep the public IP and security
rules as declared, and delete on request.

Power moves, from Barrack's rules: start from SHUTOFF; stop and hibernate from ACTIVE; restore
from HIBERNATED. A move that needs two steps (SHUTOFF to HIBERNATED) takes the first and comes back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from barrack_operator.barrack import PreconditionFailed
from barrack_operator.barrack import models as wire
from barrack_operator.barrack import requests as rq
from barrack_operator.capacity import Place, Placement, Want
from barrack_operator.conditions import Reason
from barrack_operator.costs import Demand
from barrack_operator.resources import specs, steps
from barrack_operator.resources.deletion import DELETIONS
from barrack_operator.resources.frame import KindReconciler, Unresolved
from barrack_operator.resources.guard import differences
from barrack_operator.resources.lifetime import (
    EXTEND_ANNOTATION,
    LIFETIME_STATE,
    Lifetime,
    instance_lifetime,
    report_lifetime,
)
from barrack_operator.resources.model import Context, CreditsDepleted, ObjectView, Outcome, id_key, ref_key
from barrack_operator.resources.placement import volume_pin
from barrack_operator.resources.power import PowerOverride
from barrack_operator.resources.rules import security_rule_plan
from barrack_operator.resources.sources import resolve_snapshot
from barrack_operator.resources.times import stamp

IS = wire.InstanceState
P = specs.PowerState
TARGET_STATE = {P.RUNNING: IS.ACTIVE, P.STOPPED: IS.SHUTOFF, P.HIBERNATED: IS.HIBERNATED}
POWER_OF_STATE = {IS.ACTIVE: P.RUNNING, IS.SHUTOFF: P.STOPPED, IS.HIBERNATED: P.HIBERNATED}

# (current state, wanted state) -> the next action
NEXT_POWER_ACTION: dict[tuple[IS, IS], str] = {
    (IS.ACTIVE, IS.SHUTOFF): "stop",
    (IS.ACTIVE, IS.HIBERNATED): "hibernate",
    (IS.SHUTOFF, IS.ACTIVE): "start",
    (IS.SHUTOFF, IS.HIBERNATED): "start",
    (IS.HIBERNATED, IS.ACTIVE): "restore",
    (IS.HIBERNATED, IS.SHUTOFF): "restore",
}


def _resolve(ctx: Context, obj: ObjectView, out: Outcome, kind: str, name: str) -> str | None:
    out.watch.add(ref_key(kind, obj.namespace, name))
    info = ctx.refs.get(kind, obj.namespace, name)
    return info.id if info is not None and info.ready and info.id else None


@dataclass(frozen=True)
class InstanceInputs:
    """The Barrack ids of the SSH keys and boot source the spec names (None while unresolved), the
    region of a custom image or snapshot to boot from (Barrack makes the instance there), the
    alternatives, and, while the instance is not made yet, where it may land."""

    key_ids: tuple[str | None, ...]
    boot_volume_id: str | None
    unresolved: tuple[str, ...]
    custom_image_id: str | None = None
    restore_snapshot_id: str | None = None
    source_region: tuple[str, str] | None = None
    """(what, region) of a boot source that pins the region: a custom image, a snapshot, a boot volume."""
    places: tuple[Place, ...] = ()
    want: Want | None = None
    placement: Placement | None = None
    """Where a new instance may land now; None once it exists (or while it cannot be placed)."""
    power: PowerOverride | None = None
    """What a BarrackPowerSchedule says of it now: off-hours keep it in the schedule's offState."""
    lifetime: Lifetime | None = None
    """Where spec.lifetime stands (None without one)."""
    script_id: str | None = None
    """The startup script's Barrack id (spec.startupScript, or its startupScriptRef resolved)."""


def source_region_mismatch(spec: specs.BarrackInstanceSpec, inputs: InstanceInputs) -> steps.Blocked | None:
    """A custom image deploys, a snapshot restores and a boot volume boots only in its own region:
    every alternative must be there."""
    if inputs.source_region is None:
        return None
    what, region = inputs.source_region
    if spec.placement is None:
        if spec.region == region:
            return None
        return steps.Blocked(
            Reason.INVALID_SPEC,
            f"{what} is in {region} and the spec says region {spec.region}: Barrack makes the instance in the "
            f"{what.split()[0]}'s region; set region: {region}",
        )
    elsewhere = [f"placement[{i}] ({p.region})" for i, p in enumerate(inputs.places) if p.region != region]
    if not elsewhere:
        return None
    return steps.Blocked(
        Reason.INVALID_SPEC,
        f"{what} is in {region}, and {', '.join(elsewhere)} {'is' if len(elsewhere) == 1 else 'are'} not: Barrack "
        f"makes the instance in the {what.split()[0]}'s region; keep only alternatives in {region}",
    )


def places_of(spec: specs.BarrackInstanceSpec) -> tuple[Place, ...]:
    return tuple(Place(str(a.region), a.gpuModel, a.gpuCount) for a in spec.alternatives())


def alternative_of(places: tuple[Place, ...], instance: wire.VMInstance) -> int | None:
    """Which alternative the instance is (the first that matches its region and GPUs)."""
    return next(
        (
            i
            for i, p in enumerate(places)
            if (p.region, p.gpu_model, p.gpu_count)
            == (instance.region, instance.gpu_model, instance.gpu_count)
        ),
        None,
    )


def plan_instance(spec: specs.BarrackInstanceSpec, instance: wire.VMInstance) -> steps.Step:
    """The one step toward the spec from a settled instance (ACTIVE, SHUTOFF or HIBERNATED). A
    field the spec leaves out is not managed (until late initialization writes Barrack's value)."""
    current = IS(instance.status)
    if spec.powerState is not None:
        wanted = TARGET_STATE[P(spec.powerState)]
        if current != wanted:
            return steps.power(NEXT_POWER_ACTION[(current, wanted)], current, wanted)
    if (
        spec.publicIP is not None
        and current == IS.ACTIVE
        and (instance.public_ip is not None) != spec.publicIP
    ):
        return steps.set_public_ip(spec.publicIP)
    if spec.securityRules is not None:
        add, remove = security_rule_plan(spec.securityRules, instance.security_rules)
        if add or remove:
            return steps.set_rules(add, remove, "security rules")
    return steps.Done(f"Instance {instance.id} is {instance.status}.")


def late_init_instance(spec: specs.BarrackInstanceSpec, instance: wire.VMInstance) -> dict[str, Any]:
    """Barrack's values for the optional fields the spec leaves out (the instance is settled)."""
    values: dict[str, Any] = {}
    power = POWER_OF_STATE.get(IS(instance.status))
    if spec.powerState is None and power is not None:
        values["powerState"] = power.value
    if spec.publicIP is None and instance.status == IS.ACTIVE:
        values["publicIP"] = instance.public_ip is not None
    if spec.securityRules is None:
        values["securityRules"] = specs.rules_as_spec(instance.security_rules)
    return values


class InstanceReconciler(KindReconciler[specs.BarrackInstanceSpec, wire.VMInstance, InstanceInputs]):
    what = "instance"
    spec_model = specs.BarrackInstanceSpec
    states = IS

    def demand(self, spec: specs.BarrackInstanceSpec, inputs: InstanceInputs) -> Demand:
        placement = inputs.placement
        place = inputs.places[placement.index if placement and placement.index is not None else 0]
        return Demand("instances", gpu_model=place.gpu_model, gpu_count=place.gpu_count)

    async def observe(
        self, ctx: Context, obj: ObjectView, spec: specs.BarrackInstanceSpec, out: Outcome
    ) -> InstanceInputs:
        inputs = replace(
            await self._sources(ctx, obj, spec, out),
            power=ctx.power(obj.namespace, obj.name),
            lifetime=instance_lifetime(spec.lifetime, obj, ctx.barrack_clock) if spec.lifetime else None,
        )
        if obj.recorded_id or ctx.memory.known_ids.get(obj.uid) or spec.adoptId:
            ctx.capacity.forget(obj.uid)  # it exists: it waits for no place
            return inputs
        if inputs.unresolved or source_region_mismatch(spec, inputs) is not None:
            return inputs
        want = Want(
            uid=obj.uid,
            created=obj.created_at,
            places=inputs.places,
            max_price=spec.maxHourlyPrice,
            pinned=volume_pin(ctx, obj, inputs.places),
            no_image=await self._regions_without_image(ctx, spec, inputs.places),
            image=repr(spec.image.name) if spec.image else str(spec.imageId),
        )
        return replace(inputs, want=want, placement=await ctx.capacity.place(want))

    async def _regions_without_image(
        self, ctx: Context, spec: specs.BarrackInstanceSpec, places: tuple[Place, ...]
    ) -> frozenset[str]:
        """The alternatives' regions that have no OS image of the name (spec.image) or id (spec.imageId)
        the instance boots from; only alternatives of several regions need a look."""
        wanted = spec.image.name if spec.image else spec.imageId
        regions = {p.region for p in places}
        if wanted is None or (spec.image is None and len(regions) == 1):
            return frozenset()
        return frozenset([r for r in sorted(regions) if wanted not in await ctx.capacity.image_ids(r)])

    async def _sources(
        self, ctx: Context, obj: ObjectView, spec: specs.BarrackInstanceSpec, out: Outcome
    ) -> InstanceInputs:
        """The SSH keys and the boot source, resolved to Barrack ids, and the region a boot source pins."""
        key_ids = tuple(_resolve(ctx, obj, out, "BarrackSSHKey", ref.name) for ref in spec.sshKeyRefs)
        boot = spec.bootVolumeRef
        boot_volume_id = _resolve(ctx, obj, out, "BarrackVolume", boot.name) if boot else None
        unresolved = [
            f"BarrackSSHKey {r.name}" for r, k in zip(spec.sshKeyRefs, key_ids, strict=True) if k is None
        ]
        source_region: tuple[str, str] | None = None
        if boot and boot_volume_id is None:
            unresolved.append(f"boot BarrackVolume {boot.name}")
        elif boot:
            info = ctx.refs.get("BarrackVolume", obj.namespace, boot.name)
            if info is not None and info.region:
                source_region = (f"boot volume {boot_volume_id}", info.region)
        custom_image_id = restore_id = None
        if spec.customImageRef or spec.customImageId:
            await ctx.inventory.listed_once("images")
            if spec.customImageRef:
                custom_image_id = _resolve(ctx, obj, out, "BarrackImage", spec.customImageRef.name)
            else:
                custom_image_id = spec.customImageId
            image = ctx.inventory.images.items.get(custom_image_id or "")
            if custom_image_id is None or image is None or image.status != wire.ImageState.AVAILABLE:
                name = spec.customImageRef.name if spec.customImageRef else spec.customImageId
                unresolved.append(f"custom image {name} (Ready, and AVAILABLE on Barrack)")
                custom_image_id = None
            else:
                out.watch.add(id_key(image.id))
                source_region = (f"image {image.id}", image.region)
        if spec.restoreFrom is not None:
            source = await resolve_snapshot(
                ctx, obj, out, spec.restoreFrom.snapshotRef, spec.restoreFrom.snapshotId
            )
            restore_id = source.snapshot_id
            if restore_id is None:
                unresolved.append(source.unready or "the snapshot to restore")
            else:
                snapshot = ctx.inventory.snapshots.items[restore_id]
                source_region = (f"snapshot {restore_id}", snapshot.region)
        script_id = spec.startupScript
        if spec.startupScriptRef is not None:
            script_id = _resolve(ctx, obj, out, "BarrackStartupScript", spec.startupScriptRef.name)
            unresolved += [] if script_id else [f"BarrackStartupScript {spec.startupScriptRef.name}"]
        return InstanceInputs(key_ids, boot_volume_id, tuple(unresolved), custom_image_id, restore_id,
                              source_region, places_of(spec), script_id=script_id)  # fmt: skip

    def before_create(
        self, ctx: Context, obj: ObjectView, spec: specs.BarrackInstanceSpec, inputs: InstanceInputs
    ) -> steps.Blocked | None:
        if inputs.unresolved:
            raise Unresolved(f"{', '.join(inputs.unresolved)} not Ready yet")
        mismatch = source_region_mismatch(spec, inputs)
        if mismatch is not None:
            return mismatch
        if inputs.lifetime is not None and inputs.lifetime.expired:
            return steps.Blocked(
                Reason.LIFETIME_ENDED,
                f"spec.lifetime ended at {stamp(inputs.lifetime.expires_at)} before the instance was made: it is "
                f"not created; extend it with the annotation {EXTEND_ANNOTATION}, or delete this object",
            )
        if inputs.placement is not None and inputs.placement.index is None:
            reason = Reason.OUT_OF_STOCK if inputs.placement.refused else Reason.NO_CAPACITY
            return steps.Blocked(reason, inputs.placement.message(ctx.capacity.interval))
        return None

    def fetch(self, ctx: Context) -> Callable[[str], Awaitable[wire.VMInstance]]:
        return ctx.client.get_instance

    async def create(
        self, ctx: Context, obj: ObjectView, spec: specs.BarrackInstanceSpec, inputs: InstanceInputs
    ) -> wire.VMInstance:
        """Create at the alternative placed; one Barrack refuses as out of stock (its listing
        was a moment old) moves on to the next that fits, at once, each tried once."""
        if inputs.unresolved:
            raise Unresolved(f"{', '.join(inputs.unresolved)} not Ready yet")
        placement = inputs.placement or Placement(0)
        index = placement.index
        while True:
            assert index is not None
            try:
                made = await self._create_at(ctx, obj, spec, inputs, inputs.places[index])
            except PreconditionFailed as error:
                if error.error_code != "out_of_stock" or inputs.want is None:
                    raise
                ctx.capacity.refused(obj.uid, index)
                index = (await ctx.capacity.place(inputs.want)).index
                if index is None:
                    raise
                continue
            ctx.capacity.taken(obj.uid, index)
            return made

    async def _create_at(
        self,
        ctx: Context,
        obj: ObjectView,
        spec: specs.BarrackInstanceSpec,
        inputs: InstanceInputs,
        place: Place,
    ) -> wire.VMInstance:
        public_ip = True if spec.publicIP is None else spec.publicIP  # the default, at create only
        if inputs.restore_snapshot_id is not None:  # rules and firewalls follow, as for any instance
            return await ctx.client.restore_snapshot(
                inputs.restore_snapshot_id,
                rq.RestoreSnapshotRequest(
                    name=obj.barrack_name,
                    gpu_model=place.gpu_model,
                    gpu_count=place.gpu_count,
                    ssh_key_ids=[k for k in inputs.key_ids if k],
                    public_ip=public_ip,
                ),
            )
        image_id = spec.imageId
        if spec.image is not None:
            image_id = (await ctx.capacity.image_ids(place.region)).get(spec.image.name)
            if image_id is None:
                raise Unresolved(f"Barrack lists no OS image {spec.image.name!r} in {place.region}")
        return await ctx.client.create_instance(
            rq.DeploymentRequest(
                name=obj.barrack_name,
                region=place.region,
                gpu_model=place.gpu_model,
                gpu_count=place.gpu_count,
                image_id=image_id,
                boot_volume_id=inputs.boot_volume_id,
                custom_image_id=inputs.custom_image_id,
                ssh_key_ids=[k for k in inputs.key_ids if k],
                startup_script_id=inputs.script_id,
                cloud_init=spec.cloudInit,
                public_ip=public_ip,
                security_rules=[r.to_wire() for r in spec.securityRules or []] or None,
            )
        )

    def mismatches(self, spec: specs.BarrackInstanceSpec, item: wire.VMInstance) -> list[str]:
        if spec.placement is None:
            return differences(
                [
                    ("region", spec.region, item.region),
                    ("gpuModel", spec.gpuModel, item.gpu_model),
                    ("gpuCount", spec.gpuCount or 1, item.gpu_count),
                ]
            )
        if alternative_of(places_of(spec), item) is not None:
            return []
        return [
            f"placement: Barrack has {item.gpu_model} x{item.gpu_count} in {item.region}, none of the alternatives"
        ]

    def status(self, item: wire.VMInstance) -> dict[str, Any]:
        known = item.status in IS.__members__
        power = POWER_OF_STATE.get(IS(item.status)) if known else None
        return {
            "id": item.id,
            "state": item.status,
            "publicIP": item.public_ip,
            "privateIP": item.private_ip,
            "powerState": power.value if power else item.status.title(),
        }

    def status_of(self, ctx: Context, item: wire.VMInstance, inputs: InstanceInputs | None) -> dict[str, Any]:
        """With where the instance is: its region and GPUs, which alternative, and its price."""
        landed = Place(item.region, item.gpu_model, item.gpu_count)
        placement = {
            "region": item.region,
            "gpuModel": item.gpu_model,
            "gpuCount": item.gpu_count,
            "alternative": alternative_of(inputs.places, item) if inputs and len(inputs.places) > 1 else None,
            "hourlyPrice": ctx.capacity.hourly(landed),
        }
        status = {**self.status(item), "placement": {k: v for k, v in placement.items() if v is not None}}
        power = inputs.power if inputs else None
        status["powerSchedule"] = (
            None
            if power is None
            else {
                "name": power.schedule,
                "off": power.off,
                "effectivePowerState": power.off_state if power.off else None,
                "nextChange": stamp(power.next_change),
            }
        )
        return status

    def plan(
        self, ctx: Context, spec: specs.BarrackInstanceSpec, item: wire.VMInstance, inputs: InstanceInputs
    ) -> steps.Step:
        power = inputs.power
        wants_running = spec.powerState in (None, P.RUNNING)
        if power is not None and power.off:  # off-hours: the schedule's state, whatever the spec says
            spec = spec.model_copy(update={"powerState": power.off_state})
        ended = inputs.lifetime is not None and inputs.lifetime.expired and spec.lifetime is not None
        if (
            ended and spec.lifetime is not None and spec.lifetime.action != "Delete"
        ):  # for good, over any schedule
            spec = spec.model_copy(update={"powerState": LIFETIME_STATE[spec.lifetime.action]})
        ctx.held_off(item.id, wants_running and spec.powerState not in (None, P.RUNNING))
        return plan_instance(spec, item)

    async def reconcile(self, ctx: Context, obj: ObjectView) -> Outcome:
        out = await super().reconcile(ctx, obj)
        if not obj.spec.get("lifetime") or obj.paused or obj.observe_only:  # most instances: no second parse
            return out
        wanted = specs.Lifetime.model_validate(obj.spec["lifetime"])
        lifetime = instance_lifetime(wanted, obj, ctx.barrack_clock)
        exists = bool(out.status.get("id") or obj.recorded_id)
        report_lifetime(out, lifetime, wanted.action, exists, ctx.barrack_clock.now())
        return out

    def create_defaults(self, spec: specs.BarrackInstanceSpec) -> dict[str, Any]:
        defaults: dict[str, Any] = {}
        if spec.powerState is None:
            defaults["powerState"] = P.RUNNING.value
        if spec.publicIP is None:
            defaults["publicIP"] = True
        if spec.securityRules is None:
            defaults["securityRules"] = []
        return defaults

    def late_init(
        self, spec: specs.BarrackInstanceSpec, item: wire.VMInstance, inputs: InstanceInputs
    ) -> dict[str, Any]:
        values = late_init_instance(spec, item)
        if inputs.power is not None and inputs.power.off:
            values.pop("powerState", None)  # the schedule's state is not the instance's own
        return values

    async def act(self, ctx: Context, item: wire.VMInstance, step: steps.Call, out: Outcome) -> None:
        if isinstance(step, steps.Power):
            if step.action in ("start", "restore") and ctx.credits_depleted():
                raise CreditsDepleted(
                    f"the account's credit ran out{' and Barrack hibernated this instance' if item.status == IS.HIBERNATED else ''}: "
                    "top up the account; instances with powerState Running are restored then (no restore is "
                    "sent before: Barrack would refuse it)"
                )
            if step.action == "restore":  # billed in full again: within the account's budget?
                await ctx.admit(
                    item.id,
                    Demand("instances", gpu_model=item.gpu_model, gpu_count=item.gpu_count, hibernated=True),
                )
            ctx.inventory.record(await ctx.client.instance_action(item.id, step.action))
            out.note(
                "PowerStateChanged",
                f"Instance {item.name} ({item.id}) is {step.current}, the spec asks {step.wanted}: "
                f"{step.action} requested",
            )
        elif isinstance(step, steps.SetPublicIP):
            ctx.inventory.record(await ctx.client.set_public_ip(item.id, step.enabled))
            out.note("PublicIPChanged", f"Public IP {'enabled' if step.enabled else 'disabled'}")
        elif isinstance(step, steps.SetRules):
            for rule in step.add:
                await ctx.client.add_security_rule(item.id, rule)
            for rule_id in step.remove:
                await ctx.client.remove_security_rule(item.id, rule_id)
            ctx.inventory.nudge(["instances"])
            out.note(
                "SecurityRulesChanged", f"Security rules: {len(step.add)} added, {len(step.remove)} removed"
            )


reconcile = InstanceReconciler().reconcile


finalize = DELETIONS["BarrackInstance"].finalize
