"""Spec models of the custom resources (their statuses are :mod:`statuses`): the one source of
their CRD schemas.

Field names are camelCase as in Kubernetes; descriptions become ``kubectl explain`` text; enums,
patterns and bounds become schema validation; ``x-kubernetes-validations`` carries CEL rules
(immutability, port ranges). :mod:`barrack_operator.crds` turns these models into CRDs.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal

from pydantic import Field

from barrack_operator.barrack import models as wire
from barrack_operator.barrack import requests as rq

# Re-exported: every kind's spec module and the engine name them as specs' (an explicit re-export).
from barrack_operator.resources.model_base import Model as Model  # noqa: PLC0414
from barrack_operator.resources.selectors import LabelSelector as LabelSelector  # noqa: PLC0414
from barrack_operator.resources.selectors import (
    LabelSelectorRequirement as LabelSelectorRequirement,  # noqa: PLC0414
)

GROUP = "barrack.ai"
VERSION = "v1alpha1"
CATEGORY = "barrack"

RESOURCE_NAME_PATTERN = r"^[A-Za-z0-9 _.\-]{1,50}$"
SSH_KEY_NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,50}$"
ID_PATTERN = r"^BRK-[0-9A-Za-z]+$"
MAX_CIDR_CHARS = 43  # the longest IPv6 prefix; bounds the cost of the CIDR rules
MAX_RULES = 100
MAX_SSH_KEYS = 20
CIDR_PATTERN = (
    r"^(([0-9]{1,3}\.){3}[0-9]{1,3}/([0-9]|[12][0-9]|3[0-2])"
    r"|[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*/([0-9]|[1-9][0-9]|1[01][0-9]|12[0-8]))$"
)
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
HEADER_TOKEN_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
DEFAULT_ACCOUNT = "default"


def account_name(spec: Mapping[str, Any]) -> str:
    """The account an object's spec names (``accountRef.name``), else ``default``."""
    return str((spec.get("accountRef") or {}).get("name") or DEFAULT_ACCOUNT)


SSH_PUBLIC_KEY_PATTERN = r"^(ssh-rsa|ssh-ed25519|ecdsa-sha2-nistp256|ecdsa-sha2-nistp384|ecdsa-sha2-nistp521) [A-Za-z0-9+/=]+( .*)?$"


def rules_as_spec(rules: list[wire.FirewallRule]) -> list[dict[str, Any]]:
    """Barrack's rules as spec entries, for late initialization."""
    return [RuleSpec.from_wire(rule).model_dump(mode="json", exclude_none=True) for rule in rules]


def immutable(field: str) -> dict[str, Any]:
    """A CEL rule on the parent object: once set, ``field`` keeps its value (and cannot be added or
    removed after creation)."""
    return {
        "rule": f"has(self.{field}) == has(oldSelf.{field}) && (!has(self.{field}) || self.{field} == oldSelf.{field})",
        "message": f"{field} is immutable: Barrack cannot change it after creation",
    }


ADOPT_ID_KEPT = {
    "rule": "!has(oldSelf.adoptId) || (has(self.adoptId) && self.adoptId == oldSelf.adoptId)",
    "message": "adoptId cannot change or be removed once set: it names the Barrack resource this object manages",
}
"""adoptId may be set on an object later (to take over a resource), never changed or removed."""


class DeletionPolicy(StrEnum):
    DELETE = "Delete"
    RETAIN = "Retain"


class ManagementPolicy(StrEnum):
    """Manage: create, change and delete the Barrack resource. Observe: find it (by adoptId or by
    name) and mirror it into status; never call a mutating route, never delete it."""

    MANAGE = "Manage"
    OBSERVE = "Observe"


class PowerState(StrEnum):
    """The instance power state asked for. Running is Barrack's ACTIVE, Stopped is SHUTOFF,
    Hibernated is HIBERNATED (hardware released, root disk kept)."""

    RUNNING = "Running"
    STOPPED = "Stopped"
    HIBERNATED = "Hibernated"


