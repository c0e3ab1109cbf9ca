"""``barrack-operator import``: manifests that bring an account's existing Barrack resources under
management, for the resources no object manages yet.

Each manifest adopts its resource (``spec.adoptId``) and states what Barrack lists, so adopting
changes nothing; names are made valid for Kubernetes (and unique); references between the imported
resources (and those already managed in the namespace) are written as references: a volume's
``instanceRef``, an instance's ``sshKeyRefs``, ``bootVolumeRef``, ``customImageRef`` and
``startupScriptRef``, a
firewall's ``instanceRefs``, a snapshot's ``instanceRef`` and an image's ``snapshotRef``; a
referent that is neither is named by its Barrack id (``instanceId``, ``snapshotId``).
With ``observe`` the objects are ``managementPolicy: Observe``. Pure: the command lists Barrack and
Kubernetes and hands the lists here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from barrack_operator.barrack import models as wire
from barrack_operator.resources import specs
from barrack_operator.resources.specs import GROUP, VERSION

MAX_NAME = 63
POWER_OF_STATE = {"ACTIVE": "Running", "SHUTOFF": "Stopped", "HIBERNATED": "Hibernated"}


@dataclass
class ImportPlan:
    manifests: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Resources left out, each with why: a manifest that cannot state a reference would be
    refused (an instance needs its SSH keys as references) or would change the resource (a firewall
    attaches exactly the instances it names)."""


@dataclass
class Account:
    """What Barrack lists."""

    volumes: list[wire.Volume] = field(default_factory=list)
    instances: list[wire.VMInstance] = field(default_factory=list)
    firewalls: list[wire.Firewall] = field(default_factory=list)
    ssh_keys: list[wire.SSHKey] = field(default_factory=list)
    scripts: list[wire.Script] = field(default_factory=list)
    snapshots: list[wire.Snapshot] = field(default_factory=list)
    images: list[wire.CustomImage] = field(default_factory=list)


def kubernetes_name(barrack_name: str, taken: set[str]) -> str:
    """A valid, unused object name for a Barrack name: lower case, letters, digits and '-'."""
    base = re.sub(r"[^a-z0-9-]+", "-", barrack_name.lower()).strip("-")[:MAX_NAME].strip("-") or "resource"
    name, n = base, 1
    while name in taken:
        n += 1
        suffix = f"-{n}"
        name = base[: MAX_NAME - len(suffix)].rstrip("-") + suffix
    taken.add(name)
    return name


def plan_import(
    account: Account,
    managed: Mapping[str, str | None],
    *,
    observe: bool = False,
    taken_names: Iterable[str] = (),
) -> ImportPlan:
    """One manifest for each Barrack resource whose id is not in ``managed`` (Barrack id -> the
    name of the object of this namespace that manages it, None when one in another namespace does):
    SSH keys, startup scripts, instances, volumes, firewalls, snapshots, then images. Snapshots' and images' names
    are reserved first, as an instance may boot from an image of a snapshot of another instance."""
    taken = set(taken_names)
    names: dict[str, str] = {i: n for i, n in managed.items() if n}
    backups: list[wire.Snapshot | wire.CustomImage] = [*account.snapshots, *account.images]
    for backup in backups:
        if backup.id not in managed and _readable(backup):
            names[backup.id] = kubernetes_name(backup.name, taken)
    plan = ImportPlan()
    manifests = plan.manifests

    def add(kind: str, resource: Any, spec: dict[str, Any]) -> None:
        name = names.get(resource.id) or kubernetes_name(resource.name, taken)  # a boot volume's is reserved
        names[resource.id] = name
        spec = {"name": resource.name, "adoptId": resource.id, **spec}
        if observe:
            spec["managementPolicy"] = "Observe"
        manifests.append(
            {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}
        )

    new = [r for r in account.ssh_keys if r.id not in managed]
    for key in new:
        add("BarrackSSHKey", key, {"publicKey": key.public_key})
    for script in (r for r in account.scripts if r.id not in managed):
        add("BarrackStartupScript", script, {"content": script.content, "description": script.description})
    for instance in (r for r in account.instances if r.id not in managed):
        made = _instance_spec(instance, account, names, taken)
        if isinstance(made, str):
            plan.skipped.append(made)
        else:
            add("BarrackInstance", instance, made)
    for volume in (r for r in account.volumes if r.id not in managed):
        add("BarrackVolume", volume, _volume_spec(volume, names))
    for firewall in (r for r in account.firewalls if r.id not in managed):
        spec = _firewall_spec(firewall, names)
        if isinstance(spec, str):
            plan.skipped.append(spec)
        else:
            add("BarrackFirewall", firewall, spec)
    _add_backups(account, managed, names, plan, add)
    return plan


