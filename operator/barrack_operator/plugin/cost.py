"""What ``kubectl barrack cost`` adds up, pure: each billed object's hourly and accrued cost from
its status, grouped by namespace, account or kind with totals, and each account's balance,
burn, runway and month."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from barrack_operator.resources.specs import account_name

GROUPS = ("namespace", "account", "kind")


def cost_rows(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per object whose status has a cost."""
    rows = []
    for obj in objects:
        cost = (obj.get("status") or {}).get("cost")
        if not cost:
            continue
        meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
        rows.append({
            "namespace": meta.get("namespace"),
            "kind": obj["kind"],
            "name": meta.get("name"),
            "account": account_name(spec),
            "hourly": float(cost.get("hourly") or 0.0),
            "accrued": float(cost.get("accrued") or 0.0),
            "currency": cost.get("currency") or "",
        })  # fmt: skip
    return rows


def grouped(rows: list[dict[str, Any]], by: str) -> list[dict[str, Any]]:
    """Rows summed per value of ``by`` (and currency), in order of hourly cost, highest first."""
    sums: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"hourly": 0.0, "accrued": 0.0, "objects": 0}
    )
    for row in rows:
        entry = sums[(str(row[by]), row["currency"])]
        entry["hourly"] += row["hourly"]
        entry["accrued"] += row["accrued"]
        entry["objects"] += 1
    out = [{by: key, "currency": currency, **values} for (key, currency), values in sums.items()]
    return sorted(out, key=lambda r: (-r["hourly"], r[by]))


def totals(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Hourly and accrued totals, one per currency."""
    return grouped(rows, "currency")


def account_rows(accounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for account in accounts:
        status = account.get("status") or {}
        rows.append({
            "account": account["metadata"]["name"],
            "balance": status.get("balance"),
            "currency": status.get("currency"),
            "burnPerHour": status.get("burnPerHour"),
            "runwayHours": status.get("runwayHours"),
            "monthToDate": status.get("monthToDate"),
            "projectedMonthEnd": status.get("projectedMonthEnd"),
        })  # fmt: skip
    return rows
