"""Barrack wire models, named after Barrack's schema names, snake_case as on the wire.

Replies keep unknown fields (``extra="allow"``): Barrack may add fields and the operator must not
break when it does. States are normalised to upper case on the way in, because Barrack's docs mix
``Available`` and ``available``; compare them through the enums below.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


UpperStr = Annotated[str, BeforeValidator(_upper)]


class Region(StrEnum):
    NORWAY_1 = "NORWAY-1"
    CANADA_1 = "CANADA-1"
    US_1 = "US-1"


class VolumeType(StrEnum):
    """Volume types; ``SSD`` is the legacy tier, ``NVMe`` and ``HDD`` the advanced tier."""

    SSD = "SSD"
    NVME = "NVMe"
    HDD = "HDD"

    @property
    def advanced(self) -> bool:
        return self is not VolumeType.SSD


GPU_MODELS: tuple[str, ...] = (
    "RTX-A6000",
    "A40",
    "L40",
    "A100-PCIe-80GB",
    "A100-SXM4-80GB-NVLink",
    "H100-PCIe-80GB",
    "H100-PCIe-NVLink-80GB",
    "H100-SXM5-80GB",
    "B300-262GB",
)
GPU_COUNTS: tuple[int, ...] = (1, 2, 4, 8)


class InstanceState(StrEnum):
    """Barrack instance states. Stable: ACTIVE, SHUTOFF, HIBERNATED, ERROR; DELETED is terminal;
    every other value is transitional and moves on by itself."""

    ACTIVE = "ACTIVE"
    SHUTOFF = "SHUTOFF"
    HIBERNATED = "HIBERNATED"
    ERROR = "ERROR"
    DELETED = "DELETED"
    CREATING = "CREATING"
    BUILD = "BUILD"
    STARTING = "STARTING"
    STOPPING = "STOPPING"
    REBOOTING = "REBOOTING"
    HIBERNATING = "HIBERNATING"
    RESTORING = "RESTORING"
    DELETING = "DELETING"

    @property
    def transitional(self) -> bool:
        return self not in _STABLE_INSTANCE_STATES


_STABLE_INSTANCE_STATES = frozenset(
    {
        InstanceState.ACTIVE,
        InstanceState.SHUTOFF,
        InstanceState.HIBERNATED,
        InstanceState.ERROR,
        InstanceState.DELETED,
    }
)


class VolumeState(StrEnum):
    """Barrack volume states. Stable: AVAILABLE (detached), ATTACHED ("In-use"), ERROR; the rest
    are transitional."""

    CREATING = "CREATING"
    AVAILABLE = "AVAILABLE"
    ATTACHED = "ATTACHED"
    ERROR = "ERROR"
    ATTACHING = "ATTACHING"
    DETACHING = "DETACHING"
    RESIZING = "RESIZING"
    DELETING = "DELETING"

    @property
    def transitional(self) -> bool:
        return self not in {VolumeState.AVAILABLE, VolumeState.ATTACHED, VolumeState.ERROR}


class SnapshotState(StrEnum):
    """Snapshot states [contract section 5]: SUCCESS is restorable (the docs also say
    "available"); CREATING and DELETING are transitional."""

    CREATING = "CREATING"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"
    DELETING = "DELETING"

    @property
    def transitional(self) -> bool:
        return self in {SnapshotState.CREATING, SnapshotState.DELETING}


class ImageState(StrEnum):
    """Custom image states: AVAILABLE is deployable (the docs also say SUCCESS)."""

    CREATING = "CREATING"
    AVAILABLE = "AVAILABLE"
    ERROR = "ERROR"
    DELETING = "DELETING"

    @property
    def transitional(self) -> bool:
        return self in {ImageState.CREATING, ImageState.DELETING}


class FirewallState(StrEnum):
    """Firewall and firewall-attachment states; CREATING and ATTACHING are transitional."""

    CREATING = "CREATING"
    ATTACHING = "ATTACHING"
    SUCCESS = "SUCCESS"
    ERROR = "ERROR"

    @property
    def transitional(self) -> bool:
        return self in {FirewallState.CREATING, FirewallState.ATTACHING}


def is_transitional(
    states: type[InstanceState | VolumeState | FirewallState | SnapshotState | ImageState], state: str
) -> bool:
    """True for a known transitional state; an unknown word is not treated as one."""
    try:
        return states(state).transitional
    except ValueError:
        return False


class Direction(StrEnum):
    INGRESS = "ingress"
    EGRESS = "egress"


class Protocol(StrEnum):
    TCP = "tcp"
    UDP = "udp"
    ICMP = "icmp"


class EtherType(StrEnum):
    IPV4 = "IPv4"
    IPV6 = "IPv6"


class ReplyModel(BaseModel):
    """Replies and resources: unknown fields are kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


# Resources ---------------------------------------------------------------------------------------


