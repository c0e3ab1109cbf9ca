"""Moments as the operator writes and reads them in status: UTC, to the second."""

from __future__ import annotations

from datetime import UTC, datetime


def stamp(moment: datetime | None) -> str | None:
    """A moment as status writes it (UTC, seconds)."""
    return None if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: object) -> datetime | None:
    """A timestamp from metadata or status (naive ones are UTC)."""
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
