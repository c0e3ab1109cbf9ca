"""BarrackInstance: create from an image or a boot volume once its SSH keys are Ready, walk the
power state (start, stop, hibernate, restore) toward the spec, keep the public IP and security
rules as declared, and delete on request.

Power moves, from Barrack's rules: start from SHUTOFF; stop and hibernate from ACTIVE; restore
from HIBERNATED. A move that needs two steps (SHUTOFF to HIBERNATED) takes the first and comes back.
"""

from __future__ import annotations

from barrack_operator.barrack import BarrackError, PreconditionFailed
from barrack_operator.barrack import models as wire
from barrack_operator.barrack.credentials import MissingApiKey
from barrack_operator.conditions import Reason
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
    waiting_on_state,
)

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


def security_rule_plan(
    wanted: list[specs.RuleSpec], actual: list[wire.FirewallRule]
) -> tuple[list[wire.AddFirewallRuleRequest], list[str]]:
    """Rules to add and rule ids to remove so that ``actual`` equals ``wanted`` as a set."""
    wanted_wire = {wire.FirewallRule(**r.to_wire().model_dump()).identity(): r.to_wire() for r in wanted}
    actual_by_identity: dict[tuple[object, ...], list[str]] = {}
    for rule in actual:
        actual_by_identity.setdefault(rule.identity(), []).append(rule.id or "")
    add = [rule for identity, rule in wanted_wire.items() if identity not in actual_by_identity]
    remove = [
        rid
        for identity, ids in actual_by_identity.items()
        for rid in (ids if identity not in wanted_wire else ids[1:])
    ]
    return add, remove


async def reconcile(ctx: Context, obj: ObjectView) -> Outcome:
    out = Outcome()
    spec = specs.BarrackInstanceSpec.model_validate(obj.spec)

    key_ids = [_resolve(ctx, obj, out, "BarrackSSHKey", ref.name) for ref in spec.sshKeyRefs]
    boot_volume_id = (
        _resolve(ctx, obj, out, "BarrackVolume", spec.bootVolumeRef.name) if spec.bootVolumeRef else None
    )
    unresolved = [ref.name for ref, key in zip(spec.sshKeyRefs, key_ids, strict=True) if key is None]

    async def deploy() -> wire.VMInstance:
        if unresolved:
            raise _NotReady(f"BarrackSSHKey {', '.join(unresolved)} not Ready yet")
        if spec.bootVolumeRef and boot_volume_id is None:
            raise _NotReady(f"boot BarrackVolume {spec.bootVolumeRef.name} not Ready yet")
        return await ctx.client.create_instance(
            wire.DeploymentRequest(
                name=obj.barrack_name,
                region=spec.region,
                gpu_model=spec.gpuModel,
                gpu_count=spec.gpuCount,
                image_id=spec.imageId,
                boot_volume_id=boot_volume_id,
                ssh_key_ids=[k for k in key_ids if k],
                startup_script_id=spec.startupScript,
                cloud_init=spec.cloudInit,
                public_ip=spec.publicIP,
                security_rules=[r.to_wire() for r in spec.securityRules] or None,
            )
        )

    try:
        found = await ensure_exists(
            ctx, obj, lambda: ctx.inventory.instances, ctx.client.get_instance, deploy
        )
    except _NotReady as exc:
        return blocked(
            out, Reason.REFERENCE_NOT_READY, f"{exc}; the instance is created once it is", ctx.timing
        )
    except PreconditionFailed as error:
        stock = error.error_code == "out_of_stock"
        message = f"Barrack cannot create the instance now: {error.message}. " + (
            "Choose another gpuModel, gpuCount or region, or wait for stock" if stock else "Fix what it names"
        )
        out = blocked(out, Reason.OUT_OF_STOCK if stock else Reason.CREATE_BLOCKED, message, ctx.timing)
        out.backoff = True
        return out
    except (BarrackError, MissingApiKey) as error:
        return failed(out, error, ctx.timing)
    instance: wire.VMInstance = found.item
    out.watch.add(id_key(instance.id))
    power = POWER_OF_STATE.get(IS(instance.status)) if instance.status in IS.__members__ else None
    out.status = {
        "id": instance.id,
        "state": instance.status,
        "publicIP": instance.public_ip,
        "privateIP": instance.private_ip,
        "powerState": power.value if power else instance.status.title(),
    }
    if found.created:
        out.note("Created", f"Created Barrack instance {instance.id}")
    if wire.is_transitional(IS, instance.status):
        return waiting_on_state(out, "instance", instance.status, ctx.timing)
    if instance.status == IS.ERROR:
        return blocked(
            out,
            Reason.PRECONDITION_FAILED,
            f"instance {instance.id} is in ERROR on Barrack: delete and recreate it",
            ctx.timing,
        )
    try:
        return await _converge(ctx, spec, instance, out)
    except (BarrackError, MissingApiKey) as error:
        return failed(out, error, ctx.timing)


class _NotReady(Exception):
    pass


async def _converge(
    ctx: Context, spec: specs.BarrackInstanceSpec, instance: wire.VMInstance, out: Outcome
) -> Outcome:
    wanted = TARGET_STATE[P(spec.powerState)]
    current = IS(instance.status)
    if current != wanted:
        action = NEXT_POWER_ACTION[(current, wanted)]
        ctx.inventory.record(await ctx.client.instance_action(instance.id, action))
        out.note(
            "PowerStateChanged",
            f"Instance {instance.name} ({instance.id}) is {current}, the spec asks {spec.powerState}: {action} requested",
        )
        return progressing(out, ctx.timing, f"moving the instance toward {wanted} ({action})")
    if current == IS.ACTIVE and (instance.public_ip is not None) != spec.publicIP:
        ctx.inventory.record(await ctx.client.set_public_ip(instance.id, spec.publicIP))
        out.note("PublicIPChanged", f"Public IP {'enabled' if spec.publicIP else 'disabled'}")
        return progressing(out, ctx.timing, "changing the public IP")
    add, remove = security_rule_plan(spec.securityRules, instance.security_rules)
    for rule in add:
        await ctx.client.add_security_rule(instance.id, rule)
    for rule_id in remove:
        await ctx.client.remove_security_rule(instance.id, rule_id)
    if add or remove:
        ctx.inventory.nudge()
        out.note("SecurityRulesChanged", f"Security rules: {len(add)} added, {len(remove)} removed")
        return progressing(out, ctx.timing, "updating security rules")
    return available(out, ctx.timing, f"Instance {instance.id} is {instance.status}.")


async def finalize(ctx: Context, obj: ObjectView) -> Outcome:
    async def steps(out: Outcome) -> Outcome:
        instance = await find_for_deletion(ctx, obj, lambda: ctx.inventory.instances, ctx.client.get_instance)
        if instance is None:
            out.done = True
            return out
        out.status = {"id": instance.id, "state": instance.status}
        if wire.is_transitional(IS, instance.status):
            return waiting_on_state(out, "instance", instance.status, ctx.timing)
        await ctx.client.delete_instance(instance.id)
        out.note("Deleting", f"Deleting Barrack instance {instance.id}")
        return waiting_on_state(out, "instance", IS.DELETING, ctx.timing)

    return await finalize_guarded(ctx, obj, steps)
