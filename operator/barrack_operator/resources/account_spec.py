"""The BarrackAccount's spec model: a Barrack account's key, URL, rate limit, namespaces and
budget (with :mod:`specs` and :mod:`statuses`, the one source of the CRD schemas)."""

from __future__ import annotations

from pydantic import Field

from barrack_operator.resources.specs import (
    DNS_LABEL_PATTERN,
    DNS_SUBDOMAIN_PATTERN,
    HEADER_TOKEN_PATTERN,
    Model,
)


class SecretKeyRef(Model):
    name: str = Field(
        description="Name of a Secret in the operator's own namespace (the only namespace it reads Secrets in).",
        pattern=DNS_SUBDOMAIN_PATTERN,
        max_length=253,
    )
    key: str = Field(
        default="api-key", description="Key in the Secret holding the API key.", pattern=r"^[-._a-zA-Z0-9]+$"
    )


class AccountAuth(Model):
    header: str = Field(
        default="Authorization",
        description="Request header carrying the key (the legacy dialect: api_key).",
        pattern=HEADER_TOKEN_PATTERN,
    )
    scheme: str = Field(
        default="Bearer",
        description="Word before the key in that header; none sends the bare key.",
        pattern=HEADER_TOKEN_PATTERN,
    )


class AccountRateLimit(Model):
    requestsPerSecond: float = Field(
        default=10.0, description="Calls per second to Barrack for this account.", gt=0, lt=1000
    )
    burst: int = Field(
        default=5, description="Calls that may go at once before the rate applies.", ge=1, le=1000
    )


class NamespaceBudget(Model):
    namespace: str = Field(
        description="A namespace whose objects use this account.", pattern=DNS_LABEL_PATTERN
    )
    maxHourlySpend: float = Field(
        description="What the namespace's resources on this account may cost per hour; a create or power-on "
        "beyond it is refused before any call (BudgetExceeded).",
        gt=0,
    )


class BarrackAccountSpec(Model):
    secretRef: SecretKeyRef = Field(description="Where the API key is: a Secret in the operator's namespace.")
    apiUrl: str = Field(
        default="https://barrack.ai/api", description="Barrack API base URL.", pattern=r"^https?://\S+$"
    )
    auth: AccountAuth = Field(default_factory=AccountAuth, description="How the key travels.")
    rateLimit: AccountRateLimit = Field(
        default_factory=AccountRateLimit, description="This account's own rate limit for Barrack calls."
    )
    allowedNamespaces: list[str] = Field(
        default_factory=list,
        description="Namespaces whose objects may use this account; empty: every namespace.",
        json_schema_extra={"items": {"type": "string", "pattern": DNS_LABEL_PATTERN}},
        max_length=1000,
    )
    creditsLowHours: float = Field(
        default=72.0, description="CreditsLow turns True when the runway is shorter than this (hours).", gt=0
    )
    maxHourlySpend: float | None = Field(
        default=None,
        description="A budget: a create or power-on that would raise the account's burn above this per hour is "
        "refused before any call (BudgetExceeded).",
        gt=0,
    )
    namespaceBudgets: list[NamespaceBudget] = Field(
        default_factory=list,
        description="Budgets per namespace, beside maxHourlySpend: a create or power-on must fit both.",
        max_length=1000,
    )
    monthlyBudget: float | None = Field(
        default=None,
        description="What the account may cost in a calendar month (UTC, on Barrack's clock): BudgetForecast "
        "turns False, with a Warning event, when status.projectedMonthEnd passes it. Nothing is refused by it.",
        gt=0,
    )
