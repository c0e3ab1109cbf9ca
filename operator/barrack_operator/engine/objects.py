"""How the engine names and reads an object: the operator's annotations and finalizers, the object
view a pass works on, and its reference in events and log lines."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from barrack_operator.accounts import AccountRuntime
from barrack_operator.conditions import READY, SYNCED, Condition, Reason
from barrack_operator.listings import LISTING_OF
from barrack_operator.resources.common import complete_status
from barrack_operator.resources.kinds import Kind
from barrack_operator.resources.lifetime import EXTEND_ANNOTATION
from barrack_operator.resources.model import (
    PAUSED_ANNOTATION,
    RECONCILE_REQUESTED_ANNOTATION,
    RECREATE_ANNOTATION,
    Context,
    ObjectView,
    Outcome,
    Timing,
)
from barrack_operator.resources.specs import GROUP, VERSION

CREATE_REQUESTED_ANNOTATION = f"{GROUP}/create-requested"
"""On an object: the Barrack name the operator asked Barrack to create a resource under."""
FINALIZER = f"{GROUP}/finalizer"
"""The operator's finalizer. An object gets it in the write that marks its first create (one write
for both), or, when it names a Barrack resource already (an adoptId, a recorded id), before its
first reconcile; an object that never asked Barrack for anything has none and goes at once when
deleted. The finalizer pass removes it once the Barrack side is settled."""
KOPF_FINALIZER = f"{GROUP}/kopf-finalizer"
"""Kopf's own finalizer name. No kind needs it now (every kind is served by the work queue); an
earlier release put it on snapshot schedules for their kopf daemon, and a schedule's pass takes
it off. It differs from :data:`FINALIZER`, which kopf would otherwise take for its own."""
Reconciler = Callable[[Context, ObjectView], Awaitable[Outcome]]


def view(kind: Kind, body: Mapping[str, Any]) -> ObjectView:
    meta = body.get("metadata", {})
    annotations = meta.get("annotations") or {}
    return ObjectView(
        kind=kind.kind,
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        uid=meta.get("uid", ""),
        generation=int(meta.get("generation", 0)),
        spec=dict(body.get("spec", {})),
        status=dict(body.get("status") or {}),
        create_requested_name=annotations.get(CREATE_REQUESTED_ANNOTATION),
        recreate_requested=annotations.get(RECREATE_ANNOTATION) == "true",
        paused=annotations.get(PAUSED_ANNOTATION) == "true",
        reconcile_requested_at=annotations.get(RECONCILE_REQUESTED_ANNOTATION),
        finalizers=tuple(meta.get("finalizers") or ()),
        resource_version=str(meta.get("resourceVersion", "")),
        created_at=str(meta.get("creationTimestamp") or ""),
        extend_lifetime=annotations.get(EXTEND_ANNOTATION),
    )


def object_ref(obj: ObjectView) -> dict[str, Any]:
    """``extra`` for a log line about an object: kopf's formatters print the reference (the JSON
    format as ``object``, the plain one as a ``[namespace/name]`` prefix)."""
    return {"k8s_ref": involved_ref(obj)}


def involved_ref(obj: ObjectView) -> dict[str, str]:
    """The object as an event's involvedObject (and a log line's reference) names it."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": obj.kind,
        "namespace": obj.namespace,
        "name": obj.name,
        "uid": obj.uid,
    }


def waits_for(outcome: Outcome) -> str:
    """What a deletion that is not done waits for, in words: what blocks it (Synced=False), else
    the state it waits out (Ready=False, a transition such as DELETING)."""
    for type_ in (SYNCED, READY):
        found = next((c for c in outcome.conditions if c.type == type_ and not c.status), None)
        if found is not None:
            return f"{found.message.rstrip('.')} ({found.reason})"
    return "Barrack to answer for this object's resource (no condition says more)"


async def paused_outcome(
    reconcile: Reconciler,
    obj: ObjectView,
    account: AccountRuntime | Outcome,
    finalizing: bool,
    timing: Timing,
) -> Outcome:
    """Synced=False ReconcilePaused; outside a deletion, Ready as the frame's read-only pass
    finds it (the spec compared with the inventory, no call)."""
    out = Outcome()
    if (
        not finalizing
        and isinstance(account, AccountRuntime)
        and account.inventory.listing_error(LISTING_OF[obj.kind]) is None
    ):
        out = complete_status(account.context, obj, await reconcile(account.context, obj))
    out.requeue_after = timing.blocked_requeue
    message = (
        f"reconciling is paused by the annotation {PAUSED_ANNOTATION}: no Barrack call is made for this "
        "object, deletion included; remove the annotation to resume"
    )
    out.conditions.append(Condition(SYNCED, False, Reason.RECONCILE_PAUSED, message))
    return out
