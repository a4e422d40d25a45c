"""How every answer and event writes a moment (ISO-8601 in UTC with a Z), and how a provider's
ISO-8601 moment is read."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def iso_utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso_utc(value: Any) -> datetime | None:
    """An ISO-8601 moment from a provider's answer ("Z" or an offset; none means UTC), in UTC;
    None when it is missing or not one."""
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
