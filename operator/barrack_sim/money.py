"""The simulated account's money (contract section 6): the published price list, per-minute billing
records per resource, and the balance drained on the simulator's clock.

Prices: GPUs per GPU per hour by model, volumes per TB per hour by type, snapshots per 100 GB per
hour, a hibernated instance at a flat rate. ACTIVE and SHUTOFF instances are billed in full,
transitional states are not; volumes are billed while they exist. When the balance reaches zero
the account's instances are hibernated (volumes are kept); see :meth:`barrack_sim.account.Account.tick`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from barrack_operator.barrack import models as m
from barrack_operator.barrack import requests as rq

GPU_HOURLY_USD: dict[str, float] = {
    "RTX-A6000": 0.50,
    "A40": 0.60,
    "L40": 0.90,
    "A100-PCIe-80GB": 1.40,
    "A100-SXM4-80GB-NVLink": 1.60,
    "H100-PCIe-80GB": 2.20,
    "H100-PCIe-NVLink-80GB": 2.40,
    "H100-SXM5-80GB": 2.80,
    "B300-262GB": 5.50,
}
"""Per GPU per hour, in USD."""
VOLUME_TB_HOURLY_USD: dict[str, float] = {"SSD": 0.07, "NVMe": 0.10, "HDD": 0.03}
"""Per TB (1000 GB) per hour, in USD."""
SNAPSHOT_100GB_HOURLY_USD = 0.005
HIBERNATED_HOURLY: dict[str, float] = {"USD": 0.01, "EUR": 0.01, "INR": 1.0}
"""The flat hourly rate of a hibernated instance [doc]."""
CURRENCY_PER_USD: dict[str, float] = {"USD": 1.0, "EUR": 0.92, "INR": 84.0}

IS = m.InstanceState
BILLED_IN_FULL = frozenset({IS.ACTIVE, IS.SHUTOFF})


def convert(usd: float, currency: str) -> float:
    return usd * CURRENCY_PER_USD[currency]


def instance_hourly(instance: m.VMInstance, currency: str) -> float:
    if instance.status in BILLED_IN_FULL:
        return convert(GPU_HOURLY_USD[instance.gpu_model] * instance.gpu_count, currency)
    if instance.status == IS.HIBERNATED:
        return HIBERNATED_HOURLY[currency]
    return 0.0  # transitional states are not billed


def instance_full_hourly(gpu_model: str, gpu_count: int, currency: str) -> float:
    return convert(GPU_HOURLY_USD[gpu_model] * gpu_count, currency)


def volume_hourly(size_gb: int, volume_type: str, currency: str) -> float:
    return convert(VOLUME_TB_HOURLY_USD[volume_type] * size_gb / 1000, currency)


def snapshot_hourly_of(size_gb: int, currency: str) -> float:
    return convert(SNAPSHOT_100GB_HOURLY_USD * size_gb / 100, currency)


def snapshot_hourly(snapshot: m.Snapshot, currency: str) -> float:
    """Billed on its actual size once made [doc]; not while being made or deleted."""
    return (
        snapshot_hourly_of(snapshot.size_gb, currency) if snapshot.status == m.SnapshotState.SUCCESS else 0.0
    )


def quote(request: rq.PricingRequest) -> float:
    """``POST /pricing/``: the hourly price of what the request describes."""
    if request.resource_type == "snapshot":
        return snapshot_hourly_of(request.volume_size_gb or 0, request.currency)
    if request.resource_type == "instance":
        model = request.gpu_model or ""
        if model not in GPU_HOURLY_USD:
            raise KeyError(f"Unknown GPU model {model!r}")
        return instance_full_hourly(model, request.gpu_count or 1, request.currency)
    volume_type = request.volume_type or "SSD"
    if volume_type not in VOLUME_TB_HOURLY_USD:
        raise KeyError(f"Unknown volume type {volume_type!r}")
    return volume_hourly(request.volume_size_gb or 0, volume_type, request.currency)


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds")


@dataclass
class Record:
    """One billing record: a period at one per-minute rate."""

    billing_id: str
    resource_id: str
    name: str
    start: datetime
    per_minute_rate: float
    status: str  # active, hibernated, completed
    minutes: float = 0.0
    end: datetime | None = None

    @property
    def cost(self) -> float:
        return self.minutes * self.per_minute_rate

    def as_dict(self, id_key: str, currency: str) -> dict[str, Any]:
        return {
            "billing_id": self.billing_id,
            id_key: self.resource_id,
            "name": self.name,
            "start_time": _iso(self.start),
            "end_time": _iso(self.end) if self.end else None,
            "total_duration_minutes": round(self.minutes, 3),
            "per_minute_rate": round(self.per_minute_rate, 6),
            "total_cost": round(self.cost, 6),
            "currency": currency,
            "status": self.status,
        }


@dataclass
class Ledger:
    """Billing records per resource id, and the clock time money was last counted at."""

    records: dict[str, list[Record]] = field(default_factory=dict)
    counted_at: float | None = None
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def bill(
        self, resource_id: str, name: str, hourly: float, status: str, minutes: float, now: datetime
    ) -> float:
        """Add ``minutes`` at ``hourly`` to the resource's open record (a new one when the rate or
        status changed); the cost of those minutes."""
        records = self.records.setdefault(resource_id, [])
        current = records[-1] if records and records[-1].end is None else None
        rate = hourly / 60
        if current is None or abs(current.per_minute_rate - rate) > 1e-12 or current.status != status:
            start = now - timedelta(minutes=minutes)  # these minutes are the new record's, at its rate
            if current is not None:
                current.end = start
                current.status = "completed" if current.status == "active" else current.status
            if hourly <= 0:
                return 0.0
            current = Record(f"BILL-{next(self._ids)}", resource_id, name, start, rate, status)
            records.append(current)
        current.minutes += minutes
        return minutes * rate

    def close(self, resource_id: str, now: datetime) -> None:
        for record in self.records.get(resource_id, []):
            if record.end is None:
                record.end = now
                record.status = "completed"

    def page(
        self, resource_id: str, id_key: str, currency: str
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        records = self.records.get(resource_id, [])
        summary = {
            "totalMinutes": round(sum(r.minutes for r in records), 3),
            "totalCost": round(sum(r.cost for r in records), 6),
            "activeCount": sum(1 for r in records if r.end is None),
        }
        return [r.as_dict(id_key, currency) for r in records], summary


def wall_time(clock_seconds: float, started_clock: float, started_wall: datetime) -> datetime:
    """The wall time of a simulator clock reading (the clock can be pushed forward)."""
    return started_wall + timedelta(seconds=clock_seconds - started_clock)
