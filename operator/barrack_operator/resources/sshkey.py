"""BarrackSSHKey: register the public key; delete it on request (Barrack refuses while an active
instance uses it, which is DeletionBlocked until that instance goes)."""

from __future__ import annotations

from barrack_operator.barrack import BarrackError
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
)


async def reconcile(ctx: Context, obj: ObjectView) -> Outcome:
    out = Outcome()
    spec = specs.BarrackSSHKeySpec.model_validate(obj.spec)

    async def create() -> wire.SSHKey:
        return await ctx.client.create_ssh_key(
            wire.CreateSSHKeyRequest(name=obj.barrack_name, public_key=spec.publicKey)
        )

    try:
        found = await ensure_exists(ctx, obj, lambda: ctx.inventory.ssh_keys, ctx.client.get_ssh_key, create)
    except (BarrackError, MissingApiKey) as error:
        return failed(out, error, ctx.timing)
    key: wire.SSHKey = found.item
    out.watch.add(id_key(key.id))
    out.status = {"id": key.id, "state": key.status, "fingerprint": key.fingerprint}
    if found.created:
        out.note("Created", f"Created Barrack SSH key {key.id}")
    if key.public_key.split()[:2] != spec.publicKey.split()[:2]:
        return blocked(
            out, Reason.INVALID_SPEC, f"SSH key {key.id} on Barrack holds another public key", ctx.timing
        )
    return available(out, ctx.timing, f"SSH key {key.id} is registered.")


async def finalize(ctx: Context, obj: ObjectView) -> Outcome:
    async def steps(out: Outcome) -> Outcome:
        key = await find_for_deletion(ctx, obj, lambda: ctx.inventory.ssh_keys, ctx.client.get_ssh_key)
        if key is not None:
            await ctx.client.delete_ssh_key(key.id)
            ctx.inventory.ssh_keys.items.pop(key.id, None)
        out.done = True
        return out

    return await finalize_guarded(ctx, obj, steps)
