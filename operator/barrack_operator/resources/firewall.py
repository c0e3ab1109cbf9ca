"""BarrackFirewall: create, keep the rules as a set, attach to the referenced instances once they
are ACTIVE (Barrack attaches only to ACTIVE instances of the firewall's region), and detach from
every instance before deleting."""

from __future__ import annotations

from barrack_operator.barrack import BarrackError, PreconditionFailed
from barrack_operator.barrack import models as wire
from barrack_operator.barrack.credentials import MissingApiKey
from barrack_operator.conditions import READY, Condition, Reason
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
from barrack_operator.resources.instance import security_rule_plan

FS, IS = wire.FirewallState, wire.InstanceState


async def reconcile(ctx: Context, obj: ObjectView) -> Outcome:
    out = Outcome()
    spec = specs.BarrackFirewallSpec.model_validate(obj.spec)

    async def create() -> wire.Firewall:
        request = wire.CreateFirewallRequest(
            name=obj.barrack_name, region=spec.region, description=spec.description or None
        )
        return await ctx.client.create_firewall(request)

    try:
        found = await ensure_exists(
            ctx, obj, lambda: ctx.inventory.firewalls, ctx.client.get_firewall, create
        )
        firewall: wire.Firewall = found.item
        out.watch.add(id_key(firewall.id))
        out.status = {
            "id": firewall.id,
            "state": firewall.status,
            "attachedInstanceIds": [a.instance_id for a in firewall.attachments],
            "ruleIds": [r.id for r in firewall.rules if r.id],
        }
        if found.created:
            out.note("Created", f"Created Barrack firewall {firewall.id}")
        if wire.is_transitional(FS, firewall.status):
            return waiting_on_state(out, "firewall", firewall.status, ctx.timing)
        return await _converge(ctx, obj, spec, firewall, out)
    except PreconditionFailed as error:
        return failed(out, error, ctx.timing, blocked=Reason.ATTACH_BLOCKED)
    except (BarrackError, MissingApiKey) as error:
        return failed(out, error, ctx.timing)


async def _converge(
    ctx: Context, obj: ObjectView, spec: specs.BarrackFirewallSpec, firewall: wire.Firewall, out: Outcome
) -> Outcome:
    add, remove = security_rule_plan(spec.rules, firewall.rules)
    for rule in add:
        await ctx.client.add_firewall_rule(firewall.id, rule)
    for rule_id in remove:
        await ctx.client.remove_firewall_rule(firewall.id, rule_id)
    if add or remove:
        out.note("RulesChanged", f"Firewall rules: {len(add)} added, {len(remove)} removed")
        ctx.inventory.record(await ctx.client.get_firewall(firewall.id))

    attached = {a.instance_id for a in firewall.attachments}
    wanted: set[str] = set()
    waiting: list[str] = []
    unresolved: list[str] = []
    for ref in spec.instanceRefs:
        out.watch.add(ref_key("BarrackInstance", obj.namespace, ref.name))
        info = ctx.refs.get("BarrackInstance", obj.namespace, ref.name)
        if info is None or not info.id:
            unresolved.append(
                f"{ref.name} ({'no such BarrackInstance' if info is None else 'no Barrack id yet'})"
            )
            continue
        out.watch.add(id_key(info.id))
        instance = ctx.inventory.instances.items.get(info.id)
        if info.id in attached:
            wanted.add(info.id)
        elif instance is None or instance.status != IS.ACTIVE:
            state = instance.status if instance is not None else "unknown"
            waiting.append(f"{ref.name} ({info.id}) is {state}")
        else:
            wanted.add(info.id)
    if unresolved:
        # Attach sends the complete set: an instance attached now may be the one a pending reference
        # names, so none is left out (detached) until every reference resolves.
        wanted |= attached
    if wanted != attached:
        ctx.inventory.record(await ctx.client.attach_firewall(firewall.id, sorted(wanted)))
        out.note("AttachmentsChanged", f"Firewall attached to {', '.join(sorted(wanted)) or 'no instance'}")
    if unresolved:
        message = (
            f"waiting for instanceRefs {'; '.join(unresolved)}; every instance attached now stays "
            "attached until they resolve"
        )
        return blocked(out, Reason.REFERENCE_NOT_READY, message, ctx.timing)
    if waiting:
        message = (
            f"attach needs ACTIVE instances: {'; '.join(waiting)}; the operator attaches each once it is"
        )
        out.conditions.append(Condition(READY, False, Reason.ATTACH_BLOCKED, message))
        synced(out)
        out.requeue_after = ctx.timing.transition_requeue
        return out
    moving = [a.instance_id for a in firewall.attachments if wire.is_transitional(FS, a.status)]
    if moving or wanted != attached or add or remove:
        return progressing(out, ctx.timing, "applying rules and attachments")
    return available(out, ctx.timing, f"Firewall {firewall.id} is {firewall.status}.")


async def finalize(ctx: Context, obj: ObjectView) -> Outcome:
    async def steps(out: Outcome) -> Outcome:
        firewall = await find_for_deletion(ctx, obj, lambda: ctx.inventory.firewalls, ctx.client.get_firewall)
        if firewall is None:
            out.done = True
            return out
        if firewall.attachments:
            ctx.inventory.record(await ctx.client.attach_firewall(firewall.id, []))
            out.note("Detaching", f"Detaching firewall {firewall.id} from every instance before deleting it")
        await ctx.client.delete_firewall(firewall.id)
        ctx.inventory.firewalls.items.pop(firewall.id, None)
        out.note("Deleted", f"Deleted Barrack firewall {firewall.id}")
        out.done = True
        return out

    return await finalize_guarded(ctx, obj, steps)
