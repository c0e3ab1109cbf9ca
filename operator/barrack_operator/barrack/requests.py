"""Barrack request bodies, named after Barrack's schema names, snake_case as on the wire: exactly
the documented fields (an unknown one is refused before it is sent). The replies are
:mod:`barrack_operator.barrack.models`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from barrack_operator.barrack.models import Direction, EtherType, Protocol


class WireModel(BaseModel):
    """Requests: exactly the documented fields."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CreateVolumeRequest(WireModel):
    name: str
    region: str
    size_gb: int
    volume_type: str
    bootable: bool = False
    image_id: str | None = None


class ResizeVolumeRequest(WireModel):
    size_gb: int


class CloneVolumeRequest(WireModel):
    name: str


class AttachVolumesRequest(WireModel):
    volume_ids: list[str]


class DetachVolumesRequest(WireModel):
    volume_ids: list[str]


class DeploymentRequest(WireModel):
    """Create an instance. Exactly one boot source: ``image_id`` or ``boot_volume_id``."""

    name: str
    region: str
    gpu_model: str
    gpu_count: int
    image_id: str | None = None
    boot_volume_id: str | None = None
    custom_image_id: str | None = None
    ssh_key_ids: list[str]
    startup_script_id: str | None = None
    cloud_init: str | None = None
    public_ip: bool = True
    security_rules: list[AddFirewallRuleRequest] | None = None


class CreateSnapshotRequest(WireModel):
    name: str
    instance_id: str
    description: str | None = None


class RestoreSnapshotRequest(WireModel):
    """A new instance from a snapshot, in the snapshot's region."""

    name: str | None = None
    gpu_model: str | None = None
    gpu_count: int | None = None
    ssh_key_ids: list[str]
    public_ip: bool = True


class CreateImageRequest(WireModel):
    name: str


class PublicIPRequest(WireModel):
    enabled: bool


class AddFirewallRuleRequest(WireModel):
    direction: Direction
    protocol: Protocol
    ethertype: EtherType = EtherType.IPV4
    remote_ip_prefix: str = "0.0.0.0/0"
    port_range_min: int | None = None
    port_range_max: int | None = None


class CreateFirewallRequest(WireModel):
    name: str
    region: str
    description: str | None = None


class AttachFirewallRequest(WireModel):
    """The complete set of instances: an instance left out is detached."""

    instance_ids: list[str]


class CreateSSHKeyRequest(WireModel):
    name: str
    public_key: str


class CreateScriptRequest(WireModel):
    name: str
    content: str
    description: str | None = None


class UpdateScriptRequest(WireModel):
    content: str | None = None
    description: str | None = None


Currency = Literal["USD", "EUR", "INR"]


class PricingRequest(WireModel):
    tier: Literal["legacy", "advanced"] = "legacy"
    currency: Currency = "USD"
    resource_type: Literal["volume", "instance", "snapshot"]
    volume_size_gb: int | None = None
    volume_type: str | None = None
    gpu_model: str | None = None
    gpu_count: int | None = None


DeploymentRequest.model_rebuild()
