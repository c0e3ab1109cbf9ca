"""BarrackSSHKey: register the public key; delete it on request (Barrack refuses while an active
instance uses it, which is DeletionBlocked until that instance goes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from barrack_operator.barrack import models as wire
from barrack_operator.barrack import requests as rq
from barrack_operator.resources import specs, steps
from barrack_operator.resources.deletion import DELETIONS
from barrack_operator.resources.frame import KindReconciler
from barrack_operator.resources.model import Context, ObjectView, Outcome


def plan_ssh_key(spec: specs.BarrackSSHKeySpec, key: wire.SSHKey) -> steps.Step:
    return steps.Done(f"SSH key {key.id} is registered.")


def same_key(a: str, b: str) -> bool:
    """Two OpenSSH public keys are the same key when type and key data agree (comments aside)."""
    return a.split()[:2] == b.split()[:2]


class SSHKeyReconciler(KindReconciler[specs.BarrackSSHKeySpec, wire.SSHKey, None]):
    what = "SSH key"
    spec_model = specs.BarrackSSHKeySpec
    holds_data = False

    async def observe(
        self, ctx: Context, obj: ObjectView, spec: specs.BarrackSSHKeySpec, out: Outcome
    ) -> None:
        return None

    def fetch(self, ctx: Context) -> Callable[[str], Awaitable[wire.SSHKey]]:
        return ctx.client.get_ssh_key

    async def create(
        self, ctx: Context, obj: ObjectView, spec: specs.BarrackSSHKeySpec, inputs: None
    ) -> wire.SSHKey:
        return await ctx.client.create_ssh_key(
            rq.CreateSSHKeyRequest(name=obj.barrack_name, public_key=spec.publicKey)
        )

    def mismatches(self, spec: specs.BarrackSSHKeySpec, item: wire.SSHKey) -> list[str]:
        if same_key(spec.publicKey, item.public_key):
            return []
        return [
            f"publicKey: spec {' '.join(spec.publicKey.split()[:2])[:40]}..., Barrack {item.fingerprint or 'another key'}"
        ]

    def status(self, item: wire.SSHKey) -> dict[str, Any]:
        return {"id": item.id, "state": item.status, "fingerprint": item.fingerprint}

    def plan(
        self, ctx: Context, spec: specs.BarrackSSHKeySpec, item: wire.SSHKey, inputs: None
    ) -> steps.Step:
        return plan_ssh_key(spec, item)

    async def act(self, ctx: Context, item: wire.SSHKey, step: steps.Call, out: Outcome) -> None:
        raise AssertionError(f"an SSH key has no {type(step).__name__} step")


reconcile = SSHKeyReconciler().reconcile


finalize = DELETIONS["BarrackSSHKey"].finalize
