"""Status models of the custom resources: with :mod:`specs`, the one source of their CRD schemas."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from barrack_operator.resources.specs import Model


class Condition(Model):
    type: str = Field(description="Ready, Synced, or Attached (volumes).")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str = Field(description="CamelCase reason, e.g. DetachBlocked.")
    message: str = Field(default="", description="What is happening and what to do next.")
    lastTransitionTime: datetime = Field(description="When status last changed (RFC 3339).")
    observedGeneration: int | None = Field(
        default=None, description="metadata.generation this was computed for."
    )


class CommonStatus(Model):
    id: str | None = Field(default=None, description="Barrack id of the managed resource.")
    lastHandledReconcileAt: str | None = Field(
        default=None,
        description="The value of the annotation barrack.ai/reconcile-requested-at that the last pass handled.",
    )
    state: str | None = Field(default=None, description="Barrack's own state word, e.g. ACTIVE or AVAILABLE.")
    observedGeneration: int | None = Field(default=None, description="Last metadata.generation reconciled.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready, Synced, Reconciling, Stalled (and Attached on volumes); one per type.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


class Cost(Model):
    hourly: float = Field(
        description="What the resource costs per hour now, at Barrack's prices (0 while in a transition Barrack does not bill)."
    )
    currency: str = Field(description="The account's currency: USD, EUR or INR.")
    accrued: float | None = Field(
        default=None, description="What the resource has cost so far, from Barrack's billing records."
    )


class BilledStatus(CommonStatus):
    cost: Cost | None = Field(
        default=None, description="What the resource costs, from Barrack's prices and billing."
    )


class BarrackVolumeStatus(BilledStatus):
    region: str | None = Field(default=None, description="The region Barrack made the volume in.")
    sizeGB: int | None = Field(default=None, description="Size Barrack reports.")
    attachedInstanceId: str | None = Field(default=None, description="Instance the volume is attached to.")


class PlacementStatus(Model):
    region: str | None = Field(
        default=None, description="The region the instance is in, or is being made in."
    )
    gpuModel: str | None = Field(default=None, description="Its GPU model.")
    gpuCount: int | None = Field(default=None, description="Its GPUs.")
    hourlyPrice: float | None = Field(
        default=None, description="Its price per hour while running, in the account's currency."
    )
    alternative: int | None = Field(
        default=None,
        description="Which alternative of spec.placement it is (0 is the first); none without placement.",
    )


class PowerScheduleStatus(Model):
    name: str | None = Field(default=None, description="The BarrackPowerSchedule that powers the instance.")
    off: bool | None = Field(
        default=None, description="true in its off-hours: the instance is kept in its offState."
    )
    effectivePowerState: str | None = Field(
        default=None,
        description="The state the schedule keeps it in now (none inside a window: spec.powerState rules).",
    )
    nextChange: str | None = Field(
        default=None, description="When the schedule's state changes next (RFC 3339)."
    )


class LifetimeStatus(Model):
    startedAt: str | None = Field(
        default=None, description="When the lifetime began, on Barrack's clock (the object's creation)."
    )
    expiresAt: str | None = Field(default=None, description="When the lifetime ends (RFC 3339).")
    extendedBy: str | None = Field(default=None, description="The extensions so far, added up (e.g. 3h).")
    lastExtension: str | None = Field(
        default=None,
        description="The barrack.ai/extend-lifetime value last taken (a new value extends once more).",
    )
    action: str | None = Field(
        default=None, description="What happens at the end: Hibernate, Stop or Delete."
    )
    expired: bool | None = Field(default=None, description="The lifetime has ended.")


class BarrackInstanceStatus(BilledStatus):
    expiresAt: str | None = Field(default=None, description="When spec.lifetime ends (RFC 3339).")
    lifetime: LifetimeStatus | None = Field(default=None, description="Where spec.lifetime stands.")
    powerSchedule: PowerScheduleStatus | None = Field(
        default=None, description="The power schedule the instance follows, if any, and what it says now."
    )
    placement: PlacementStatus | None = Field(
        default=None, description="Where the instance landed (or is landing): region, GPU and price."
    )
    publicIP: str | None = Field(default=None, description="Public IP address.")
    privateIP: str | None = Field(default=None, description="Private IP address.")
    powerState: str | None = Field(
        default=None, description="Running, Stopped, Hibernated or the transition underway."
    )


class BarrackFirewallStatus(CommonStatus):
    attachedInstanceIds: list[str] = Field(
        default_factory=list, description="Instances the firewall is attached to."
    )
    ruleIds: list[str] = Field(default_factory=list, description="Barrack ids of the rules.")


class BarrackStartupScriptStatus(CommonStatus):
    contentSHA256: str | None = Field(default=None, description="SHA-256 of the content Barrack holds.")
    updatedAt: str | None = Field(default=None, description="When Barrack last changed the script.")
    usedBy: list[str] = Field(
        default_factory=list, description="Barrack ids of the instances created with it and not deleted."
    )


class BarrackSSHKeyStatus(CommonStatus):
    fingerprint: str | None = Field(default=None, description="Key fingerprint Barrack reports.")


class BarrackSnapshotStatus(BilledStatus):
    sizeGB: int | None = Field(default=None, description="Size Barrack reports.")
    region: str | None = Field(default=None, description="Region of the snapshot (of its instance).")
    sourceInstanceId: str | None = Field(default=None, description="The instance the snapshot was taken of.")


class BarrackImageStatus(CommonStatus):
    sizeGB: int | None = Field(default=None, description="Size Barrack reports.")
    region: str | None = Field(default=None, description="Region of the image (of its snapshot).")
    sourceSnapshotId: str | None = Field(default=None, description="The snapshot the image was made from.")


class BarrackSnapshotScheduleStatus(Model):
    lastScheduleTime: datetime | None = Field(
        default=None, description="The time slot of the last run (RFC 3339)."
    )
    nextScheduleTime: datetime | None = Field(
        default=None, description="The time slot of the next run; none while suspended."
    )
    lastSuccessfulSnapshot: str | None = Field(
        default=None, description="The newest of the schedule's BarrackSnapshots that is Ready."
    )
    instances: list[str] = Field(
        default_factory=list, description="The BarrackInstances the last run snapshotted."
    )
    observedGeneration: int | None = Field(default=None, description="Last metadata.generation handled.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready (the schedule is valid and runs) and Synced (the last run made its snapshots); "
        "one per type.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )


# The account (cluster-scoped) -----------------------------------------------------------------------


class NamespaceBurn(Model):
    namespace: str = Field(description="A namespace with a budget on this account.")
    burnPerHour: float | None = Field(
        default=None, description="What its resources will cost per hour once settled."
    )
    maxHourlySpend: float | None = Field(default=None, description="Its budget.")


class MonthCount(Model):
    month: str = Field(description="The calendar month (YYYY-MM, UTC).")
    countedAt: str | None = Field(
        default=None, description="When the figures were last counted (Barrack's clock)."
    )


class MonthClosed(Model):
    month: str = Field(description="The calendar month (YYYY-MM, UTC).")
    total: float = Field(description="What the account accrued in it.")
    saved: float = Field(description="What power schedules and lifetimes avoided in it.")


class BarrackAccountStatus(Model):
    namespaces: list[NamespaceBurn] = Field(
        default_factory=list,
        description="Each namespace with a budget (spec.namespaceBudgets): its burn and limit.",
    )
    balance: float | None = Field(default=None, description="Credit left, from Barrack.")
    currency: str | None = Field(default=None, description="The account's currency.")
    burnPerHour: float | None = Field(
        default=None, description="What the account's resources cost per hour now, at Barrack's prices."
    )
    runwayHours: float | None = Field(
        default=None, description="balance / burnPerHour: hours until credits run out."
    )
    monthToDate: float | None = Field(
        default=None, description="What the account accrued this calendar month (UTC, on Barrack's clock)."
    )
    projectedMonthEnd: float | None = Field(
        default=None, description="monthToDate plus burnPerHour over the hours left in the month."
    )
    savedThisMonth: float | None = Field(
        default=None,
        description="The full-price hours that power schedules and lifetimes avoided this month, at Barrack's "
        "prices (an instance held off against a spec that wants it running).",
    )
    monthlyBudget: float | None = Field(
        default=None, description="spec.monthlyBudget, beside the projection."
    )
    month: MonthCount | None = Field(
        default=None, description="Which month the figures are of, counted when."
    )
    lastMonth: MonthClosed | None = Field(default=None, description="The month before, as it closed.")
    observedGeneration: int | None = Field(default=None, description="Last metadata.generation handled.")
    conditions: list[Condition] = Field(
        default_factory=list,
        description="Ready (the key works and Barrack answers), CreditsLow and BudgetForecast; one per type.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
