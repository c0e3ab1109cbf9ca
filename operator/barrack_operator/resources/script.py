"""BarrackStartupScript: a script on Barrack (contract section 8), its content inline or read from a
ConfigMap key. A change of content or description updates it on Barrack; an instance runs its
script once, at first boot, so the change affects only instances created afterwards, as the
event says. It is deleted only once no instance not yet deleted was created with it
(``DeletionBlocked`` naming them: Barrack refuses with ``script_in_use``)."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from barrack_operator.barrack import models as wire
from barrack_operator.barrack import requests as rq
from barrack_operator.conditions import Reason
from barrack_operator.resources import steps
from barrack_operator.resources.deletion import DELETIONS, script_users
from barrack_operator.resources.frame import KindReconciler
from barrack_operator.resources.model import Context, ObjectView, Outcome
from barrack_operator.resources.script_spec import BarrackStartupScriptSpec


@dataclass(frozen=True)
class ScriptInputs:
    content: str | None
    """The content the spec asks for; None while its ConfigMap key cannot be read."""
    missing: str | None = None
    """Why the content cannot be read (the ConfigMap or its key is missing)."""


@dataclass(frozen=True)
class UpdateScript(steps.Call):
    content: str | None
    description: str | None


def sha256(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()


def plan_script(spec: BarrackStartupScriptSpec, item: wire.Script, inputs: ScriptInputs) -> steps.Step:
    if inputs.content is None:
        return steps.Blocked(
            Reason.REFERENCE_NOT_READY, f"{inputs.missing}; the script on Barrack is kept as it is"
        )
    content = inputs.content if inputs.content != item.content else None
    description = spec.description if spec.description != item.description else None
    if content is None and description is None:
        return steps.Done(f"Startup script {item.id} holds the spec's content.")
    return UpdateScript(Reason.PRECONDITION_FAILED, "updating the script", content, description)


async def script_content(ctx: Context, obj: ObjectView, spec: BarrackStartupScriptSpec) -> ScriptInputs:
    if spec.contentFrom is None:
        return ScriptInputs(spec.content or "")
    ref = spec.contentFrom.configMapKeyRef
    data = await ctx.read_config_map(obj.namespace, ref.name)
    if data is None:
        return ScriptInputs(None, f"ConfigMap {ref.name} does not exist in {obj.namespace}")
    if ref.key not in data:
        return ScriptInputs(None, f"ConfigMap {ref.name} has no key {ref.key!r}")
    return ScriptInputs(data[ref.key])


class ScriptReconciler(KindReconciler[BarrackStartupScriptSpec, wire.Script, ScriptInputs]):
    what = "startup script"
    spec_model = BarrackStartupScriptSpec
    holds_data = False

    async def observe(
        self, ctx: Context, obj: ObjectView, spec: BarrackStartupScriptSpec, out: Outcome
    ) -> ScriptInputs:
        return await script_content(ctx, obj, spec)

    def before_create(
        self, ctx: Context, obj: ObjectView, spec: BarrackStartupScriptSpec, inputs: ScriptInputs
    ) -> steps.Blocked | None:
        if inputs.content is None:
            return steps.Blocked(
                Reason.REFERENCE_NOT_READY, f"{inputs.missing}; nothing is created until it is"
            )
        return None

    def fetch(self, ctx: Context) -> Callable[[str], Awaitable[wire.Script]]:
        return ctx.client.get_script

    async def create(
        self, ctx: Context, obj: ObjectView, spec: BarrackStartupScriptSpec, inputs: ScriptInputs
    ) -> wire.Script:
        request = rq.CreateScriptRequest(name=obj.barrack_name, content=inputs.content or "",
                                         description=spec.description or None)  # fmt: skip
        return await ctx.client.create_script(request)

    def status(self, item: wire.Script) -> dict[str, Any]:
        return {"id": item.id, "state": item.status, "contentSHA256": sha256(item.content),
                "updatedAt": item.updated_at}  # fmt: skip

    def status_of(self, ctx: Context, item: wire.Script, inputs: ScriptInputs | None) -> dict[str, Any]:
        return {**self.status(item), "usedBy": script_users(ctx, item.id)}

    def plan(
        self, ctx: Context, spec: BarrackStartupScriptSpec, item: wire.Script, inputs: ScriptInputs
    ) -> steps.Step:
        return plan_script(spec, item, inputs)

    async def act(self, ctx: Context, item: wire.Script, step: steps.Call, out: Outcome) -> None:
        assert isinstance(step, UpdateScript), step
        updated = await ctx.client.update_script(item.id, rq.UpdateScriptRequest(content=step.content,
                                                                                  description=step.description))  # fmt: skip
        ctx.inventory.record(updated)
        what = "content and description" if step.content is not None and step.description is not None else (
            "content" if step.content is not None else "description")  # fmt: skip
        out.note("Updated", f"Updated the {what} of startup script {item.id}: instances created from now on run it; "
                            "those made before ran theirs at first boot and are not changed")  # fmt: skip


reconcile = ScriptReconciler().reconcile


finalize = DELETIONS["BarrackStartupScript"].finalize
