"""The step values a kind's pure plan function returns: the one thing a reconcile pass does.

A plan looks at the spec and at what Barrack lists (never at Kubernetes or the network) and returns
one step; the frame (:mod:`barrack_operator.resources.frame`) acts on it and rebuilds every
condition from the observation and the step. Each step that calls Barrack carries ``refusal``: the
Synced reason its own 409 maps to, so a refused resize never reads as a refused attach.

    Step
    ├── Call            a Barrack mutation: Resize, Detach, Attach, Power, SetPublicIP, SetRules,
    │                   SetAttachments
    ├── Wait            nothing to do until Barrack moves (a transitional state): Ready=False with
    │                   the reason, Synced=True
    ├── Blocked         only a change (of the spec, or on Barrack) lets it go on: Ready=False and
    │                   Synced=False with the reason and a next step
    └── Done            the resource matches the spec: Ready=True
"""

from __future__ import annotations

from dataclasses import dataclass

from barrack_operator.barrack import requests as rq
from barrack_operator.conditions import Reason


@dataclass(frozen=True)
class Step:
    """One thing to do (or not) this pass."""


@dataclass(frozen=True)
class Call(Step):
    """A Barrack mutation; ``doing`` says what Barrack is then doing, for Ready=False Progressing."""

    refusal: Reason
    doing: str


@dataclass(frozen=True)
class Resize(Call):
    size_gb: int
    from_gb: int


@dataclass(frozen=True)
class Detach(Call):
    instance_id: str
    instance_label: str


@dataclass(frozen=True)
class Attach(Call):
    instance_id: str
    instance_label: str


@dataclass(frozen=True)
class Power(Call):
    action: str
    """start, stop, hibernate or restore."""
    current: str
    wanted: str


@dataclass(frozen=True)
class SetPublicIP(Call):
    enabled: bool


@dataclass(frozen=True)
class SetAttachments(Call):
    instance_ids: tuple[str, ...]
    then: Step | None = None
    """What the pass reports once the call is made (a pending reference stays Blocked)."""


@dataclass(frozen=True)
class SetRules(Call):
    add: tuple[rq.AddFirewallRuleRequest, ...]
    remove: tuple[str, ...]
    then: SetAttachments | None = None
    """The attachments set in the same pass once the rules are in (rules first: an instance is
    never attached under fewer rules than the spec's); one pass and one wait for a read instead
    of two."""


@dataclass(frozen=True)
class Wait(Step):
    reason: str
    message: str


@dataclass(frozen=True)
class Blocked(Step):
    reason: Reason
    message: str
    warn: bool = True
    """Post a Warning event (once per message); False for a wait on an object that is on its way."""


@dataclass(frozen=True)
class Done(Step):
    message: str


def resize(size_gb: int, from_gb: int) -> Resize:
    return Resize(Reason.RESIZE_BLOCKED, f"resizing to {size_gb} GB", size_gb, from_gb)


def detach(instance_id: str, label: str) -> Detach:
    return Detach(Reason.DETACH_BLOCKED, "detaching", instance_id, label)


def attach(instance_id: str, label: str) -> Attach:
    return Attach(Reason.ATTACH_BLOCKED, "attaching", instance_id, label)


def power(action: str, current: str, wanted: str) -> Power:
    return Power(
        Reason.POWER_BLOCKED, f"moving the instance toward {wanted} ({action})", action, current, wanted
    )


def set_public_ip(enabled: bool) -> SetPublicIP:
    return SetPublicIP(Reason.PRECONDITION_FAILED, "changing the public IP", enabled)


def set_rules(
    add: list[rq.AddFirewallRuleRequest], remove: list[str], what: str, then: SetAttachments | None = None
) -> SetRules:
    """Rule changes; with ``then``, an attach after them, whose refusal (an instance no longer
    ACTIVE) is the one a rule call cannot meet."""
    if then is None:
        return SetRules(Reason.PRECONDITION_FAILED, f"updating {what}", tuple(add), tuple(remove))
    return SetRules(then.refusal, f"updating {what}, then {then.doing}", tuple(add), tuple(remove), then)


def set_attachments(instance_ids: set[str], then: Step | None = None) -> SetAttachments:
    return SetAttachments(Reason.ATTACH_BLOCKED, "applying attachments", tuple(sorted(instance_ids)), then)
