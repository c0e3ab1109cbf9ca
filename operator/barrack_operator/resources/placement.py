"""What pins a placed instance to one region: a BarrackVolume that names it in instanceRef and has
a region of its own (spec.region, or the region it was made in: it holds data). Its alternatives
elsewhere are skipped, and the instance's status says which volume pins it. A volume that leaves
its region out follows the instance instead, and pins nothing."""

from __future__ import annotations

from barrack_operator.capacity import Place
from barrack_operator.resources.model import Context, ObjectView


def volume_pin(ctx: Context, obj: ObjectView, places: tuple[Place, ...]) -> tuple[str, str] | None:
    """(region, why) when the instance has alternatives in several regions and a volume that names
    it is in, or is declared in, one of them; None otherwise."""
    if len({p.region for p in places}) < 2:
        return None
    pinning = sorted(
        (name, info.region)
        for name, info in ctx.refs.of_kind("BarrackVolume", obj.namespace)
        if info.instance_ref == obj.name and info.region
    )
    if not pinning:
        return None
    name, region = pinning[0]
    return region, f"BarrackVolume {name} is in {region} and attaches only there"
