"""Namespace budgets: an account's ``namespaceBudgets`` cap what the resources of one namespace may
cost per hour, beside the account's own ``maxHourlySpend``. A namespace's burn
(``AccountRuntime.namespace_burn``) is what the resources its objects record will cost once
settled, priced as the account's committed burn is, plus what the guard admitted for it that no
listing shows yet. Here: the refusal's words and the account status' list."""

from __future__ import annotations

from collections.abc import Mapping


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
