"""BarrackFirewall: create, keep the rules as a set, attach to the referenced instances once they
are ACTIVE (Barrack attaches only to ACTIVE instances of the firewall's region), and detach from
every instance before deleting. Attach sends the complete set of instances, so while any reference
is pending no instance attached now is left out of it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from barrack_operator.barrack import models as wire
from barrack_operator.barrack import requests as rq
from barrack_operator.conditions import Reason
from barrack_operator.resources import specs, steps
from barrack_operator.resources.deletion import DELETIONS
from barrack_operator.resources.frame import KindReconciler
from barrack_operator.resources.guard import differences
from barrack_operator.resources.model import Context, ObjectView, Outcome, RefInfo, id_key, ref_key
from barrack_operator.resources.rules import security_rule_plan

FS, IS = wire.FirewallState, wire.InstanceState


@dataclass(frozen=True)
class FirewallInputs:
    """Each instanceRef with what the operator knows of its object (None: no such object), and the
    instances as Barrack lists them."""

    refs: tuple[tuple[str, RefInfo | None], ...]
    instances: Mapping[str, wire.VMInstance]


def plan_firewall(
    spec: specs.BarrackFirewallSpec, firewall: wire.Firewall, inputs: FirewallInputs
) -> steps.Step:
    """Rules first, then attachments, in the same pass when both change."""
    add, remove = security_rule_plan(spec.rules or [], firewall.rules) if spec.rules is not None else ([], [])
    after = _attachments_plan(firewall, inputs)
    if add or remove:
        return steps.set_rules(
            add, remove, "firewall rules", after if isinstance(after, steps.SetAttachments) else None
        )
    return after


def _attachments_plan(firewall: wire.Firewall, inputs: FirewallInputs) -> steps.Step:
    attached = {a.instance_id for a in firewall.attachments}
    wanted: set[str] = set()
    waiting: list[str] = []
    unresolved: list[str] = []
    elsewhere: list[str] = []
    for name, info in inputs.refs:
        if info is None or not info.id:
            unresolved.append(
                f"{name} ({'no such BarrackInstance' if info is None else 'no Barrack id yet'})"
            )
            continue
        instance = inputs.instances.get(info.id)
        if instance is not None and instance.region != firewall.region and info.id not in attached:
            elsewhere.append(
                f"{name} ({info.id}) is in {instance.region}"
            )  # a placed instance may land there
            continue
        if info.id in attached or (instance is not None and instance.status == IS.ACTIVE):
            wanted.add(info.id)
        else:
            state = instance.status if instance is not None else "unknown"
            waiting.append(f"{name} ({info.id}) is {state}")
    then: steps.Step | None = None
    if elsewhere:
        then = steps.Blocked(
            Reason.INVALID_SPEC,
            f"firewall {firewall.id} is in {firewall.region} and Barrack attaches it only there: {'; '.join(elsewhere)}; "
            "give such an instance a firewall of its region (one per region a placed instance may land in)",
        )
    elif unresolved:
        wanted |= attached  # an instance attached now may be the one a pending reference names
        then = steps.Blocked(
            Reason.REFERENCE_NOT_READY,
            f"waiting for instanceRefs {'; '.join(unresolved)}; every instance attached now stays attached "
            "until they resolve",
        )
    elif waiting:
        then = steps.Wait(
            Reason.ATTACH_BLOCKED,
            f"attach needs ACTIVE instances: {'; '.join(waiting)}; the operator attaches each once it is",
        )
    if wanted != attached:
        return steps.set_attachments(wanted, then)
    if then is not None:
        return then
    if any(wire.is_transitional(FS, a.status) for a in firewall.attachments):
        return steps.Wait(Reason.PROGRESSING, "Barrack is applying the firewall's attachments.")
    return steps.Done(f"Firewall {firewall.id} is {firewall.status}.")


class FirewallReconciler(KindReconciler[specs.BarrackFirewallSpec, wire.Firewall, FirewallInputs]):
    what = "firewall"
    spec_model = specs.BarrackFirewallSpec
    states = FS
    holds_data = False

    async def observe(
        self, ctx: Context, obj: ObjectView, spec: specs.BarrackFirewallSpec, out: Outcome
    ) -> FirewallInputs:
        await ctx.inventory.listed_once("instances")
        refs = []
        for ref in spec.instanceRefs:
            out.watch.add(ref_key("BarrackInstance", obj.namespace, ref.name))
            info = ctx.refs.get("BarrackInstance", obj.namespace, ref.name)
            if info is not None and info.id:
                out.watch.add(id_key(info.id))
            refs.append((ref.name, info))
        return FirewallInputs(tuple(refs), ctx.inventory.instances.items)

    def fetch(self, ctx: Context) -> Callable[[str], Awaitable[wire.Firewall]]:
        return ctx.client.get_firewall

    async def create(
        self, ctx: Context, obj: ObjectView, spec: specs.BarrackFirewallSpec, inputs: FirewallInputs
    ) -> wire.Firewall:
        request = rq.CreateFirewallRequest(
            name=obj.barrack_name, region=spec.region, description=spec.description or None
        )
        return await ctx.client.create_firewall(request)

    def mismatches(self, spec: specs.BarrackFirewallSpec, item: wire.Firewall) -> list[str]:
        return differences([("region", spec.region, item.region)])

    def status(self, item: wire.Firewall) -> dict[str, Any]:
        return {
            "id": item.id,
            "state": item.status,
            "attachedInstanceIds": [a.instance_id for a in item.attachments],
            "ruleIds": [r.id for r in item.rules if r.id],
        }

    def plan(
        self, ctx: Context, spec: specs.BarrackFirewallSpec, item: wire.Firewall, inputs: FirewallInputs
    ) -> steps.Step:
        return plan_firewall(spec, item, inputs)

    def create_defaults(self, spec: specs.BarrackFirewallSpec) -> dict[str, Any]:
        return {"rules": []} if spec.rules is None else {}

    def late_init(
        self, spec: specs.BarrackFirewallSpec, item: wire.Firewall, inputs: FirewallInputs
    ) -> dict[str, Any]:
        return {"rules": specs.rules_as_spec(item.rules)} if spec.rules is None else {}

    async def act(self, ctx: Context, item: wire.Firewall, step: steps.Call, out: Outcome) -> None:
        if isinstance(step, steps.SetRules):
            for rule in step.add:
                await ctx.client.add_firewall_rule(item.id, rule)
            for rule_id in step.remove:
                await ctx.client.remove_firewall_rule(item.id, rule_id)
            out.note("RulesChanged", f"Firewall rules: {len(step.add)} added, {len(step.remove)} removed")
            # The next pass waits for a read of the firewall asked for after these replies.
            if step.then is not None:
                await self._attach(ctx, item, step.then, out)
        elif isinstance(step, steps.SetAttachments):
            await self._attach(ctx, item, step, out)

    @staticmethod
    async def _attach(ctx: Context, item: wire.Firewall, step: steps.SetAttachments, out: Outcome) -> None:
        ctx.inventory.record(await ctx.client.attach_firewall(item.id, list(step.instance_ids)))
        out.note(
            "AttachmentsChanged", f"Firewall attached to {', '.join(step.instance_ids) or 'no instance'}"
        )


reconcile = FirewallReconciler().reconcile


finalize = DELETIONS["BarrackFirewall"].finalize
