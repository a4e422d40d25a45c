"""The event types of the stream (DESIGN.md §8) and the envelope every message has."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from core.times import iso_utc

MARKET_DATA = "market_data"
TRADE_UPDATE = "trade_update"
ORDER_UPDATE = "order_update"
POSITION_UPDATE = "position_update"
PERFORMANCE_UPDATE = "performance_update"
STATUS = "status"
ERROR = "error"
PONG = "pong"
RESEARCH_PROGRESS = "research_progress"  # a research run's status and progress (0 to 1)
# A notice with no state event of its own (breaker, stale data, strategy error): notifications.
ALERT = "alert"

TYPES = frozenset(
    {
        MARKET_DATA,
        TRADE_UPDATE,
        ORDER_UPDATE,
        POSITION_UPDATE,
        PERFORMANCE_UPDATE,
        STATUS,
        ERROR,
        PONG,
        RESEARCH_PROGRESS,
        ALERT,
    }
)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return iso_utc(value)
    if hasattr(value, "hex") and hasattr(value, "int"):  # uuid.UUID
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def envelope(type_: str, payload: dict[str, Any], seq: int, ts: datetime | None = None) -> dict:
    return {"type": type_, "payload": payload, "ts": iso_utc(ts or datetime.now(UTC)), "seq": seq}


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, default=_default, separators=(",", ":"))