class LocalRef(Model):
    name: str = Field(
        description="Name of an object of the expected kind in the same namespace.", min_length=1
    )


class AccountRef(Model):
    name: str = Field(
        description="Name of a BarrackAccount (cluster-scoped).", min_length=1, pattern=DNS_SUBDOMAIN_PATTERN
    )


ACCOUNT_REF_KEPT = {
    "rule": "has(self.accountRef) == has(oldSelf.accountRef) && (!has(self.accountRef) || self.accountRef == oldSelf.accountRef)",
    "message": "accountRef is immutable: the Barrack resource lives in that account",
}


class CommonSpec(Model):
    accountRef: AccountRef | None = Field(
        default=None,
        description="The BarrackAccount whose key, rate limit and budget this object uses; immutable. "
        "Left out: the account named default.",
    )
    name: str | None = Field(
        default=None,
        description="Name on Barrack; defaults to metadata.name; immutable. 1 to 50 letters, digits, spaces, '_', '.', '-'.",
        pattern=RESOURCE_NAME_PATTERN,
    )
    deletionPolicy: DeletionPolicy = Field(
        default=DeletionPolicy.DELETE,
        description="Delete removes the Barrack resource with this object; Retain leaves it on Barrack.",
    )
    managementPolicy: ManagementPolicy = Field(
        default=ManagementPolicy.MANAGE,
        description="Manage (create, change, delete on Barrack) or Observe (find the resource by adoptId or "
        "name and mirror it into status; never change or delete it). Observe to Manage adopts it without "
        "changing anything the spec leaves out.",
    )
    adoptId: str | None = Field(
        default=None,
        description="Take over this existing Barrack resource (for example BRK-123456V) instead of creating one; "
        "it may be set later, never changed or removed once set.",
        pattern=ID_PATTERN,
    )


class VolumeSource(Model):
    volumeRef: LocalRef | None = Field(default=None, description="Clone the BarrackVolume of this name.")
    volumeId: str | None = Field(
        default=None, description="Clone the Barrack volume of this id.", pattern=ID_PATTERN
    )


class BarrackVolumeSpec(CommonSpec):
    region: wire.Region | None = Field(
        default=None,
        description="Barrack region; immutable. A volume attaches only in its region. Left out (with "
        "instanceRef): the region its instance lands in, once the instance is placed.",
    )
    sizeGB: int = Field(
        description="Size in GB, 100 to 1048576. Grows with a resize (NVMe and HDD only); never shrinks.",
        ge=100,
        le=1_048_576,
    )
    volumeType: wire.VolumeType = Field(
        default=wire.VolumeType.NVME, description="SSD (legacy tier), NVMe or HDD (advanced tier); immutable."
    )
    bootable: bool = Field(
        default=False, description="An OS volume made from imageId; immutable. It never detaches."
    )
    imageId: str | None = Field(default=None, description="OS image of a bootable volume; immutable.")
    instanceRef: LocalRef | None = Field(
        default=None, description="Attach to this BarrackInstance (same namespace). Remove it to detach."
    )
    instanceId: str | None = Field(
        default=None,
        description="Attach to this Barrack instance id (one not managed here).",
        pattern=ID_PATTERN,
    )
    source: VolumeSource | None = Field(default=None, description="Create the volume as a clone; immutable.")


