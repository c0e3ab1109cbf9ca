"""The simulated Barrack account: resources, their state machines, and every rule of the contract.

Mutations check their preconditions, move a resource into a transitional state and schedule the
state it settles in; :meth:`Account.tick` applies every scheduled transition that is due on the
clock. Each transition's duration is configurable by name (``create_volume``, ``stop`` ...), with
one default. All refusals are :mod:`barrack_sim.errors` exceptions with Barrack's wording where the
docs give it.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import itertools
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal, TypeVar

from barrack_operator.barrack import models as m
from barrack_operator.barrack import requests as rq
from barrack_sim import money
from barrack_sim.clock import SimClock
from barrack_sim.errors import Conflict, Invalid, Missing, NoCredits
from barrack_sim.scripts import Scripts
from barrack_sim.stock import Shelf

VOLUME_NAME = re.compile(r"^[A-Za-z0-9 _.\-]{1,50}$")
SSH_KEY_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,50}$")
SSH_KEY_TYPES = (
    "ssh-rsa",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
)
MIN_VOLUME_GB = 100
MAX_VOLUME_GB = 1_048_576
MAX_FIREWALLS = 25
MAX_SSH_KEYS = 25
MAX_DESCRIPTION = 255
BILL_EVERY = 1.0
"""Simulated seconds between two billings of every resource. Billing all of them on every request
cost the simulator 30 ms a request at 10,000 resources (half a core at 20 requests a second on a
benchmark machine of two cores, and 30 ms more before every answer); a rate that changes within the
second is billed from the billing before it, a second at most."""
DETACH_REFUSAL = (
    "Cannot detach: Volume is attached to a {status} instance. The instance must be in SHUTOFF state "
    "to perform volume operations. Please shut down the instance first before attempting to detach volumes."
)
DETACH_REFUSAL_OLD_RULE = (
    "Cannot detach: Volume is attached to a {status} instance. The instance must be ACTIVE to detach volumes."
)

DetachRule = Literal["shutoff", "active"]
T = TypeVar("T")
VS, IS, FS = m.VolumeState, m.InstanceState, m.FirewallState
SS, ImS = m.SnapshotState, m.ImageState
ROOT_DISK_GB = 100
"""The size of an image-booted instance's root disk, which a snapshot of it takes."""


SETTLED_KEPT = 100_000


@dataclass
class Transition:
    due: float
    apply: Callable[[], None]


@dataclass
class SimConfig:
    """What a run of the simulator is set to; every field can be changed at run time."""

    transition_seconds: float = 2.0
    transition_overrides: dict[str, float] = field(default_factory=dict)
    detach_rule: DetachRule = "shutoff"
    balance: float = 1000.0
    currency: str = "USD"
    stock_per_model: int = 64
    snapshot_advanced_tier: bool = True
    """Whether instances booted from an advanced-tier volume (NVMe, HDD) can be snapshotted (the
    docs do not say; off refuses them with 400)."""
    first_id: int = 100001
    """The number in the first id handed out; simulators that share one cluster keep apart with it."""

    def duration(self, name: str) -> float:
        return self.transition_overrides.get(name, self.transition_seconds)


