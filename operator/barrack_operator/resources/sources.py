"""What an instance or an image is made from, resolved the same way for both: a snapshot named by
reference or by id, usable once Barrack says SUCCESS (a BarrackImage's source and a restore's)."""

from __future__ import annotations

from dataclasses import dataclass

from barrack_operator.barrack import models as wire
from barrack_operator.resources import specs
from barrack_operator.resources.model import Context, ObjectView, Outcome, RefInfo, id_key, ref_key

SS = wire.SnapshotState


@dataclass(frozen=True)
class SnapshotSource:
    """The snapshot the spec names: its id (None while its BarrackSnapshot has none or is not
    Ready) and why it cannot be used yet, if it cannot."""

    snapshot_id: str | None
    unready: str | None


async def resolve_snapshot(
    ctx: Context, obj: ObjectView, out: Outcome, ref: specs.LocalRef | None, snapshot_id: str | None
) -> SnapshotSource:
    """Resolve a snapshot named by reference or id to a SUCCESS snapshot's id, watching it; a
    BarrackImage's source and a restore's alike."""
    await ctx.inventory.listed_once("snapshots")
    info = None
    if ref is not None:
        out.watch.add(ref_key("BarrackSnapshot", obj.namespace, ref.name))
        info = ctx.refs.get("BarrackSnapshot", obj.namespace, ref.name)
        snapshot_id = info.id if info is not None and info.ready else None
    if snapshot_id is not None:
        out.watch.add(id_key(snapshot_id))
    listing = ctx.inventory.snapshots
    found = listing.items.get(snapshot_id) if snapshot_id else None
    return snapshot_source(ref, info, snapshot_id, found, listing.ok)


def snapshot_source(
    ref: specs.LocalRef | None,
    info: RefInfo | None,
    snapshot_id: str | None,
    snapshot: wire.Snapshot | None,
    listed: bool,
) -> SnapshotSource:
    """The decision of :func:`resolve_snapshot`: a referenced BarrackSnapshot must be Ready with an
    id; the snapshot must be listed, and SUCCESS."""
    if ref is not None and (info is None or not info.id or not info.ready):
        return SnapshotSource(None, f"BarrackSnapshot {ref.name} is not Ready yet")
    assert snapshot_id is not None
    if snapshot is None:
        if not listed:
            return SnapshotSource(None, "Barrack's snapshots are not listed yet")
        return SnapshotSource(None, f"Barrack lists no snapshot {snapshot_id} in this account")
    if snapshot.status != SS.SUCCESS:
        return SnapshotSource(
            None, f"snapshot {snapshot_id} is {snapshot.status}, and Barrack needs it SUCCESS"
        )
    return SnapshotSource(snapshot_id, None)