def _add_backups(
    account: Account,
    managed: Mapping[str, str | None],
    names: Mapping[str, str],
    plan: ImportPlan,
    add: Callable[[str, Any, dict[str, Any]], None],
) -> None:
    """The snapshots and images no object manages: each named by its source's object, else id."""
    for snapshot in (r for r in account.snapshots if r.id not in managed):
        if not _readable(snapshot):
            plan.skipped.append(
                f"snapshot {snapshot.name} ({snapshot.id}): {snapshot.status}, not made yet or failing"
            )
        elif snapshot.instance_id is None:
            plan.skipped.append(
                f"snapshot {snapshot.name} ({snapshot.id}): Barrack names no instance it was taken of"
            )
        else:
            add(
                "BarrackSnapshot",
                snapshot,
                _backup_spec(snapshot.instance_id, "instance", names, snapshot.description),
            )
    for image in (r for r in account.images if r.id not in managed):
        if not _readable(image):
            plan.skipped.append(f"image {image.name} ({image.id}): {image.status}, not made yet or failing")
        elif image.snapshot_id is None:
            plan.skipped.append(
                f"image {image.name} ({image.id}): Barrack names no snapshot it was made from"
            )
        else:
            add("BarrackImage", image, _backup_spec(image.snapshot_id, "snapshot", names, ""))


READABLE = frozenset({wire.SnapshotState.SUCCESS.value, wire.ImageState.AVAILABLE.value})
"""Backup states in which the resource is made (Barrack's docs use either word for either kind; the
other states are on their way, failed or going)."""


def _readable(backup: wire.Snapshot | wire.CustomImage) -> bool:
    return backup.status in READABLE


def _backup_spec(source_id: str, source: str, names: Mapping[str, str], description: str) -> dict[str, Any]:
    """A snapshot's (source ``instance``) or an image's (``snapshot``) spec: a reference to its
    source's object when there is one here, else the source's Barrack id."""
    spec: dict[str, Any] = (
        {f"{source}Ref": {"name": names[source_id]}} if source_id in names else {f"{source}Id": source_id}
    )
    if description:
        spec["description"] = description
    return spec


def _instance_spec(
    instance: wire.VMInstance, account: Account, names: dict[str, str], taken: set[str]
) -> dict[str, Any] | str:
    """The instance's spec, or why it is left out (its SSH keys are not objects here)."""
    elsewhere = [k for k in instance.ssh_key_ids if k not in names]
    if elsewhere or not instance.ssh_key_ids:
        return (
            f"instance {instance.name} ({instance.id}): its SSH keys {', '.join(elsewhere) or '(none)'} are "
            "not objects of this namespace; import it where they are managed"
        )
    spec: dict[str, Any] = {
        "region": instance.region,
        "gpuModel": instance.gpu_model,
        "gpuCount": instance.gpu_count,
        "sshKeyRefs": [{"name": names[k]} for k in instance.ssh_key_ids if k in names],
        "securityRules": specs.rules_as_spec(instance.security_rules),
    }
    if instance.boot_volume_id:
        spec["bootVolumeRef"] = {"name": _volume_name(instance.boot_volume_id, account, names, taken)}
    elif instance.image_id and any(image.id == instance.image_id for image in account.images):
        spec["customImageRef" if instance.image_id in names else "customImageId"] = (
            {"name": names[instance.image_id]} if instance.image_id in names else instance.image_id
        )
    else:
        spec["imageId"] = instance.image_id
    if instance.startup_script_id in names:
        spec["startupScriptRef"] = {"name": names[instance.startup_script_id]}
    elif instance.startup_script_id:
        spec["startupScript"] = instance.startup_script_id
    if instance.status in POWER_OF_STATE:
        spec["powerState"] = POWER_OF_STATE[instance.status]
    if instance.status == "ACTIVE":
        spec["publicIP"] = instance.public_ip is not None
    return spec


def _firewall_spec(firewall: wire.Firewall, names: dict[str, str]) -> dict[str, Any] | str:
    """The firewall's spec, or why it is left out (attached to instances not managed here)."""
    away = [a.instance_id for a in firewall.attachments if a.instance_id not in names]
    if away:
        return (
            f"firewall {firewall.name} ({firewall.id}): attached to {', '.join(away)}, not objects of this "
            "namespace; adopting it here would detach them"
        )
    refs = [{"name": names[a.instance_id]} for a in firewall.attachments]
    spec = {"region": firewall.region, "rules": specs.rules_as_spec(firewall.rules), "instanceRefs": refs}
    if firewall.description:
        spec["description"] = firewall.description
    return spec


def _volume_spec(volume: wire.Volume, names: Mapping[str, str]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "region": volume.region,
        "sizeGB": volume.size_gb,
        "volumeType": volume.volume_type,
        "bootable": volume.bootable,
    }
    if volume.bootable:
        spec["imageId"] = volume.image_id
    elif volume.instance_id:
        if volume.instance_id in names:
            spec["instanceRef"] = {"name": names[volume.instance_id]}
        else:
            spec["instanceId"] = volume.instance_id
    return spec


def _volume_name(volume_id: str, account: Account, names: dict[str, str], taken: set[str]) -> str:
    """The object name of a boot volume an instance names, reserved now if it is imported too."""
    if volume_id not in names:
        volume = next((v for v in account.volumes if v.id == volume_id), None)
        names[volume_id] = kubernetes_name(volume.name if volume else volume_id, taken)
    return names[volume_id]