class FirewallRule(ReplyModel):
    """A firewall or instance security rule. ``id`` is set by Barrack; port bounds are absent for
    icmp."""

    id: str | None = None
    direction: Direction
    protocol: Protocol
    ethertype: EtherType = EtherType.IPV4
    remote_ip_prefix: str = "0.0.0.0/0"
    port_range_min: int | None = None
    port_range_max: int | None = None

    def identity(self) -> tuple[str, str, str, str, int | None, int | None]:
        """What makes two rules the same rule, whatever their ids."""
        return (
            self.direction.value,
            self.protocol.value,
            self.ethertype.value,
            self.remote_ip_prefix,
            self.port_range_min,
            self.port_range_max,
        )


class Volume(ReplyModel):
    id: str
    name: str
    status: UpperStr
    region: str
    size_gb: int
    volume_type: str
    bootable: bool = False
    image_id: str | None = None
    instance_id: str | None = None
    created_at: str | None = None


class VMInstance(ReplyModel):
    id: str
    name: str
    status: UpperStr
    region: str
    gpu_model: str
    gpu_count: int
    image_id: str | None = None
    boot_volume_id: str | None = None
    public_ip: str | None = None
    private_ip: str | None = None
    volume_ids: list[str] = Field(default_factory=list)
    ssh_key_ids: list[str] = Field(default_factory=list)
    security_rules: list[FirewallRule] = Field(default_factory=list)
    startup_script_id: str | None = None
    created_at: str | None = None


class Script(ReplyModel):
    """A startup script (contract section 8): run once, at an instance's first boot."""

    id: str
    name: str
    description: str = ""
    content: str = ""
    status: UpperStr = "ACTIVE"
    created_at: str | None = None
    updated_at: str | None = None


class Snapshot(ReplyModel):
    id: str
    name: str
    description: str = ""
    instance_id: str | None = None
    region: str
    size_gb: int = 0
    status: UpperStr
    created_at: str | None = None


class CustomImage(ReplyModel):
    id: str
    name: str
    snapshot_id: str | None = None
    region: str
    size_gb: int = 0
    status: UpperStr
    created_at: str | None = None


class FirewallAttachment(ReplyModel):
    instance_id: str
    status: UpperStr


class Firewall(ReplyModel):
    id: str
    name: str
    status: UpperStr
    region: str
    description: str = ""
    rules: list[FirewallRule] = Field(default_factory=list)
    attachments: list[FirewallAttachment] = Field(default_factory=list)
    created_at: str | None = None


class SSHKey(ReplyModel):
    id: str
    name: str
    status: UpperStr = "ACTIVE"
    public_key: str
    fingerprint: str | None = None
    created_at: str | None = None


class OSImage(ReplyModel):
    id: str
    name: str
    region: str


# Replies -----------------------------------------------------------------------------------------


class Envelope(ReplyModel):
    success: bool = True
    message: str = ""
    request_id: str = ""


class Page(Envelope):
    total: int = 0
    page: int = 1
    limit: int = 100
    total_pages: int = 1


class ErrorResponse(Envelope):
    success: bool = False
    error_code: str = ""


class VolumeResponse(Envelope):
    volume: Volume


class VolumeListResponse(Page):
    volumes: list[Volume]


class InstanceResponse(Envelope):
    instance: VMInstance


class InstanceListResponse(Page):
    instances: list[VMInstance]


class FirewallResponse(Envelope):
    firewall: Firewall


class FirewallListResponse(Page):
    firewalls: list[Firewall]


class SSHKeyResponse(Envelope):
    ssh_key: SSHKey


class SSHKeyListResponse(Page):
    ssh_keys: list[SSHKey]


class ScriptResponse(Envelope):
    script: Script


class ScriptListResponse(Page):
    scripts: list[Script]


class OSImageListResponse(Page):
    os_images: list[OSImage]


class SnapshotResponse(Envelope):
    snapshot: Snapshot


class SnapshotListResponse(Page):
    snapshots: list[Snapshot]


class ImageResponse(Envelope):
    image: CustomImage


class ImageListResponse(Page):
    images: list[CustomImage]


class BalanceResponse(Envelope):
    currency: str
    balance: float


class BillingSummary(ReplyModel):
    """Published in camelCase, unlike the rest of the API [doc]."""

    totalMinutes: float = 0.0
    totalCost: float = 0.0
    activeCount: int = 0


class BillingResponse(Page):
    records: list[dict[str, Any]]
    summary: BillingSummary


class PricingQuote(ReplyModel):
    currency: str
    tier: str = ""
    hourly: float


class RegionListResponse(Page):
    regions: list[dict[str, Any]]


class GPUStockListResponse(Page):
    gpu_stocks: list[dict[str, Any]]


class VolumeTypeListResponse(Page):
    volume_types: list[dict[str, Any]]


class ProtocolListResponse(Envelope):
    protocols: list[str]


class PricingResponse(Envelope):
    pricing: PricingQuote


class FirewallRuleResponse(Envelope):
    rule: FirewallRule
