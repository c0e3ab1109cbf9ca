"""Message templates that name the next step, one per situation, so every kind says the same thing
the same way. ``docs/conditions.md`` lists every reason these go with."""

from __future__ import annotations

from barrack_operator.barrack import models as wire

IS = wire.InstanceState


def instance_label(instance_id: str, instance: wire.VMInstance | None) -> str:
    """``web-1 (BRK-123456D)``, or the bare id when Barrack does not list the instance."""
    return f"{instance.name} ({instance_id})" if instance is not None else instance_id


def detach_blocked_message(volume_id: str, instance: wire.VMInstance, managed_by: str | None) -> str:
    """DetachBlocked: the instance is not SHUTOFF. The next step depends on who manages it."""
    label = instance_label(instance.id, instance)
    head = f"detach of volume {volume_id} needs instance {label} in SHUTOFF, it is {instance.status}"
    if managed_by is None:
        return f"{head}: stop instance {instance.id} on Barrack (no BarrackInstance here manages it)"
    if instance.status == IS.HIBERNATED:
        return (
            f"{head}: Barrack detaches only from SHUTOFF, and a hibernated instance must be restored "
            f"first; set spec.powerState: Stopped on BarrackInstance {managed_by} (it restores, then stops)"
        )
    return f"{head}: set spec.powerState: Stopped on BarrackInstance {managed_by}"


def detach_blocked_reason(
    volume: wire.Volume, instance: wire.VMInstance | None, managed_by: str | None = None
) -> str | None:
    """Why a detach cannot be asked for now, or None when it can. ``managed_by`` is the name of
    the BarrackInstance that manages the instance, if any (the next step differs)."""
    label = instance_label(volume.instance_id or "", instance)
    if volume.bootable:
        return f"volume {volume.id} is the boot volume of instance {label}: boot volumes stay attached and are never detached"
    if instance is not None and instance.status != IS.SHUTOFF:
        return detach_blocked_message(volume.id, instance, managed_by)
    return None
