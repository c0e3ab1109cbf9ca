"""What Barrack resources cost (contract section 6), kopf-free.

:class:`PriceBook` holds an account's prices from the pricing route: per GPU per hour by model,
per TB per hour by volume type, per 100 GB per hour for snapshots. A price is asked once and again after ``refresh_seconds`` (an
hour); a failed refresh keeps the last prices and says so (``error``). ACTIVE and SHUTOFF
instances are billed in full, HIBERNATED ones at Barrack's flat rate, transitional states not at
all; volumes by size and type while they exist; snapshots by size once made (SUCCESS). :class:`Accruals` keeps what each resource has
cost so far, from its billing route, asked at most every ``interval`` seconds per resource.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from barrack_operator.barrack import BarrackClient, BarrackError
from barrack_operator.barrack import models as m
from barrack_operator.barrack import requests as rq

log = logging.getLogger(__name__)
IS = m.InstanceState
BILLED_IN_FULL = frozenset({IS.ACTIVE, IS.SHUTOFF})
HIBERNATED_HOURLY = {"USD": 0.01, "EUR": 0.01, "INR": 1.0}
"""A hibernated instance's flat rate per hour [doc]."""
PER_TB = 1000
"""Volumes are priced per TB: the price book asks for 1000 GB and scales."""
SNAPSHOT_UNIT_GB = 100
"""Snapshots are priced per 100 GB (on the legacy tier, the only one that prices them)."""


@dataclass
class PriceBook:
    client: BarrackClient
    refresh_seconds: float = 3600.0
    clock: Callable[[], float] = time.monotonic
    currency: str = "USD"
    gpu: dict[str, tuple[float, float]] = field(default_factory=dict)
    """GPU model → (price per GPU per hour, when it was asked)."""
    volume: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Volume type → (price per TB per hour, when it was asked)."""
    snapshot: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Tier → (price per 100 GB per hour, when it was asked)."""
    error: str | None = None
    """Why the last refresh failed (the last prices are kept), or None."""
    _asking: dict[str, asyncio.Future[None]] = field(default_factory=dict, repr=False)
    """Prices being asked now, by request."""

    def set_currency(self, currency: str) -> None:
        if currency and currency != self.currency:
            self.currency = currency
            self.gpu.clear()
            self.volume.clear()
            self.snapshot.clear()

    def _stale(self, entry: tuple[float, float] | None) -> bool:
        return entry is None or self.clock() - entry[1] >= self.refresh_seconds

    async def ensure(
        self, gpu_models: Iterable[str] = (), volume_types: Iterable[str] = (), snapshots: bool = False
    ) -> None:
        """Ask for every price not known or older than the refresh period."""
        if snapshots and self._stale(self.snapshot.get("legacy")):
            await self._ask(self.snapshot, "legacy", rq.PricingRequest(
                resource_type="snapshot", volume_size_gb=SNAPSHOT_UNIT_GB, tier="legacy",
                currency=self._wire_currency(),
            ))  # fmt: skip
        for model in set(gpu_models):
            if self._stale(self.gpu.get(model)):
                await self._ask(self.gpu, model, rq.PricingRequest(
                    resource_type="instance", gpu_model=model, gpu_count=1, currency=self._wire_currency()
                ))  # fmt: skip
        for volume_type in set(volume_types):
            if self._stale(self.volume.get(volume_type)):
                tier = "legacy" if volume_type == m.VolumeType.SSD else "advanced"
                await self._ask(self.volume, volume_type, rq.PricingRequest(
                    resource_type="volume", volume_size_gb=PER_TB, volume_type=volume_type, tier=tier,
                    currency=self._wire_currency(),
                ))  # fmt: skip

    def _wire_currency(self) -> rq.Currency:
        return self.currency if self.currency in ("USD", "EUR", "INR") else "USD"  # type: ignore[return-value]

    async def _ask(self, table: dict[str, tuple[float, float]], key: str, request: rq.PricingRequest) -> None:
        """Ask one price; callers that need it while it is being asked wait for that answer (a
        restart over thousands of objects asks each price once, not once per object)."""
        asked = request.model_dump_json()
        asking = self._asking.get(asked)
        if asking is not None:
            await asyncio.shield(asking)
            return
        asking = asyncio.get_running_loop().create_future()
        self._asking[asked] = asking
        try:
            quote = (await self.client.get_pricing(request)).pricing
        except BarrackError as exc:
            self.error = f"refreshing the price of {key} failed ({exc}); the last prices are kept"
            log.warning("Barrack pricing: %s", self.error)
            return
        finally:
            del self._asking[asked]
            asking.set_result(None)
        table[key] = (quote.hourly, self.clock())
        self.error = None

    def instance_hourly(self, instance: m.VMInstance) -> float | None:
        """Per hour in its state now; None while the GPU's price is not known."""
        if instance.status == IS.HIBERNATED:
            return HIBERNATED_HOURLY.get(self.currency, 0.01)
        if instance.status not in BILLED_IN_FULL:
            return 0.0
        return self.full_instance_hourly(instance.gpu_model, instance.gpu_count)

    def full_instance_hourly(self, gpu_model: str, gpu_count: int) -> float | None:
        """Per hour while ACTIVE or SHUTOFF."""
        price = self.gpu.get(gpu_model)
        return None if price is None else price[0] * gpu_count

    def volume_hourly(self, size_gb: int, volume_type: str) -> float | None:
        price = self.volume.get(volume_type)
        return None if price is None else price[0] * size_gb / PER_TB

    def snapshot_hourly(self, snapshot: m.Snapshot) -> float | None:
        """Per hour once made (SUCCESS); nothing while it is being made or deleted."""
        if snapshot.status != m.SnapshotState.SUCCESS:
            return 0.0
        price = self.snapshot.get("legacy")
        return None if price is None else price[0] * snapshot.size_gb / SNAPSHOT_UNIT_GB

    async def hourly(self, item: m.VMInstance | m.Volume | m.Snapshot) -> float | None:
        if isinstance(item, m.Snapshot):
            await self.ensure(snapshots=True)
            return self.snapshot_hourly(item)
        if isinstance(item, m.VMInstance):
            await self.ensure(gpu_models=[item.gpu_model])
            return self.instance_hourly(item)
        await self.ensure(volume_types=[item.volume_type])
        return self.volume_hourly(item.size_gb, item.volume_type)

    async def burn(
        self,
        instances: Iterable[m.VMInstance],
        volumes: Iterable[m.Volume],
        instance_price: Callable[[m.VMInstance], float | None] | None = None,
        snapshots: Iterable[m.Snapshot] = (),
    ) -> float | None:
        """The hourly sum over the resources, each instance priced by ``instance_price`` (default:
        in its state now); None while a price is not known."""
        instances, volumes, snapshots = list(instances), list(volumes), list(snapshots)
        await self.ensure(
            gpu_models=[i.gpu_model for i in instances],
            volume_types=[v.volume_type for v in volumes],
            snapshots=bool(snapshots),
        )
        price = instance_price or self.instance_hourly
        parts = [price(i) for i in instances] + [
            self.volume_hourly(v.size_gb, v.volume_type) for v in volumes
        ]
        parts += [self.snapshot_hourly(s) for s in snapshots]
        return None if any(p is None for p in parts) else sum(p or 0.0 for p in parts)


