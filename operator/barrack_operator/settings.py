"""Typed settings of ``barrack-operator run``: each field says what it does and which environment
variable sets it; a command-line flag of the same name wins over the variable."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from barrack_operator.barrack.routes import Auth


@dataclass
class Settings:
    api_url: str = field(default="https://barrack.ai/api", metadata={"env": "BARRACK_API_URL"})
    """Base URL of the Barrack API; point it at the simulator for local work."""
    api_key_file: Path | None = field(default=None, metadata={"env": "BARRACK_API_KEY_FILE"})
    """File holding the API key (a mounted Secret); re-read when it changes. Preferred over BARRACK_API_KEY."""
    auth_header: str = field(default="Authorization", metadata={"env": "BARRACK_AUTH_HEADER"})
    """The request header that carries the API key (the legacy tier's dialect uses api_key)."""
    auth_scheme: str = field(default="Bearer", metadata={"env": "BARRACK_AUTH_SCHEME"})
    """The word before the key in that header; "none" sends the bare key (the legacy dialect)."""
    requests_per_second: float = field(default=10.0, metadata={"env": "BARRACK_REQUESTS_PER_SECOND"})
    """The one rate limit for every call to Barrack."""
    burst: int = field(default=5, metadata={"env": "BARRACK_BURST"})
    """Calls that may go at once before the rate limit applies."""
    poll_interval: float = field(default=2.0, metadata={"env": "BARRACK_POLL_INTERVAL"})
    """Seconds between inventory listings while anything on Barrack is in a transitional state."""
    idle_poll_interval: float = field(default=30.0, metadata={"env": "BARRACK_IDLE_POLL_INTERVAL"})
    """Seconds between inventory listings when all is steady."""
    drift_interval: float = field(default=60.0, metadata={"env": "BARRACK_DRIFT_INTERVAL"})
    """Seconds between looks at a settled object; drift seen by the inventory wakes it sooner."""
    blocked_requeue: float = field(default=10.0, metadata={"env": "BARRACK_BLOCKED_REQUEUE"})
    """Seconds before retrying a blocked precondition, and the first wait after a refused call (it
    doubles with each refusal in a row, up to max_backoff)."""
    max_backoff: float = field(default=300.0, metadata={"env": "BARRACK_MAX_BACKOFF"})
    """The longest wait between two tries of a create or action that keeps failing (s)."""
    stale_after_failed_polls: int = field(default=3, metadata={"env": "BARRACK_STALE_AFTER_FAILED_POLLS"})
    """Failed listings of a kind in a row after which its Ready objects show Synced=False too."""
    readiness_max_listing_age: float = field(
        default=300.0, metadata={"env": "BARRACK_READINESS_MAX_LISTING_AGE"}
    )
    """/readyz fails while any kind's last successful listing is older than this (s)."""
    namespaces: list[str] = field(default_factory=list, metadata={"env": "BARRACK_NAMESPACES"})
    """Namespaces to watch (comma-separated in the variable); empty with all_namespaces off means 'default'."""
    all_namespaces: bool = field(default=False, metadata={"env": "BARRACK_ALL_NAMESPACES"})
    """Watch every namespace."""
    log_format: str = field(default="plain", metadata={"env": "BARRACK_LOG_FORMAT"})
    """plain or json."""
    log_level: str = field(default="info", metadata={"env": "BARRACK_LOG_LEVEL"})
    """debug, info, warning or error."""
    leader_election: bool = field(default=True, metadata={"env": "BARRACK_LEADER_ELECTION"})
    """Take the Lease barrack-operator before reconciling; only its holder calls Barrack."""
    leader_election_namespace: str = field(default="", metadata={"env": "BARRACK_LEADER_ELECTION_NAMESPACE"})
    """Namespace of the Lease; empty: the pod's namespace (POD_NAMESPACE or the service account's), else default."""
    lease_duration: float = field(default=15.0, metadata={"env": "BARRACK_LEASE_DURATION"})
    """Seconds a standby waits after the Lease last changed before it takes over."""
    renew_deadline: float = field(default=10.0, metadata={"env": "BARRACK_RENEW_DEADLINE"})
    """Seconds without a renewal after which the holder stops calling Barrack and exits."""
    retry_period: float = field(default=2.0, metadata={"env": "BARRACK_RETRY_PERIOD"})
    """Seconds between two attempts to take or renew the Lease."""
    liveness_port: int = field(default=8080, metadata={"env": "BARRACK_LIVENESS_PORT"})
    """Port of the health endpoints (0 turns them off): /healthz (liveness: the event loop answers
    and the inventory poller runs) and /readyz (every kind listed within the readiness bound)."""
    metrics_port: int = field(default=9090, metadata={"env": "BARRACK_METRICS_PORT"})
    """Port of the Prometheus metrics endpoint (0 turns it off)."""

    @property
    def auth(self) -> Auth:
        scheme = "" if self.auth_scheme.strip().lower() in ("", "none") else self.auth_scheme.strip()
        return Auth(header=self.auth_header, scheme=scheme)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f.metadata["env"])
            if raw is not None and raw != "":
                values[f.name] = _parse(f.type, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _parse(type_name: object, raw: str) -> Any:
    text = str(type_name)
    if "bool" in text:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if "int" in text:
        return int(raw)
    if "float" in text:
        return float(raw)
    if "list" in text:
        return [part.strip() for part in raw.split(",") if part.strip()]
    if "Path" in text:
        return Path(raw)
    return raw