def _found(table: dict[str, T], resource_id: str, what: str) -> T:
    """The resource of that id, or Barrack's 404."""
    try:
        return table[resource_id]
    except KeyError:
        raise Missing(f"{what} {resource_id} not found") from None


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Account:
    def __init__(self, config: SimConfig | None = None, clock: SimClock | None = None) -> None:
        self.config = config or SimConfig()
        self.clock = clock or SimClock()
        self.volumes: dict[str, m.Volume] = {}
        self.instances: dict[str, m.VMInstance] = {}
        self.firewalls: dict[str, m.Firewall] = {}
        self.ssh_keys: dict[str, m.SSHKey] = {}
        self.scripts = Scripts(self._new_id)
        self.images: dict[str, m.OSImage] = {}
        self.snapshots: dict[str, m.Snapshot] = {}
        self.custom_images: dict[str, m.CustomImage] = {}
        self._snapshot_source: dict[str, tuple[str, int, str | None]] = {}
        """Snapshot id → the source instance's GPU model, count and OS image."""
        self._restoring: dict[str, set[str]] = {}
        """Snapshot id → instances being restored from it (CREATING)."""
        self.shelf = Shelf(
            {(region.value, gpu): self.config.stock_per_model for region in m.Region for gpu in m.GPU_MODELS}
        )
        self._pending: dict[str, Transition] = {}
        self.created: list[tuple[str, str]] = []
        self.created_at: dict[str, float] = {}
        """Wall time (epoch seconds) of each instance's create."""
        """(id, name) of every volume, instance, firewall and SSH key ever created, in order."""
        self._public_ip_wanted: dict[str, bool] = {}
        self._public_ips: dict[str, str] = {}
        self._ip_numbers = itertools.count(2)
        self._ids = itertools.count(self.config.first_id)
        self.ledger = money.Ledger(counted_at=self.clock.now())
        self._wall_start = datetime.now(UTC)
        self._clock_start = self.clock.now()
        self.settled: deque[tuple[str, float]] = deque(maxlen=SETTLED_KEPT)
        """(resource id, wall time in epoch seconds) of each transition when it came due, for the
        benchmark's condition latency."""
        self.depleted = False
        """The balance ran out: every instance is being hibernated until a top-up."""
        for region in m.Region:
            for name in ("Ubuntu 22.04", "Ubuntu 24.04 CUDA 12"):
                image = m.OSImage(id=self._new_id("I"), name=name, region=region.value)
                self.images[image.id] = image

    # Clock and transitions -----------------------------------------------------------------------

    def _new_id(self, suffix: str) -> str:
        return f"BRK-{next(self._ids)}{suffix}"

    def _schedule(self, resource_id: str, transition_name: str, apply: Callable[[], None]) -> None:
        self._pending[resource_id] = Transition(
            self.clock.now() + self.config.duration(transition_name), apply
        )

    def tick(self) -> None:
        """Apply every transition that is due, earliest first, each after billing the time up to it
        at the rates before it (so a clock pushed past a transition bills each side at its own
        rate); then bill the rest, and hibernate every instance once the balance is spent."""
        now = self.clock.now()
        due = sorted(((t.due, rid) for rid, t in self._pending.items() if t.due <= now))
        for at, rid in due:
            transition = self._pending.pop(rid, None)
            if transition is not None:
                self._bill(at)
                transition.apply()
                self.settled.append((rid, self.wall_epoch(at)))
        self.shelf.move(now)
        self._bill(now)
        if self.depleted:
            self._hibernate_all()

    # Money ---------------------------------------------------------------------------------------

    def hourly_burn(self) -> float:
        """What the account's resources cost per hour now, at the published prices."""
        currency = self.config.currency
        return (
            sum(money.instance_hourly(i, currency) for i in self.instances.values())
            + sum(money.volume_hourly(v.size_gb, v.volume_type, currency) for v in self.volumes.values())
            + sum(money.snapshot_hourly(s, currency) for s in self.snapshots.values())
        )

    def _bill(self, now: float) -> None:
        """Bill every resource for the time since the last billing, at its rate now; at most every
        BILL_EVERY simulated seconds."""
        last = self.ledger.counted_at
        if last is not None and now - last < BILL_EVERY:
            return
        self.ledger.counted_at = now
        if last is None:
            return
        minutes = (now - last) / 60
        at = money.wall_time(now, self._clock_start, self._wall_start)
        currency = self.config.currency
        spent = 0.0
        for instance in self.instances.values():
            status = "hibernated" if instance.status == IS.HIBERNATED else "active"
            hourly = money.instance_hourly(instance, currency)
            spent += self.ledger.bill(instance.id, instance.name, hourly, status, minutes, at)
        for volume in self.volumes.values():
            hourly = money.volume_hourly(volume.size_gb, volume.volume_type, currency)
            spent += self.ledger.bill(volume.id, volume.name, hourly, "active", minutes, at)
        for snapshot in self.snapshots.values():
            hourly = money.snapshot_hourly(snapshot, currency)
            spent += self.ledger.bill(snapshot.id, snapshot.name, hourly, "active", minutes, at)
        self.config.balance = max(0.0, self.config.balance - spent)
        if self.config.balance <= 0 and spent > 0:
            self.depleted = True

    def _hibernate_all(self) -> None:
        """Credits depleted: Barrack hibernates the account's instances to keep their data [doc]."""
        for instance in self.instances.values():
            if instance.status in (IS.ACTIVE, IS.SHUTOFF) and not self._busy(instance.id):
                instance.status = IS.HIBERNATING

                def done(instance: m.VMInstance = instance) -> None:
                    instance.status = IS.HIBERNATED
                    self._assign_public_ip(instance)
                    self.shelf.give(instance.region, instance.gpu_model, instance.gpu_count)

                self._schedule(instance.id, "hibernate", done)

    def top_up(self, amount: float) -> float:
        self.config.balance += amount
        if self.config.balance > 0:
            self.depleted = False
        return self.config.balance

    def billing(self, resource_id: str, id_key: str) -> tuple[list[dict[str, object]], dict[str, object]]:
        if resource_id not in self.ledger.records and not any(
            resource_id in known for known in (self.instances, self.volumes, self.snapshots)
        ):
            raise Missing(f"No resource {resource_id}")
        return self.ledger.page(resource_id, id_key, self.config.currency)

    def wall_epoch(self, clock_seconds: float) -> float:
        """Epoch seconds of a simulator clock reading."""
        return money.wall_time(clock_seconds, self._clock_start, self._wall_start).timestamp()

    def pending(self) -> int:
        return len(self._pending)

    def _busy(self, resource_id: str) -> bool:
        return resource_id in self._pending

    # Lookups -------------------------------------------------------------------------------------

    def volume(self, volume_id: str) -> m.Volume:
        return _found(self.volumes, volume_id, "Volume")

    def instance(self, instance_id: str) -> m.VMInstance:
        return _found(self.instances, instance_id, "Instance")

    def firewall(self, firewall_id: str) -> m.Firewall:
        return _found(self.firewalls, firewall_id, "Firewall")

    def ssh_key(self, key_id: str) -> m.SSHKey:
        return _found(self.ssh_keys, key_id, "SSH key")

    # Shared checks -------------------------------------------------------------------------------

    @staticmethod
    def _check_region(region: str) -> None:
        if region not in {r.value for r in m.Region}:
            raise Invalid(f"Unknown region {region!r}; choose one of NORWAY-1, CANADA-1, US-1")

    @staticmethod
    def _check_name(kind: str, name: str, taken: list[str], pattern: re.Pattern[str] = VOLUME_NAME) -> None:
        if not pattern.match(name):
            raise Invalid(
                f"Invalid {kind} name {name!r}: 1 to 50 characters of letters, digits, "
                + ("space, " if pattern is VOLUME_NAME else "")
                + "'_', '.' and '-'"
            )
        if name in taken:
            raise Invalid(f"A {kind} named {name!r} already exists", "name_taken")

    def _charge_check(self, hourly_price: float) -> None:
        if self.config.balance < hourly_price:
            raise NoCredits(
                f"Insufficient credits: this needs {hourly_price:.2f} {self.config.currency} per hour, "
                f"the balance is {self.config.balance:.2f}"
            )

    # Volumes -------------------------------------------------------------------------------------

    def create_volume(self, req: rq.CreateVolumeRequest) -> m.Volume:
        self._check_region(req.region)
        self._check_name("volume", req.name, [v.name for v in self.volumes.values()])
        if req.volume_type not in {t.value for t in m.VolumeType}:
            raise Invalid(f"Unknown volume type {req.volume_type!r}; choose SSD, NVMe or HDD")
        if not MIN_VOLUME_GB <= req.size_gb <= MAX_VOLUME_GB:
            raise Invalid(f"size_gb must be between {MIN_VOLUME_GB} and {MAX_VOLUME_GB}")
        if req.bootable:
            self._check_image(req.image_id, req.region)
        self._charge_check(money.volume_hourly(req.size_gb, req.volume_type, self.config.currency))
        volume = m.Volume(
            id=self._new_id("V"),
            name=req.name,
            status=VS.CREATING,
            region=req.region,
            size_gb=req.size_gb,
            volume_type=req.volume_type,
            bootable=req.bootable,
            image_id=req.image_id if req.bootable else None,
            created_at=_now_iso(),
        )
        self.volumes[volume.id] = volume
        self.created.append((volume.id, volume.name))
        self._schedule(volume.id, "create_volume", lambda: setattr(volume, "status", VS.AVAILABLE))
        return volume

    def _check_image(self, image_id: str | None, region: str) -> None:
        image = self.images.get(image_id or "")
        if image is None:
            raise Invalid(f"OS image {image_id!r} not found")
        if image.region != region:
            raise Invalid(f"OS image {image_id} is in {image.region}, not {region}")

    def delete_volume(self, volume_id: str) -> None:
        volume = self.volume(volume_id)
        if volume.instance_id is not None or volume.status != VS.AVAILABLE:
            raise Conflict(
                f"Volume {volume_id} is {volume.status}: a volume can be deleted only when it is "
                "AVAILABLE and detached from every instance"
            )
        volume.status = VS.DELETING
        self._schedule(volume_id, "delete_volume", lambda: self._forget_volume(volume_id))

    def _forget_volume(self, volume_id: str) -> None:
        self.volumes.pop(volume_id, None)

    def resize_volume(self, volume_id: str, size_gb: int) -> m.Volume:
        volume = self.volume(volume_id)
        if not m.VolumeType(volume.volume_type).advanced:
            raise Invalid("Resize is available for advanced-tier volume types (NVMe, HDD) only")
        if size_gb <= volume.size_gb:
            raise Invalid(f"A volume can only grow: {size_gb} GB is not more than {volume.size_gb} GB")
        if size_gb > MAX_VOLUME_GB:
            raise Invalid(f"size_gb must be at most {MAX_VOLUME_GB}")
        if volume.status not in {VS.AVAILABLE, VS.ATTACHED}:
            raise Conflict(f"Volume {volume_id} is {volume.status}; resize needs AVAILABLE or ATTACHED")
        settled = volume.status

        def done() -> None:
            volume.size_gb = size_gb
            volume.status = settled

        volume.status = VS.RESIZING
        self._schedule(volume_id, "resize_volume", done)
        return volume

    def clone_volume(self, volume_id: str, name: str) -> m.Volume:
        source = self.volume(volume_id)
        if not m.VolumeType(source.volume_type).advanced:
            raise Invalid("Clone is available for advanced-tier volume types (NVMe, HDD) only")
        if source.status not in {VS.AVAILABLE, VS.ATTACHED}:
            raise Conflict(f"Volume {volume_id} is {source.status}; clone needs AVAILABLE or ATTACHED")
        request = rq.CreateVolumeRequest(
            name=name,
            region=source.region,
            size_gb=source.size_gb,
            volume_type=source.volume_type,
            bootable=source.bootable,
            image_id=source.image_id,
        )
        return self.create_volume(request)

    def attach_volumes(self, instance_id: str, volume_ids: list[str]) -> m.VMInstance:
        instance = self.instance(instance_id)
        volumes = [self.volume(v) for v in volume_ids]
        if not volumes:
            raise Invalid("volume_ids must name at least one volume")
        for volume in volumes:
            if volume.region != instance.region:
                raise Invalid(
                    f"Volume {volume.id} is in {volume.region} and instance {instance_id} in "
                    f"{instance.region}: a volume attaches only in its own region"
                )
            if volume.status != VS.AVAILABLE or volume.instance_id is not None:
                raise Conflict(f"Volume {volume.id} is {volume.status}; attach needs an AVAILABLE volume")
        if instance.status not in {IS.ACTIVE, IS.SHUTOFF} or self._busy(instance_id):
            raise Conflict(
                f"Instance {instance_id} is {instance.status}; volumes attach to an ACTIVE or SHUTOFF instance"
            )
        for volume in volumes:
            self._start_attach(volume, instance)
        return instance

    def _start_attach(self, volume: m.Volume, instance: m.VMInstance) -> None:
        volume.status = VS.ATTACHING
        volume.instance_id = instance.id
        instance.volume_ids.append(volume.id)
        self._schedule(volume.id, "attach_volume", lambda: setattr(volume, "status", VS.ATTACHED))

    def detach_volumes(self, instance_id: str, volume_ids: list[str]) -> m.VMInstance:
        instance = self.instance(instance_id)
        volumes = [self.volume(v) for v in volume_ids]
        if not volumes:
            raise Invalid("volume_ids must name at least one volume")
        for volume in volumes:
            if volume.instance_id != instance_id:
                raise Invalid(f"Volume {volume.id} is not attached to instance {instance_id}")
            if volume.bootable:
                raise Invalid(
                    f"Volume {volume.id} is the instance's bootable (OS) volume: it is permanently attached "
                    "and cannot be detached",
                    "boot_volume",
                )
            if volume.status != VS.ATTACHED:
                raise Conflict(f"Volume {volume.id} is {volume.status}; detach needs an ATTACHED volume")
        required = IS.SHUTOFF if self.config.detach_rule == "shutoff" else IS.ACTIVE
        if instance.status != required:
            template = DETACH_REFUSAL if required is IS.SHUTOFF else DETACH_REFUSAL_OLD_RULE
            raise Conflict(template.format(status=instance.status), "instance_state")
        for volume in volumes:
            self._start_detach(volume, instance)
        return instance

    def _start_detach(self, volume: m.Volume, instance: m.VMInstance) -> None:
        def done() -> None:
            volume.status = VS.AVAILABLE
            volume.instance_id = None
            if volume.id in instance.volume_ids:
                instance.volume_ids.remove(volume.id)

        volume.status = VS.DETACHING
        self._schedule(volume.id, "detach_volume", done)

    # Instances -----------------------------------------------------------------------------------

    def create_instance(self, req: rq.DeploymentRequest) -> m.VMInstance:
        self._check_region(req.region)
        self._check_name("instance", req.name, [i.name for i in self.instances.values()])
        if req.gpu_model not in m.GPU_MODELS:
            raise Invalid(f"Unknown GPU model {req.gpu_model!r}")
        if req.gpu_count not in m.GPU_COUNTS:
            raise Invalid("gpu_count must be 1, 2, 4 or 8")
        if not req.ssh_key_ids:
            raise Invalid("An instance needs at least one SSH key")
        for key_id in req.ssh_key_ids:
            self.ssh_key(key_id)
        if req.startup_script_id is not None:
            self.scripts.get(req.startup_script_id)
        sources = [s for s in (req.image_id, req.boot_volume_id, req.custom_image_id) if s is not None]
        if len(sources) != 1:
            raise Invalid("Give exactly one boot source: image_id, boot_volume_id or custom_image_id")
        boot_volume: m.Volume | None = None
        if req.custom_image_id is not None:
            self._check_custom_image(req.custom_image_id, req.region)
        elif req.image_id is not None:
            self._check_image(req.image_id, req.region)
        else:
            boot_volume = self.volume(req.boot_volume_id or "")
            if not boot_volume.bootable or boot_volume.region != req.region:
                raise Invalid(f"Volume {boot_volume.id} is not a bootable volume in {req.region}")
            if boot_volume.status != VS.AVAILABLE:
                raise Conflict(f"Boot volume {boot_volume.id} is {boot_volume.status}; it must be AVAILABLE")
        self.shelf.move(self.clock.now())
        if self.shelf.available.get((req.region, req.gpu_model), 0) < req.gpu_count:
            self.shelf.refusals.append((req.name, req.region, time.time()))
            self.shelf.take(req.region, req.gpu_model, req.gpu_count)  # refused: out_of_stock
        self._charge_check(money.instance_full_hourly(req.gpu_model, req.gpu_count, self.config.currency))
        rules = [m.FirewallRule(id=self._new_id("R"), **r.model_dump()) for r in req.security_rules or []]
        instance = m.VMInstance(
            id=self._new_id("D"),
            name=req.name,
            status=IS.CREATING,
            region=req.region,
            gpu_model=req.gpu_model,
            gpu_count=req.gpu_count,
            image_id=req.image_id,
            boot_volume_id=req.boot_volume_id,
            private_ip=f"10.0.{len(self.instances) // 250}.{len(self.instances) % 250 + 2}",
            ssh_key_ids=list(req.ssh_key_ids),
            security_rules=rules,
            startup_script_id=req.startup_script_id,
            created_at=_now_iso(),
        )
        self._public_ip_wanted[instance.id] = req.public_ip
        self.shelf.take(req.region, req.gpu_model, req.gpu_count)
        self.instances[instance.id] = instance
        self.created.append((instance.id, instance.name))
        self.created_at[instance.id] = time.time()
        if boot_volume is not None:
            boot_volume.status = VS.ATTACHED
            boot_volume.instance_id = instance.id
            instance.volume_ids.append(boot_volume.id)

        def done() -> None:
            instance.status = IS.ACTIVE
            self._assign_public_ip(instance)

        self._schedule(instance.id, "create_instance", done)
        return instance

    def _assign_public_ip(self, instance: m.VMInstance, *, fresh: bool = False) -> None:
        """An ACTIVE instance that wants one has a public IP; it keeps it through stop and start,
        and gets a new one after hibernation (the old one went back to the pool)."""
        wanted = self._public_ip_wanted.get(instance.id, True)
        if fresh or instance.status == IS.HIBERNATED:
            self._public_ips.pop(instance.id, None)
        if wanted and instance.status == IS.ACTIVE:
            if instance.id not in self._public_ips:
                n = next(self._ip_numbers)
                self._public_ips[instance.id] = f"203.0.{113 + n // 250}.{n % 250 + 2}"
            instance.public_ip = self._public_ips[instance.id]
        else:
            instance.public_ip = None

    _ACTIONS: dict[str, tuple[frozenset[m.InstanceState], m.InstanceState, m.InstanceState]] = {
        "start": (frozenset({IS.SHUTOFF}), IS.STARTING, IS.ACTIVE),
        "stop": (frozenset({IS.ACTIVE}), IS.STOPPING, IS.SHUTOFF),
        "reboot": (frozenset({IS.ACTIVE}), IS.REBOOTING, IS.ACTIVE),
        "hibernate": (frozenset({IS.ACTIVE}), IS.HIBERNATING, IS.HIBERNATED),
        "restore": (frozenset({IS.HIBERNATED}), IS.RESTORING, IS.ACTIVE),
    }

    def instance_action(self, instance_id: str, action: str) -> m.VMInstance:
        instance = self.instance(instance_id)
        allowed, moving, settled = self._ACTIONS[action]
        if instance.status not in allowed or self._busy(instance_id):
            names = " or ".join(sorted(s.value for s in allowed))
            raise Conflict(
                f"Cannot {action} instance {instance_id}: it is {instance.status}, {action} needs {names}"
            )
        if action in ("start", "restore"):  # billed in full again: the balance must cover an hour
            self._charge_check(
                money.instance_full_hourly(instance.gpu_model, instance.gpu_count, self.config.currency)
            )
        if action == "restore":  # the hardware was released: it needs GPUs from the shelf again
            self.shelf.move(self.clock.now())
            self.shelf.take(instance.region, instance.gpu_model, instance.gpu_count)
        instance.status = moving

        def done() -> None:
            instance.status = settled
            self._assign_public_ip(instance)
            if settled == IS.HIBERNATED:  # hibernation releases the hardware
                self.shelf.give(instance.region, instance.gpu_model, instance.gpu_count)

        self._schedule(instance_id, action, done)
        return instance

    def set_public_ip(self, instance_id: str, enabled: bool) -> m.VMInstance:
        instance = self.instance(instance_id)
        if instance.status not in {IS.ACTIVE, IS.SHUTOFF}:
            raise Conflict(
                f"Instance {instance_id} is {instance.status}; public IP changes need ACTIVE or SHUTOFF"
            )
        self._public_ip_wanted[instance_id] = enabled
        self._assign_public_ip(instance)
        return instance

    def delete_instance(self, instance_id: str) -> None:
        instance = self.instance(instance_id)
        if self._busy(instance_id) or instance.status == IS.DELETING:
            raise Conflict(f"Instance {instance_id} is {instance.status}; wait until it settles to delete it")
        instance.status = IS.DELETING

        def done() -> None:
            self.instances.pop(instance_id, None)
            if instance.status != IS.HIBERNATED:  # a hibernated one gave its GPUs back already
                self.shelf.give(instance.region, instance.gpu_model, instance.gpu_count)
            for volume in self.volumes.values():
                if volume.instance_id == instance_id:
                    volume.instance_id = None
                    volume.status = VS.AVAILABLE
            for firewall in self.firewalls.values():
                firewall.attachments = [a for a in firewall.attachments if a.instance_id != instance_id]

        self._schedule(instance_id, "delete_instance", done)

    def add_security_rule(self, instance_id: str, rule: rq.AddFirewallRuleRequest) -> m.FirewallRule:
        instance = self.instance(instance_id)
        created = self._new_rule(rule)
        instance.security_rules.append(created)
        return created

    def remove_security_rule(self, instance_id: str, rule_id: str) -> None:
        instance = self.instance(instance_id)
        instance.security_rules = self._without_rule(instance.security_rules, rule_id)

    def _new_rule(self, rule: rq.AddFirewallRuleRequest) -> m.FirewallRule:
        check_rule(rule)
        return m.FirewallRule(id=self._new_id("R"), **rule.model_dump())

    @staticmethod
    def _without_rule(rules: list[m.FirewallRule], rule_id: str) -> list[m.FirewallRule]:
        kept = [r for r in rules if r.id != rule_id]
        if len(kept) == len(rules):
            raise Missing(f"Rule {rule_id} not found")
        return kept

    # Snapshots and custom images (contract section 5) -------------------------------------------

    def snapshot(self, snapshot_id: str) -> m.Snapshot:
        return _found(self.snapshots, snapshot_id, "Snapshot")

    def custom_image(self, image_id: str) -> m.CustomImage:
        return _found(self.custom_images, image_id, "Image")

    def _check_custom_image(self, image_id: str, region: str) -> None:
        image = self.custom_image(image_id)
        if image.region != region:
            raise Invalid(
                f"Image {image_id} is in {image.region}, not {region}: an image deploys in its region"
            )
        if image.status != ImS.AVAILABLE:
            raise Conflict(f"Image {image_id} is {image.status}; deploying needs AVAILABLE")

    def _snapshot_size(self, instance: m.VMInstance) -> int:
        boot = self.volumes.get(instance.boot_volume_id or "")
        return boot.size_gb if boot is not None else ROOT_DISK_GB

    def eligible_for_snapshot(self) -> list[m.VMInstance]:
        making = {s.instance_id for s in self.snapshots.values() if s.status == SS.CREATING}
        return [i for i in self.instances.values() if i.status == IS.ACTIVE and i.id not in making]

    def create_snapshot(self, req: rq.CreateSnapshotRequest) -> m.Snapshot:
        self._check_name("snapshot", req.name, [s.name for s in self.snapshots.values()])
        instance = self.instance(req.instance_id)
        if instance.status != IS.ACTIVE:
            raise Conflict(
                f"Instance {instance.id} is {instance.status}; a snapshot needs an ACTIVE instance"
            )
        if any(s.instance_id == instance.id and s.status == SS.CREATING for s in self.snapshots.values()):
            raise Conflict(
                f"Instance {instance.id} has a snapshot being made; one snapshot at a time per instance",
                "snapshot_in_progress",
            )
        boot = self.volumes.get(instance.boot_volume_id or "")
        if (
            boot is not None
            and m.VolumeType(boot.volume_type).advanced
            and not self.config.snapshot_advanced_tier
        ):
            raise Invalid(f"Instance {instance.id} is on the advanced tier, which snapshots do not support")
        size = self._snapshot_size(instance)
        self._charge_check(money.snapshot_hourly_of(size, self.config.currency))
        snapshot = m.Snapshot(
            id=self._new_id("S"), name=req.name, description=req.description or "", instance_id=instance.id,
            region=instance.region, size_gb=size, status=SS.CREATING, created_at=_now_iso(),
        )  # fmt: skip
        self.snapshots[snapshot.id] = snapshot
        self._snapshot_source[snapshot.id] = (instance.gpu_model, instance.gpu_count, instance.image_id)
        self.created.append((snapshot.id, snapshot.name))
        self._schedule(snapshot.id, "create_snapshot", lambda: setattr(snapshot, "status", SS.SUCCESS))
        return snapshot

    def delete_snapshot(self, snapshot_id: str) -> None:
        snapshot = self.snapshot(snapshot_id)
        if self._restoring.get(snapshot_id):
            raise Conflict(f"Snapshot {snapshot_id} is being restored; delete it once the restore finished")
        if snapshot.status in (SS.CREATING, SS.DELETING):
            raise Conflict(f"Snapshot {snapshot_id} is {snapshot.status}; wait until it settles to delete it")
        snapshot.status = SS.DELETING

        def done() -> None:
            self.snapshots.pop(snapshot_id, None)
            self.ledger.close(
                snapshot_id, money.wall_time(self.clock.now(), self._clock_start, self._wall_start)
            )

        self._schedule(snapshot_id, "delete_snapshot", done)

    def restore_snapshot(self, snapshot_id: str, req: rq.RestoreSnapshotRequest) -> m.VMInstance:
        """A new instance from the snapshot, in its region (new IPs; SSH keys given anew)."""
        snapshot = self.snapshot(snapshot_id)
        if snapshot.status != SS.SUCCESS:
            raise Conflict(f"Snapshot {snapshot_id} is {snapshot.status}; a restore needs SUCCESS")
        gpu_model, gpu_count, image_id = self._snapshot_source[snapshot_id]
        if image_id not in self.images:
            image_id = next(i.id for i in self.images.values() if i.region == snapshot.region)
        request = rq.DeploymentRequest(
            name=req.name or f"{snapshot.name}-restored", region=snapshot.region,
            gpu_model=req.gpu_model or gpu_model, gpu_count=req.gpu_count or gpu_count, image_id=image_id,
            ssh_key_ids=req.ssh_key_ids, public_ip=req.public_ip,
        )  # fmt: skip
        instance = self.create_instance(request)
        restoring = self._restoring.setdefault(snapshot_id, set())
        restoring.add(instance.id)
        settle = self._pending[instance.id].apply

        def done() -> None:
            settle()
            restoring.discard(instance.id)

        self._pending[instance.id] = Transition(
            self.clock.now() + self.config.duration("restore_snapshot"), done
        )
        return instance

    def create_image(self, snapshot_id: str, name: str) -> m.CustomImage:
        snapshot = self.snapshot(snapshot_id)
        self._check_name("image", name, [i.name for i in self.custom_images.values()])
        if snapshot.status != SS.SUCCESS:
            raise Conflict(f"Snapshot {snapshot_id} is {snapshot.status}; an image needs a SUCCESS snapshot")
        image = m.CustomImage(
            id=self._new_id("I"), name=name, snapshot_id=snapshot_id, region=snapshot.region,
            size_gb=snapshot.size_gb, status=ImS.CREATING, created_at=_now_iso(),
        )  # fmt: skip
        self.custom_images[image.id] = image
        self.created.append((image.id, image.name))
        self._schedule(image.id, "create_image", lambda: setattr(image, "status", ImS.AVAILABLE))
        return image

    def delete_image(self, image_id: str) -> None:
        image = self.custom_image(image_id)
        if image.status in (ImS.CREATING, ImS.DELETING):
            raise Conflict(f"Image {image_id} is {image.status}; wait until it settles to delete it")
        image.status = ImS.DELETING

        def done() -> None:
            self.custom_images.pop(image_id, None)

        self._schedule(image_id, "delete_image", done)

    # Firewalls -----------------------------------------------------------------------------------

    def create_firewall(self, req: rq.CreateFirewallRequest) -> m.Firewall:
        self._check_region(req.region)
        self._check_name("firewall", req.name, [f.name for f in self.firewalls.values()])
        if len(req.description or "") > MAX_DESCRIPTION:
            raise Invalid(f"description must be at most {MAX_DESCRIPTION} characters")
        if len(self.firewalls) >= MAX_FIREWALLS:
            raise Conflict(f"An account holds at most {MAX_FIREWALLS} firewalls", "limit_reached")
        firewall = m.Firewall(
            id=self._new_id("F"),
            name=req.name,
            status=FS.CREATING,
            region=req.region,
            description=req.description or "",
            created_at=_now_iso(),
        )
        self.firewalls[firewall.id] = firewall
        self.created.append((firewall.id, firewall.name))
        self._schedule(firewall.id, "create_firewall", lambda: setattr(firewall, "status", FS.SUCCESS))
        return firewall

    def delete_firewall(self, firewall_id: str) -> None:
        firewall = self.firewall(firewall_id)
        if firewall.attachments:
            attached = ", ".join(a.instance_id for a in firewall.attachments)
            raise Conflict(f"Firewall {firewall_id} is attached to {attached}; detach it before deleting it")
        del self.firewalls[firewall_id]
        self._pending.pop(firewall_id, None)

    def add_firewall_rule(self, firewall_id: str, rule: rq.AddFirewallRuleRequest) -> m.FirewallRule:
        firewall = self.firewall(firewall_id)
        created = self._new_rule(rule)
        firewall.rules.append(created)
        return created

    def remove_firewall_rule(self, firewall_id: str, rule_id: str) -> None:
        firewall = self.firewall(firewall_id)
        firewall.rules = self._without_rule(firewall.rules, rule_id)

    def attach_firewall(self, firewall_id: str, instance_ids: list[str]) -> m.Firewall:
        firewall = self.firewall(firewall_id)
        if firewall.status != FS.SUCCESS:
            raise Conflict(f"Firewall {firewall_id} is {firewall.status}; wait until it is SUCCESS")
        current = {a.instance_id: a for a in firewall.attachments}
        for instance_id in instance_ids:
            if instance_id in current:
                continue
            instance = self.instance(instance_id)
            if instance.region != firewall.region:
                raise Invalid(
                    f"Instance {instance_id} is in {instance.region}, the firewall in {firewall.region}"
                )
            if instance.status != IS.ACTIVE:
                raise Conflict(
                    f"Instance {instance_id} is {instance.status}; a firewall attaches to ACTIVE instances"
                )
        attachments = []
        for instance_id in dict.fromkeys(instance_ids):
            attachment = current.get(instance_id) or m.FirewallAttachment(
                instance_id=instance_id, status=FS.ATTACHING
            )
            if attachment.status == FS.ATTACHING:
                self._schedule(
                    f"{firewall_id}/{instance_id}",
                    "attach_firewall",
                    functools.partial(setattr, attachment, "status", FS.SUCCESS),
                )
            attachments.append(attachment)
        for instance_id in current.keys() - set(instance_ids):
            self._pending.pop(f"{firewall_id}/{instance_id}", None)
        firewall.attachments = attachments
        return firewall

    def instance_firewalls(self, instance_id: str) -> list[m.Firewall]:
        self.instance(instance_id)
        return [
            f for f in self.firewalls.values() if any(a.instance_id == instance_id for a in f.attachments)
        ]

    # SSH keys ------------------------------------------------------------------------------------

    def create_ssh_key(self, req: rq.CreateSSHKeyRequest) -> m.SSHKey:
        self._check_name("SSH key", req.name, [k.name for k in self.ssh_keys.values()], SSH_KEY_NAME)
        parts = req.public_key.split()
        if len(parts) < 2 or parts[0] not in SSH_KEY_TYPES:
            raise Invalid("public_key must be an OpenSSH public key of type " + ", ".join(SSH_KEY_TYPES))
        if len(self.ssh_keys) >= MAX_SSH_KEYS:
            raise Conflict(f"An account holds at most {MAX_SSH_KEYS} SSH keys", "limit_reached")
        digest = hashlib.sha256(parts[1].encode()).hexdigest()
        key = m.SSHKey(
            id=self._new_id("K"),
            name=req.name,
            public_key=req.public_key,
            fingerprint="SHA256:" + digest[:43],
            created_at=_now_iso(),
        )
        self.ssh_keys[key.id] = key
        self.created.append((key.id, key.name))
        return key

    def delete_ssh_key(self, key_id: str) -> None:
        self.ssh_key(key_id)
        users = [i.id for i in self.instances.values() if key_id in i.ssh_key_ids and i.status == IS.ACTIVE]
        if users:
            raise Conflict(f"SSH key {key_id} is used by active instance(s) {', '.join(users)}")
        del self.ssh_keys[key_id]

    # Account -------------------------------------------------------------------------------------

    def gpu_stocks(self) -> list[dict[str, object]]:
        self.shelf.move(self.clock.now())
        return self.shelf.listing()


def check_rule(rule: rq.AddFirewallRuleRequest) -> None:
    """Port and CIDR rules shared by firewall and instance security rules."""
    try:
        ipaddress.ip_network(rule.remote_ip_prefix, strict=False)
    except ValueError:
        raise Invalid(f"remote_ip_prefix {rule.remote_ip_prefix!r} is not a CIDR") from None
    ports = (rule.port_range_min, rule.port_range_max)
    if rule.protocol == m.Protocol.ICMP:
        if ports != (None, None):
            raise Invalid("icmp rules take no port range")
        return
    if None in ports:
        raise Invalid("tcp and udp rules need port_range_min and port_range_max")
    low, high = rule.port_range_min or 0, rule.port_range_max or 0
    if not 1 <= low <= high <= 65535:
        raise Invalid("ports must satisfy 1 <= port_range_min <= port_range_max <= 65535")