class RuleSpec(Model):
    direction: wire.Direction = Field(description="ingress or egress.")
    protocol: wire.Protocol = Field(description="tcp, udp or icmp.")
    ethertype: wire.EtherType = Field(default=wire.EtherType.IPV4, description="IPv4 or IPv6.")
    remoteIPPrefix: str = Field(
        default="0.0.0.0/0",
        description="Remote CIDR, e.g. 10.0.0.0/8 (IPv4 with ethertype IPv4, IPv6 with IPv6).",
        pattern=CIDR_PATTERN,
        max_length=MAX_CIDR_CHARS,
    )
    portRangeMin: int | None = Field(
        default=None, description="First port, 1 to 65535; none for icmp.", ge=1, le=65535
    )
    portRangeMax: int | None = Field(
        default=None, description="Last port, 1 to 65535; none for icmp.", ge=1, le=65535
    )

    @classmethod
    def from_wire(cls, rule: wire.FirewallRule) -> RuleSpec:
        return cls(
            direction=rule.direction,
            protocol=rule.protocol,
            ethertype=rule.ethertype,
            remoteIPPrefix=rule.remote_ip_prefix,
            portRangeMin=rule.port_range_min,
            portRangeMax=rule.port_range_max,
        )

    def to_wire(self) -> rq.AddFirewallRuleRequest:
        return rq.AddFirewallRuleRequest(
            direction=wire.Direction(self.direction),
            protocol=wire.Protocol(self.protocol),
            ethertype=wire.EtherType(self.ethertype),
            remote_ip_prefix=self.remoteIPPrefix,
            port_range_min=self.portRangeMin,
            port_range_max=self.portRangeMax,
        )


RULE_VALIDATIONS = [
    {
        "rule": "self.protocol == 'icmp' ? (!has(self.portRangeMin) && !has(self.portRangeMax)) "
        ": (has(self.portRangeMin) && has(self.portRangeMax) && self.portRangeMin <= self.portRangeMax)",
        "message": "tcp and udp rules need portRangeMin <= portRangeMax; icmp rules take no ports",
    },
    {
        "rule": "isCIDR(self.remoteIPPrefix)",
        "message": "remoteIPPrefix must be a CIDR, e.g. 10.0.0.0/8",
        "fieldPath": ".remoteIPPrefix",
    },
    {
        "rule": "!isCIDR(self.remoteIPPrefix) || "
        "cidr(self.remoteIPPrefix).ip().family() == (self.ethertype == 'IPv6' ? 6 : 4)",
        "message": "remoteIPPrefix must be of the rule's ethertype (IPv4 or IPv6)",
        "fieldPath": ".remoteIPPrefix",
    },
]


class RestoreSource(Model):
    snapshotRef: LocalRef | None = Field(
        default=None, description="Restore the BarrackSnapshot of this name."
    )
    snapshotId: str | None = Field(
        default=None, description="Restore the Barrack snapshot of this id.", pattern=ID_PATTERN
    )


BOOT_SOURCES = ("imageId", "image", "bootVolumeRef", "customImageRef", "customImageId", "restoreFrom")
"""A BarrackInstance's boot sources: exactly one is set."""


class Alternative(Model):
    """One place an instance may land: a region and a GPU model and count."""

    region: wire.Region = Field(description="Barrack region.")
    gpuModel: str = Field(
        description="GPU model, e.g. A40 or H100-SXM5-80GB.",
        json_schema_extra={"enum": list(wire.GPU_MODELS)},
    )
    gpuCount: int = Field(
        default=1, description="GPUs: 1, 2, 4 or 8.", json_schema_extra={"enum": list(wire.GPU_COUNTS)}
    )


class Lifetime(Model):
    duration: str = Field(
        description="e.g. 8h, 90m or 1h30m.", pattern=r"^([0-9]+h)?([0-9]+m)?$", min_length=2
    )
    action: Literal["Hibernate", "Stop", "Delete"] = Field(
        default="Stop", description="What happens at its end."
    )


class OSImageName(Model):
    name: str = Field(
        description="The OS image's name, e.g. Ubuntu 22.04; the operator uses that image's id in the region "
        "the instance lands in.",
        min_length=1,
        max_length=100,
    )


MAX_ALTERNATIVES = 8
FIRST_BOOT = "run at first boot (one of startupScript, startupScriptRef); immutable."


