"""Typed settings of ``barrack-operator run``: each field says what it does, which environment
variable sets it and which values it takes; a command-line flag of the same name wins over the
variable. :meth:`Settings.from_env` refuses a bad value with :class:`InvalidSetting`, whose one-line
message names the variable: the operator exits with it at start, before it touches anything. The
chart's ``values.schema.json`` carries the same bounds (``tests/unit/test_settings.py`` holds them
equal)."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from barrack_operator.barrack.routes import Auth

SECONDS_BELOW = 10_000.0
"""Every duration is a positive number of seconds below this (a sanity bound: 2 h 46 min)."""
TOKEN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
"""An HTTP header name (RFC 9110 token)."""
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


def _meta(env: str, **bounds: Any) -> dict[str, Any]:
    """A field's environment variable and bounds: ``gt``/``ge``/``lt``/``le`` (numbers), ``choices``,
    ``pattern`` (strings, or each item of a list)."""
    return {"env": env, **bounds}


SECONDS = {"gt": 0.0, "lt": SECONDS_BELOW}


class InvalidSetting(ValueError):
    """A setting with a value the operator cannot run with; the message is one line naming it."""


@dataclass
class Settings:
    api_url: str = field(
        default="https://barrack.ai/api", metadata=_meta("BARRACK_API_URL", pattern=r"^https?://\S+$")
    )
    """Base URL of the Barrack API; point it at the simulator for local work."""
    api_key_file: Path | None = field(default=None, metadata=_meta("BARRACK_API_KEY_FILE"))
    """File holding the API key (a mounted Secret); re-read when it changes. Preferred over BARRACK_API_KEY."""
    auth_header: str = field(default="Authorization", metadata=_meta("BARRACK_AUTH_HEADER", pattern=TOKEN))
    """The request header that carries the API key (the legacy tier's dialect uses api_key)."""
    auth_scheme: str = field(default="Bearer", metadata=_meta("BARRACK_AUTH_SCHEME", pattern=TOKEN))
    """The word before the key in that header; "none" sends the bare key (the legacy dialect)."""
    requests_per_second: float = field(
        default=10.0, metadata=_meta("BARRACK_REQUESTS_PER_SECOND", gt=0.0, lt=1000.0)
    )
    """The one rate limit for every call to Barrack."""
    burst: int = field(default=5, metadata=_meta("BARRACK_BURST", ge=1, le=1000))
    """Calls that may go at once before the rate limit applies."""
    poll_interval: float = field(default=2.0, metadata=_meta("BARRACK_POLL_INTERVAL", **SECONDS))
    """Seconds between looks at what is transitional on Barrack, or was just changed (the pages
    that hold it; a kind of one page is listed)."""
    idle_poll_interval: float = field(default=30.0, metadata=_meta("BARRACK_IDLE_POLL_INTERVAL", **SECONDS))
    """Seconds between whole listings of a kind (at least poll_interval; a large account's are
    spread further)."""
    drift_interval: float = field(default=60.0, metadata=_meta("BARRACK_DRIFT_INTERVAL", **SECONDS))
    """Seconds between looks at a settled object; drift seen by the inventory wakes it sooner."""
    create_quiet: float = field(
        default=10.0, metadata=_meta("BARRACK_CREATE_QUIET", ge=0.0, lt=SECONDS_BELOW)
    )
    """Seconds after a create, or after the new resource's last call (an attach, a rule), during
    which its progress (its first transitions, an attach, its first rules, a wait on a referent on
    its way) is not written to status, only its outcome (Ready, or a problem); longer while no
    listing has shown what it waits for, never past six times this. Most settle within them and
    cost one status write; 0 writes every state."""
    blocked_requeue: float = field(default=10.0, metadata=_meta("BARRACK_BLOCKED_REQUEUE", **SECONDS))
    """Seconds before retrying a blocked precondition, and the first wait after a refused call (it
    doubles with each refusal in a row, up to max_backoff)."""
    max_backoff: float = field(default=300.0, metadata=_meta("BARRACK_MAX_BACKOFF", **SECONDS))
    """The longest wait between two tries of a create or action that keeps failing (s; at least
    blocked_requeue)."""
    billing_interval: float = field(default=3600.0, metadata=_meta("BARRACK_BILLING_INTERVAL", **SECONDS))
    """Seconds between two asks of a resource's billing route (status.cost.accrued); prices are
    asked again hourly."""
    prices_interval: float = field(default=3600.0, metadata=_meta("BARRACK_PRICES_INTERVAL", **SECONDS))
    """Seconds before a price from Barrack's pricing route is asked again."""
    stale_after_failed_polls: int = field(
        default=3, metadata=_meta("BARRACK_STALE_AFTER_FAILED_POLLS", ge=1, le=1000)
    )
    """Failed listings of a kind in a row after which its Ready objects show Synced=False too."""
    readiness_max_listing_age: float = field(
        default=300.0, metadata=_meta("BARRACK_READINESS_MAX_LISTING_AGE", **SECONDS)
    )
    """/readyz fails while any kind's last successful listing is older than this (s)."""
    namespaces: list[str] = field(
        default_factory=list, metadata=_meta("BARRACK_NAMESPACES", pattern=DNS_LABEL)
    )
    """Namespaces to watch (comma-separated in the variable); empty with all_namespaces off means 'default'."""
    all_namespaces: bool = field(default=False, metadata=_meta("BARRACK_ALL_NAMESPACES"))
    """Watch every namespace."""
    log_format: str = field(default="plain", metadata=_meta("BARRACK_LOG_FORMAT", choices=("plain", "json")))
    """plain or json (kopf's JSON formatter: one object per line, with the object a line is about)."""
    log_level: str = field(
        default="info", metadata=_meta("BARRACK_LOG_LEVEL", choices=("debug", "info", "warning", "error"))
    )
    """debug, info, warning or error."""
    leader_election: bool = field(default=True, metadata=_meta("BARRACK_LEADER_ELECTION"))
    """Take the Lease barrack-operator before reconciling; only its holder calls Barrack."""
    leader_election_namespace: str = field(
        default="", metadata=_meta("BARRACK_LEADER_ELECTION_NAMESPACE", pattern=DNS_LABEL)
    )
    """Namespace of the Lease; empty: the pod's namespace (POD_NAMESPACE or the service account's), else default."""
    lease_duration: float = field(default=15.0, metadata=_meta("BARRACK_LEASE_DURATION", **SECONDS))
    """Seconds a standby waits after the Lease last changed before it takes over."""
    renew_deadline: float = field(default=10.0, metadata=_meta("BARRACK_RENEW_DEADLINE", **SECONDS))
    """Seconds without a renewal after which the holder stops calling Barrack and exits (below
    lease_duration)."""
    retry_period: float = field(default=2.0, metadata=_meta("BARRACK_RETRY_PERIOD", **SECONDS))
    """Seconds between two attempts to take or renew the Lease (below renew_deadline)."""
    listen_address: str = field(
        default="127.0.0.1", metadata=_meta("BARRACK_LISTEN_ADDRESS", pattern=r"^[0-9a-fA-F.:]+$")
    )
    """IP address the health and metrics endpoints listen on: loopback for a local run; the chart
    sets 0.0.0.0 so the kubelet and Prometheus reach them."""
    liveness_port: int = field(default=8080, metadata=_meta("BARRACK_LIVENESS_PORT", ge=0, le=65535))
    """Port of the health endpoints (0 turns them off): /healthz (liveness: the event loop answers
    and the inventory poller runs) and /readyz (every kind listed within the readiness bound)."""
    metrics_port: int = field(default=9090, metadata=_meta("BARRACK_METRICS_PORT", ge=0, le=65535))
    """Port of the Prometheus metrics endpoint (0 turns it off)."""

    @property
    def auth(self) -> Auth:
        scheme = "" if self.auth_scheme.strip().lower() in ("", "none") else self.auth_scheme.strip()
        return Auth(header=self.auth_header, scheme=scheme)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from the environment, with ``overrides`` (the command line) winning; raises
        :class:`InvalidSetting` for a value out of its bounds or of the wrong type."""
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is not None and raw != "":
                values[f.name] = _parse(f.metadata["env"], f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        for f in fields(self):
            problem = _out_of_bounds(getattr(self, f.name), f.metadata)
            if problem:
                raise InvalidSetting(f"{f.metadata['env']}={getattr(self, f.name)!r}: {problem}")
        for lower, upper in (
            ("poll_interval", "idle_poll_interval"),
            ("blocked_requeue", "max_backoff"),
        ):
            if getattr(self, lower) > getattr(self, upper):
                raise InvalidSetting(
                    f"{_env(upper)}={getattr(self, upper)!r}: must be at least {_env(lower)} ({getattr(self, lower)!r})"
                )
        for lower, upper in (("renew_deadline", "lease_duration"), ("retry_period", "renew_deadline")):
            if self.leader_election and getattr(self, lower) >= getattr(self, upper):
                raise InvalidSetting(
                    f"{_env(lower)}={getattr(self, lower)!r}: must be below {_env(upper)} ({getattr(self, upper)!r})"
                )


def _env(name: str) -> str:
    return str(next(f.metadata["env"] for f in fields(Settings) if f.name == name))


def _out_of_bounds(value: Any, bounds: Mapping[str, Any]) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        checks = {
            "gt": (value.__gt__, "greater than"),
            "ge": (value.__ge__, "at least"),
            "lt": (value.__lt__, "below"),
            "le": (value.__le__, "at most"),
        }
        for key, (ok, words) in checks.items():
            if key in bounds and not ok(bounds[key]):
                return f"must be {words} {bounds[key]:g}"
    if "choices" in bounds and value not in bounds["choices"]:
        return "must be one of " + ", ".join(bounds["choices"])
    pattern = bounds.get("pattern")
    if pattern:
        for item in value if isinstance(value, list) else [value]:
            if item and not re.match(pattern, item):
                return f"{item!r} does not match {pattern}"
    return None


def _parse(env: str, type_name: object, raw: str) -> Any:
    text = str(type_name)
    if "bool" in text:
        words = {
            "1": True,
            "true": True,
            "yes": True,
            "on": True,
            "0": False,
            "false": False,
            "no": False,
            "off": False,
        }
        if raw.strip().lower() not in words:
            raise InvalidSetting(f"{env}={raw!r}: must be true or false")
        return words[raw.strip().lower()]
    try:
        if "int" in text:
            return int(raw)
        if "float" in text:
            value = float(raw)
            if not math.isfinite(value):
                raise ValueError(raw)
            return value
    except ValueError:
        raise InvalidSetting(f"{env}={raw!r}: must be a {'whole ' if 'int' in text else ''}number") from None
    if "list" in text:
        return [part.strip() for part in raw.split(",") if part.strip()]
    if "Path" in text:
        return Path(raw)
    return raw