@dataclass(frozen=True)
class Demand:
    """What a create or a power-on adds to an account's burn: an instance billed in full, or a
    volume; ``hibernated``: the instance is billed at the flat rate now (a restore adds the rest)."""

    listing: str  # instances or volumes
    gpu_model: str = ""
    gpu_count: int = 0
    volume_type: str = ""
    size_gb: int = 0
    hibernated: bool = False


async def demand_hourly(book: PriceBook, demand: Demand) -> float | None:
    if demand.listing == "instances":
        await book.ensure(gpu_models=[demand.gpu_model])
        full = book.full_instance_hourly(demand.gpu_model, demand.gpu_count)
    else:
        await book.ensure(volume_types=[demand.volume_type])
        full = book.volume_hourly(demand.size_gb, demand.volume_type)
    billed_now = HIBERNATED_HOURLY.get(book.currency, 0.01) if demand.hibernated else 0.0
    return None if full is None else max(0.0, full - billed_now)


def committed_hourly(book: PriceBook, instance: m.VMInstance) -> float | None:
    """What an instance will cost per hour once settled: in full unless hibernated or going."""
    if instance.status in (IS.HIBERNATED, IS.HIBERNATING):
        return HIBERNATED_HOURLY.get(book.currency, 0.01)
    if instance.status in (IS.DELETING, IS.ERROR, "DELETED"):
        return 0.0
    return book.full_instance_hourly(instance.gpu_model, instance.gpu_count)


@dataclass
class Accruals:
    """What each resource has cost so far (its billing route's summary), asked at most every
    ``interval`` seconds per resource; a failed ask keeps the last figure."""

    client: BarrackClient
    interval: float = 3600.0
    clock: Callable[[], float] = time.monotonic
    known: dict[str, tuple[float, float]] = field(default_factory=dict)
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    """Barrack's time, which its created_at is on."""

    async def accrued(self, item: m.VMInstance | m.Volume | m.Snapshot) -> float | None:
        entry = self.known.get(item.id)
        if entry is None and _younger_than(item.created_at, self.interval, self.now()):
            entry = self.known[item.id] = (0.0, self.clock())  # new: nothing to ask Barrack yet
        if entry is not None and self.clock() - entry[1] < self.interval:
            return entry[0]
        try:
            if isinstance(item, m.Snapshot):
                reply = await self.client.get_snapshot_billing(item.id)
            elif isinstance(item, m.VMInstance):
                reply = await self.client.get_instance_billing(item.id)
            else:
                reply = await self.client.get_volume_billing(item.id)
        except BarrackError as exc:
            log.debug("Billing of %s: %s", item.id, exc)
            return entry[0] if entry else None
        self.known[item.id] = (reply.summary.totalCost, self.clock())
        return reply.summary.totalCost

    def forget(self, barrack_id: str) -> None:
        self.known.pop(barrack_id, None)


def _younger_than(created_at: str | None, seconds: float, now: datetime) -> bool:
    if not created_at:
        return False
    try:
        created = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    except ValueError:
        return False
    if created.tzinfo is None:
        created = created.replace(tzinfo=UTC)
    return (now - created).total_seconds() < seconds


def runway_hours(balance: float, burn: float) -> float | None:
    """Hours the balance lasts at the burn; None when nothing burns."""
    return None if burn <= 0 else max(0.0, balance) / burn