class BarrackInstanceSpec(CommonSpec):
    region: wire.Region | None = Field(
        default=None, description="Barrack region; immutable. Set region and gpuModel, or placement."
    )
    gpuModel: str | None = Field(
        default=None,
        description="GPU model, e.g. A40 or H100-SXM5-80GB; immutable. Set region and gpuModel, or placement.",
        json_schema_extra={"enum": list(wire.GPU_MODELS)},
    )
    gpuCount: int | None = Field(
        default=None,
        description="GPUs: 1, 2, 4 or 8; immutable. Left out: 1. With region and gpuModel only.",
        json_schema_extra={"enum": list(wire.GPU_COUNTS)},
    )
    placement: list[Alternative] | None = Field(
        default=None,
        description="Where the instance may land, in order of preference (instead of region, gpuModel and "
        "gpuCount); immutable. The operator takes the first alternative whose GPUs Barrack has in stock "
        "and whose price is within maxHourlyPrice; a create refused as out of stock moves on to the next.",
        min_length=1,
        max_length=MAX_ALTERNATIVES,
    )
    maxHourlyPrice: float | None = Field(
        default=None,
        description="The most the instance may cost per hour while running, in the account's currency; an "
        "alternative priced above it is not taken.",
        gt=0,
    )
    image: OSImageName | None = Field(
        default=None,
        description="OS image to boot from, by name, resolved in the region the instance lands in (one boot "
        "source); immutable.",
    )

    def alternatives(self) -> list[Alternative]:
        """The places the instance may land, in order: placement, or the one region and GPU."""
        if self.placement:
            return list(self.placement)
        assert self.region is not None and self.gpuModel is not None, "the CRD requires them"
        return [Alternative(region=self.region, gpuModel=self.gpuModel, gpuCount=self.gpuCount or 1)]

    imageId: str | None = Field(
        default=None,
        description="OS image to boot from (one boot source of imageId, bootVolumeRef, "
        "customImageRef, customImageId, restoreFrom); immutable.",
    )
    bootVolumeRef: LocalRef | None = Field(
        default=None,
        description="A bootable BarrackVolume to boot from (one boot source); immutable.",
    )
    sshKeyRefs: list[LocalRef] = Field(
        description="BarrackSSHKeys installed on the instance at creation; at least one; immutable "
        "(Barrack installs keys only when it creates an instance).",
        min_length=1,
        max_length=MAX_SSH_KEYS,
    )
    startupScript: str | None = Field(default=None, description=f"Barrack startup script id {FIRST_BOOT}")
    startupScriptRef: LocalRef | None = Field(
        default=None, description=f"The BarrackStartupScript {FIRST_BOOT} A change of its content affects "
        "only instances created afterwards.",
    )  # fmt: skip
    cloudInit: str | None = Field(
        default=None, description="cloud-init user data, used at first boot; immutable.", max_length=65536
    )
    publicIP: bool | None = Field(
        default=None,
        description="Give the instance a public IP address. Left out: true when the operator creates the "
        "instance; when it adopts one, Barrack's setting is kept and written here (late initialization).",
    )
    powerState: PowerState | None = Field(
        default=None,
        description="Running, Stopped or Hibernated. Left out: Running when the operator creates the instance; "
        "when it adopts one, its power state is kept and written here.",
    )
    securityRules: list[RuleSpec] | None = Field(
        default=None,
        description="Instance security rules, kept as a set. Left out: none when the operator creates the "
        "instance; when it adopts one, its rules are kept and written here.",
        max_length=MAX_RULES,
    )
    customImageRef: LocalRef | None = Field(
        default=None,
        description="A BarrackImage to boot from (one boot source of imageId, bootVolumeRef, customImageRef, "
        "customImageId, restoreFrom); immutable. The image must be in the instance's region.",
    )
    customImageId: str | None = Field(
        default=None,
        description="The Barrack custom image of this id to boot from (one boot source); immutable.",
        pattern=ID_PATTERN,
    )
    restoreFrom: RestoreSource | None = Field(
        default=None,
        description="Make the instance by restoring a snapshot (one boot source); immutable. Barrack makes it in "
        "the snapshot's region, so region must be that region; the spec's SSH keys, security rules and "
        "firewalls are set on it (a restore carries none of them over).",
    )
    writeConnectionSecretToRef: LocalRef | None = Field(
        default=None,
        description="Write how to reach the instance into this Secret of the object's namespace (host, privateIP, "
        "port, username, ssh: a ready command line), owned by this object and kept current as the IP changes.",
    )
    lifetime: Lifetime | None = Field(
        default=None,
        description="How long the instance lives, counted from this object's creation, and what then: "
        "Hibernate, Stop or Delete (Delete honours deletionPolicy and every detach rule).",
    )


