"""Namespace budgets: an account's ``namespaceBudgets`` cap what the resources of one namespace may
cost per hour, beside the account's own ``maxHourlySpend``. A namespace's burn is what the
resources its objects record (instances, volumes, snapshots) will cost once settled, plus what
the guard admitted for it that no listing shows yet."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from barrack_operator.costs import PriceBook, committed_hourly
from barrack_operator.inventory import Inventory


def namespace_committed(
    prices: PriceBook,
    inventory: Inventory,
    ids: Iterable[str],
    reserved: Iterable[float] = (),
) -> float | None:
    """What the resources of these ids will cost per hour once settled (prices must be known:
    None while one is not), plus what was admitted and is not listed yet."""
    total = sum(reserved)
    for barrack_id in ids:
        instance = inventory.instances.items.get(barrack_id)
        volume = inventory.volumes.items.get(barrack_id)
        snapshot = inventory.snapshots.items.get(barrack_id)
        part: float | None = 0.0
        if instance is not None:
            part = committed_hourly(prices, instance)
        elif volume is not None:
            part = prices.volume_hourly(volume.size_gb, volume.volume_type)
        elif snapshot is not None:
            part = prices.snapshot_hourly(snapshot)
        if part is None:
            return None
        total += part
    return total


async def price_everything(prices: PriceBook, inventory: Inventory, ids: Iterable[str]) -> None:
    """Ask the prices the resources of these ids need."""
    ids = set(ids)
    instances = [i for k, i in inventory.instances.items.items() if k in ids]
    volumes = [v for k, v in inventory.volumes.items.items() if k in ids]
    snapshots = any(k in ids for k in inventory.snapshots.items)
    await prices.ensure(
        gpu_models=[i.gpu_model for i in instances],
        volume_types=[v.volume_type for v in volumes],
        snapshots=snapshots,
    )


def over_namespace_budget(
    account: str, namespace: str, now: float, asked: float, limit: float, currency: str
) -> str | None:
    """Why the namespace's budget refuses what is asked, or None when it admits it."""
    if now + asked <= limit + 1e-9:
        return None
    return (
        f"this would raise namespace {namespace}'s burn on account {account} to {now + asked:.2f} {currency}/h: now "
        f"{now:.2f}, this asks {asked:.2f}, its limit (the account's namespaceBudgets) is {limit:.2f}; nothing was "
        "called: it goes ahead by itself once the namespace's demand falls or its budget rises"
    )


def namespace_burns(
    budgets: Mapping[str, float], burns: Mapping[str, float | None]
) -> list[dict[str, object]]:
    """The account status' list: each budgeted namespace's burn now and its limit."""
    return [
        {
            "namespace": ns,
            "burnPerHour": None if burns.get(ns) is None else round(burns[ns] or 0.0, 6),
            "maxHourlySpend": limit,
        }
        for ns, limit in sorted(budgets.items())
    ]
