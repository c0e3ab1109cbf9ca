"""Security rules as a set, the one rule an instance's own rules and a firewall's share: what to
add and what to remove so that Barrack's rules equal the spec's (duplicates on Barrack removed)."""

from __future__ import annotations

from barrack_operator.barrack import models as wire
from barrack_operator.barrack import requests as rq
from barrack_operator.resources import specs


def security_rule_plan(
    wanted: list[specs.RuleSpec], actual: list[wire.FirewallRule]
) -> tuple[list[rq.AddFirewallRuleRequest], list[str]]:
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