class BarrackFirewallSpec(CommonSpec):
    region: wire.Region = Field(
        description="Barrack region; immutable. Only instances of this region attach."
    )
    description: str = Field(
        default="",
        description="Up to 255 characters; immutable (Barrack has no route to change it).",
        max_length=255,
    )
    rules: list[RuleSpec] | None = Field(
        default=None,
        description="Rules, kept as a set (added and removed). Left out: none when the operator creates the "
        "firewall; when it adopts one, its rules are kept and written here (late initialization).",
        max_length=MAX_RULES,
    )
    instanceRefs: list[LocalRef] = Field(
        default_factory=list, description="BarrackInstances to attach the firewall to (they must be ACTIVE)."
    )


class BarrackSSHKeySpec(CommonSpec):
    name: str | None = Field(
        default=None,
        description="Name on Barrack; defaults to metadata.name; immutable. 1 to 50 letters, digits, '_', '.', '-'.",
        pattern=SSH_KEY_NAME_PATTERN,
    )
    publicKey: str = Field(
        description="OpenSSH public key (ssh-rsa, ssh-ed25519 or ecdsa-sha2-nistp256/384/521); immutable.",
        pattern=SSH_PUBLIC_KEY_PATTERN,
    )


class BarrackSnapshotSpec(CommonSpec):
    instanceRef: LocalRef | None = Field(
        default=None,
        description="Snapshot this BarrackInstance (same namespace; one of instanceRef, instanceId); immutable. "
        "Barrack snapshots ACTIVE instances only, one at a time per instance.",
    )
    instanceId: str | None = Field(
        default=None,
        description="Snapshot the Barrack instance of this id (one of instanceRef, instanceId); immutable.",
        pattern=ID_PATTERN,
    )
    description: str = Field(default="", description="Up to 255 characters; immutable.", max_length=255)


class BarrackImageSpec(CommonSpec):
    snapshotRef: LocalRef | None = Field(
        default=None,
        description="Make the image from this BarrackSnapshot (one of snapshotRef, snapshotId); immutable.",
    )
    snapshotId: str | None = Field(
        default=None,
        description="Make the image from the Barrack snapshot of this id (one of snapshotRef, snapshotId); "
        "immutable.",
        pattern=ID_PATTERN,
    )


class BarrackSnapshotScheduleSpec(Model):
    schedule: str = Field(
        description="When to take snapshots: a cron expression (five fields, e.g. '0 3 * * *', or @hourly, "
        "@daily, @weekly, @monthly) or '@every <duration>' (e.g. @every 30m, @every 1h30m; at least 10s).",
        min_length=1,
        max_length=100,
    )
    timeZone: str | None = Field(
        default=None,
        description="IANA time zone of a cron schedule, e.g. Europe/Berlin; left out: UTC.",
        max_length=64,
    )
    instanceRef: LocalRef | None = Field(
        default=None, description="Snapshot this BarrackInstance (one of instanceRef, instanceSelector)."
    )
    instanceSelector: LabelSelector | None = Field(
        default=None,
        description="Snapshot every BarrackInstance of the namespace whose labels match (one of instanceRef, "
        "instanceSelector).",
    )
    keep: int = Field(
        default=7,
        description="Ready snapshots kept per instance: once a new one is Ready, older ones beyond this are "
        "deleted (their BarrackSnapshot objects, and with them the snapshots on Barrack).",
        ge=1,
        le=1000,
    )
    suspend: bool = Field(default=False, description="true: take no snapshot until set back to false.")
