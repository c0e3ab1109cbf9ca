"""The table of the kinds: names, models, printer columns and CEL rules. One entry a kind; CRD
generation, the handlers and the tests all read it. ``KINDS`` are the four namespaced kinds that
are Barrack resources; ``ACCOUNT`` is the cluster-scoped BarrackAccount they use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from barrack_operator.resources import account_spec, power_spec, script_spec
from barrack_operator.resources import specs as s
from barrack_operator.resources import statuses as st


@dataclass(frozen=True, eq=False)
class Kind:
    kind: str
    plural: str
    short_name: str
    spec: type[s.Model]
    status: type[s.Model]
    description: str
    immutable_fields: tuple[str, ...]
    extra_columns: tuple[dict[str, Any], ...] = ()
    scope: str = "Namespaced"
    categories: tuple[str, ...] = (s.CATEGORY,)
    barrack_resource: bool = True
    """Each object manages one Barrack resource (id, state, finalizer); False for accounts and
    schedules, which are read and acted on but own nothing on Barrack."""

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{s.GROUP}"


def _col(name: str, path: str, type_: str = "string", priority: int = 0) -> dict[str, Any]:
    return {"name": name, "type": type_, "jsonPath": path, "priority": priority}


VOLUME = Kind(
    kind="BarrackVolume",
    plural="barrackvolumes",
    short_name="bvol",
    spec=s.BarrackVolumeSpec,
    status=st.BarrackVolumeStatus,
    description="A Barrack persistent volume, optionally attached to a BarrackInstance in the same region.",
    immutable_fields=("name", "region", "volumeType", "bootable", "imageId", "source"),
    extra_columns=(
        _col("Size", ".status.sizeGB", "integer"),
        _col("Instance", ".status.attachedInstanceId"),
        _col("Attached", '.status.conditions[?(@.type=="Attached")].status'),
        _col("Cost/h", ".status.cost.hourly", "number"),
    ),
)
INSTANCE = Kind(
    kind="BarrackInstance",
    plural="barrackinstances",
    short_name="binst",
    spec=s.BarrackInstanceSpec,
    status=st.BarrackInstanceStatus,
    description="A Barrack GPU virtual machine.",
    immutable_fields=(
        "name",
        "region",
        "gpuModel",
        "gpuCount",
        "placement",
        "image",
        "imageId",
        "bootVolumeRef",
        "customImageRef",
        "customImageId",
        "restoreFrom",
        "sshKeyRefs",
        "startupScript",
        "startupScriptRef",
        "cloudInit",
    ),
    extra_columns=(
        _col("Region", ".status.placement.region"),
        _col("GPU", ".status.placement.gpuModel"),
        _col("Power", ".status.powerState"),
        _col("Scheduled-Off", ".status.powerSchedule.off", "boolean"),
        _col("Public-IP", ".status.publicIP"),
        _col("Cost/h", ".status.cost.hourly", "number"),
    ),
)
FIREWALL = Kind(
    kind="BarrackFirewall",
    plural="barrackfirewalls",
    short_name="bfw",
    spec=s.BarrackFirewallSpec,
    status=st.BarrackFirewallStatus,
    description="A Barrack firewall: a set of rules attached to BarrackInstances of one region.",
    immutable_fields=("name", "region", "description"),
)
SSH_KEY = Kind(
    kind="BarrackSSHKey",
    plural="barracksshkeys",
    short_name="bkey",
    spec=s.BarrackSSHKeySpec,
    status=st.BarrackSSHKeyStatus,
    description="An SSH public key registered on Barrack, installed on the instances that name it.",
    immutable_fields=("name", "publicKey"),
)
SCRIPT = Kind(
    kind="BarrackStartupScript",
    plural="barrackstartupscripts",
    short_name="bscript",
    spec=script_spec.BarrackStartupScriptSpec,
    status=st.BarrackStartupScriptStatus,
    description="A Barrack startup script, run once at the first boot of the instances that name it.",
    immutable_fields=("name",),
    extra_columns=(_col("SHA256", ".status.contentSHA256", priority=1),),
)
SNAPSHOT = Kind(
    kind="BarrackSnapshot",
    plural="barracksnapshots",
    short_name="bsnap",
    spec=s.BarrackSnapshotSpec,
    status=st.BarrackSnapshotStatus,
    description="A Barrack snapshot of an instance: restorable into a new instance, or made into a custom image.",
    immutable_fields=("name", "instanceRef", "instanceId", "description"),
    extra_columns=(
        _col("Size", ".status.sizeGB", "integer"),
        _col("Instance", ".status.sourceInstanceId"),
        _col("Cost/h", ".status.cost.hourly", "number"),
    ),
)
IMAGE = Kind(
    kind="BarrackImage",
    plural="barrackimages",
    short_name="bimg",
    spec=s.BarrackImageSpec,
    status=st.BarrackImageStatus,
    description="A Barrack custom image made from a snapshot; BarrackInstances boot from it (customImageRef).",
    immutable_fields=("name", "snapshotRef", "snapshotId"),
    extra_columns=(
        _col("Size", ".status.sizeGB", "integer"),
        _col("Snapshot", ".status.sourceSnapshotId"),
    ),
)
SCHEDULE = Kind(
    kind="BarrackSnapshotSchedule",
    plural="barracksnapshotschedules",
    short_name="bsched",
    spec=s.BarrackSnapshotScheduleSpec,
    status=st.BarrackSnapshotScheduleStatus,
    description="Snapshots of BarrackInstances on a schedule, keeping the newest per instance: it creates "
    "BarrackSnapshot objects (owned by it) and deletes the oldest beyond keep.",
    immutable_fields=(),
    extra_columns=(
        _col("Schedule", ".spec.schedule"),
        _col("Last", ".status.lastScheduleTime", "date"),
        _col("Next", ".status.nextScheduleTime", "date"),
        _col("Keep", ".spec.keep", "integer"),
        _col("Suspend", ".spec.suspend", "boolean", priority=1),
        _col("Last-Snapshot", ".status.lastSuccessfulSnapshot", priority=1),
    ),
    categories=(),
    barrack_resource=False,
)
POWER_SCHEDULE = Kind(
    kind="BarrackPowerSchedule",
    plural="barrackpowerschedules",
    short_name="bpow",
    spec=power_spec.BarrackPowerScheduleSpec,
    status=power_spec.BarrackPowerScheduleStatus,
    description="On-hours for BarrackInstances: outside its weekly windows (in a time zone) an instance is "
    "kept hibernated or stopped; inside, its own spec.powerState rules. It never writes the instance's spec.",
    immutable_fields=(),
    extra_columns=(
        _col("Zone", ".spec.timeZone"),
        _col("State", ".status.state"),
        _col("Next", ".status.nextChange", "date"),
        _col("Off-State", ".spec.offState", priority=1),
    ),
    categories=(),
    barrack_resource=False,
)
ACCOUNT = Kind(
    kind="BarrackAccount",
    plural="barrackaccounts",
    short_name="bacct",
    spec=account_spec.BarrackAccountSpec,
    status=st.BarrackAccountStatus,
    description="A Barrack account: its API key (a Secret), API URL, rate limit, the namespaces that may use "
    "it, a budget, and in status its balance, hourly burn and runway.",
    immutable_fields=(),
    extra_columns=(
        _col("Balance", ".status.balance", "number"),
        _col("Currency", ".status.currency"),
        _col("Burn/h", ".status.burnPerHour", "number"),
        _col("Runway", ".status.runwayHours", "number"),
        _col("Credits-Low", '.status.conditions[?(@.type=="CreditsLow")].status'),
        _col("Month", ".status.monthToDate", "number"),
        _col("Projected", ".status.projectedMonthEnd", "number"),
        _col("Saved", ".status.savedThisMonth", "number", priority=1),
    ),
    scope="Cluster",
    categories=(),  # `kubectl get barrack` lists what costs money in a namespace
    barrack_resource=False,
)
KINDS: tuple[Kind, ...] = (VOLUME, INSTANCE, FIREWALL, SSH_KEY, SCRIPT, SNAPSHOT, IMAGE)
"""The kinds whose objects each manage one Barrack resource."""
ALL_KINDS: tuple[Kind, ...] = (*KINDS, SCHEDULE, POWER_SCHEDULE, ACCOUNT)
"""Every CRD the operator brings."""
BY_KIND: dict[str, Kind] = {kind.kind: kind for kind in KINDS}

EXTRA_SPEC_VALIDATIONS: dict[str, list[dict[str, str]]] = {
    "BarrackVolume": [
        {
            "rule": "has(self.region) || (has(self.instanceRef) && !self.bootable && !has(self.source))",
            "message": "region is required, unless instanceRef names the instance whose region a new, empty, "
            "non-bootable volume follows",
        },
        {
            "rule": "!(has(self.instanceRef) && has(self.instanceId))",
            "message": "set instanceRef or instanceId, not both",
        },
        {
            "rule": "!self.bootable || has(self.imageId) || has(self.source)",
            "message": "a bootable volume needs imageId",
        },
        {
            "rule": "!has(self.source) || (has(self.source.volumeRef) != has(self.source.volumeId))",
            "message": "source takes exactly one of volumeRef and volumeId",
        },
        {"rule": "!has(oldSelf.sizeGB) || self.sizeGB >= oldSelf.sizeGB", "message": "sizeGB can only grow"},
    ],
    "BarrackInstance": [
        {
            "rule": "has(self.placement) != has(self.region)",
            "message": "set region with gpuModel (and gpuCount), or placement: exactly one of the two",
        },
        {
            "rule": "has(self.region) == has(self.gpuModel)",
            "message": "region and gpuModel go together",
        },
        {
            "rule": "!has(self.placement) || !has(self.gpuCount)",
            "message": "with placement, each alternative names its gpuCount",
        },
        {
            "rule": " + ".join(f"(has(self.{f}) ? 1 : 0)" for f in s.BOOT_SOURCES) + " == 1",
            "message": f"set exactly one boot source: {', '.join(s.BOOT_SOURCES)}",
        },
        {
            "rule": "!has(self.restoreFrom) || (has(self.restoreFrom.snapshotRef) != has(self.restoreFrom.snapshotId))",
            "message": "restoreFrom takes exactly one of snapshotRef and snapshotId",
        },
        {
            "rule": "!has(self.restoreFrom) || (!has(self.startupScript) && !has(self.startupScriptRef) && "
            "!has(self.cloudInit))",
            "message": "a restored instance boots the snapshot's disk: restoreFrom takes no startupScript, "
            "startupScriptRef or cloudInit",
        },
        {
            "rule": "!(has(self.startupScript) && has(self.startupScriptRef))",
            "message": "set startupScript or startupScriptRef, not both",
        },
    ],
    "BarrackStartupScript": [
        {
            "rule": "has(self.content) != has(self.contentFrom)",
            "message": "set exactly one of content and contentFrom",
        },
    ],
    "BarrackSnapshot": [
        {
            "rule": "has(self.instanceRef) != has(self.instanceId)",
            "message": "set exactly one of instanceRef and instanceId",
        },
    ],
    "BarrackImage": [
        {
            "rule": "has(self.snapshotRef) != has(self.snapshotId)",
            "message": "set exactly one of snapshotRef and snapshotId",
        },
    ],
    "BarrackPowerSchedule": [
        {
            "rule": "has(self.instanceRef) != has(self.instanceSelector)",
            "message": "set exactly one of instanceRef and instanceSelector",
        },
    ],
    "BarrackSnapshotSchedule": [
        {
            "rule": "has(self.instanceRef) != has(self.instanceSelector)",
            "message": "set exactly one of instanceRef and instanceSelector",
        },
        {
            "rule": "!self.schedule.startsWith('@every') || self.schedule.matches('^@every ([0-9]+h)?([0-9]+m)?([0-9]+s)?$')",
            "message": "@every takes a duration of hours, minutes and seconds, e.g. @every 30m or @every 1h30m",
        },
    ],
}
