"""Notification events: kinds, stable ids, and how they are read from the stream's events.

Every state change is published once on the stream (`streaming.publish`); this module turns the
ones a trader wants to hear about into notices. A notice's id is derived from the state it
reports (the order and its status, the kill switch's change time, the session), never from the
moment it was seen, so the same change published twice is one notice, and a delivery is unique
on (id, channel).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from streaming import events as stream

ORDER_FILLED = "order.filled"
ORDER_PARTIALLY_FILLED = "order.partially_filled"
ORDER_REJECTED = "order.rejected"
ORDER_CANCELED = "order.canceled"
KILL_SWITCH_ENGAGED = "kill_switch.engaged"
KILL_SWITCH_RELEASED = "kill_switch.released"
MARKET_DATA_STALE = "market_data.stale"
CIRCUIT_BREAKER_OPEN = "circuit_breaker.open"
CIRCUIT_BREAKER_RECOVERED = "circuit_breaker.recovered"
RECONCILIATION_REPAIR = "reconciliation.repair"
STRATEGY_ERROR = "strategy.error"
SESSION_STARTED = "session.started"
SESSION_STOPPED = "session.stopped"
DAILY_SUMMARY = "daily_summary"
TEST = "test"

KINDS = (
    ORDER_FILLED,
    ORDER_PARTIALLY_FILLED,
    ORDER_REJECTED,
    ORDER_CANCELED,
    KILL_SWITCH_ENGAGED,
    KILL_SWITCH_RELEASED,
    MARKET_DATA_STALE,
    CIRCUIT_BREAKER_OPEN,
    CIRCUIT_BREAKER_RECOVERED,
    RECONCILIATION_REPAIR,
    STRATEGY_ERROR,
    SESSION_STARTED,
    SESSION_STOPPED,
    DAILY_SUMMARY,
    TEST,
)

# A state read from a `status` event (kill switch, session) is announced only if it changed
# this recently: a process starting up republishes old state, which is no news.
STATE_NEWS_SECONDS = 600


@dataclass
class Notice:
    id: str
    kind: str
    severity: str
    title: str
    text: str
    data: dict[str, Any] = field(default_factory=dict)
    occurred_at: str = ""

    def __post_init__(self) -> None:
        self.occurred_at = self.occurred_at or stream.iso_utc(datetime.now(UTC))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Notice:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def alert_payload(notice: Notice) -> dict[str, Any]:
    """What a producer publishes as a stream `alert` event for a notice with no state event."""
    return notice.as_dict()


def _num(value: Any) -> str:
    """545.060000 -> 545.06, 1.000000 -> 1 (the stream's decimals carry 6 places)."""
    try:
        return format(Decimal(str(value)).normalize(), "f")
    except (InvalidOperation, ValueError):
        return str(value)


def _who(order: dict) -> str:
    source = order.get("source") or "?"
    if order.get("strategy_config_id"):
        return f"strategy config {order['strategy_config_id']} ({source})"
    return source


def _order_notices(order: dict) -> list[Notice]:
    status, oid = order.get("status"), order.get("id")
    if not oid:
        return []
    head = f"{order.get('side', '').upper()} {_num(order.get('qty'))} {order.get('symbol')}"
    who = _who(order)
    price, done = _num(order.get("filled_avg_price")), _num(order.get("filled_qty"))
    data = {
        k: order.get(k)
        for k in (
            "id",
            "client_order_id",
            "symbol",
            "side",
            "qty",
            "type",
            "status",
            "filled_qty",
            "filled_avg_price",
            "source",
            "strategy_config_id",
            "reject_reason",
        )
    }
    notices = []
    if status == "filled":
        notices.append(
            Notice(
                f"{ORDER_FILLED}:{oid}",
                ORDER_FILLED,
                "info",
                f"Filled: {head} @ {price}",
                f"Order {order.get('client_order_id')} placed by {who} filled {done} at {price}.",
                data,
                order.get("filled_at") or "",
            )
        )
    elif status == "partially_filled":
        notices.append(
            Notice(
                f"{ORDER_PARTIALLY_FILLED}:{oid}:{order.get('filled_qty')}",
                ORDER_PARTIALLY_FILLED,
                "info",
                f"Partially filled: {head} ({done} done)",
                f"Order {order.get('client_order_id')} placed by {who}: {done}"
                f" of {_num(order.get('qty'))} filled at {price}.",
                data,
            )
        )
    elif status == "rejected":
        notices.append(
            Notice(
                f"{ORDER_REJECTED}:{oid}",
                ORDER_REJECTED,
                "warning",
                f"Rejected: {head}",
                f"Order {order.get('client_order_id')} placed by {who} was rejected: "
                f"{order.get('reject_reason') or 'no reason given'}.",
                data,
            )
        )
    elif status == "canceled":
        notices.append(
            Notice(
                f"{ORDER_CANCELED}:{oid}",
                ORDER_CANCELED,
                "info",
                f"Canceled: {head}",
                f"Order {order.get('client_order_id')} placed by {who} was canceled"
                f"{': ' + order['reject_reason'] if order.get('reject_reason') else ''}.",
                data,
                order.get("canceled_at") or "",
            )
        )
    if order.get("repair"):
        notices.append(
            Notice(
                f"{RECONCILIATION_REPAIR}:order:{oid}:{status}:{order.get('filled_qty')}",
                RECONCILIATION_REPAIR,
                "warning",
                f"Repaired: {head}",
                f"Order {order.get('client_order_id')}: {order['repair']}",
                data,
            )
        )
    return notices


def _recent(iso: str | None, now: datetime) -> bool:
    if not iso:
        return False
    try:
        when = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return False
    return now - when <= timedelta(seconds=STATE_NEWS_SECONDS)


def _status_notices(status: dict, now: datetime) -> list[Notice]:
    notices = []
    switch = status.get("kill_switch") or {}
    changed = switch.get("changed_at")
    if _recent(changed, now):
        if switch.get("engaged"):
            notices.append(
                Notice(
                    f"{KILL_SWITCH_ENGAGED}:{changed}",
                    KILL_SWITCH_ENGAGED,
                    "critical",
                    "Kill switch engaged: trading halted",
                    f"Reason: {switch.get('reason') or 'none given'}. New orders are refused "
                    "and open orders were canceled.",
                    {"reason": switch.get("reason"), "changed_at": changed},
                    changed,
                )
            )
        else:
            notices.append(
                Notice(
                    f"{KILL_SWITCH_RELEASED}:{changed}",
                    KILL_SWITCH_RELEASED,
                    "warning",
                    "Kill switch released: trading resumed",
                    "New orders are accepted again.",
                    {"changed_at": changed},
                    changed,
                )
            )
    session = status.get("session") or {}
    sid = session.get("id")
    if sid and session.get("status") == "running" and _recent(session.get("started_at"), now):
        notices.append(
            Notice(
                f"{SESSION_STARTED}:{sid}",
                SESSION_STARTED,
                "info",
                f"Session {sid} started",
                f"{session.get('mode', '')} session on {status.get('broker')}, starting cash "
                f"{session.get('starting_cash')}.",
                {"session_id": sid, "mode": session.get("mode")},
                session.get("started_at"),
            )
        )
    if sid and session.get("status") == "stopped" and _recent(session.get("stopped_at"), now):
        notices.append(
            Notice(
                f"{SESSION_STOPPED}:{sid}",
                SESSION_STOPPED,
                "info",
                f"Session {sid} stopped",
                f"Reason: {session.get('stop_reason') or 'none given'}.",
                {"session_id": sid},
                session.get("stopped_at"),
            )
        )
    return notices


def from_stream(type_: str, payload: dict[str, Any], now: datetime | None = None) -> list[Notice]:
    """The notices one stream event carries (most carry none)."""
    if type_ == stream.ORDER_UPDATE:
        return _order_notices(payload)
    if type_ == stream.STATUS:
        return _status_notices(payload, now or datetime.now(UTC))
    if type_ == stream.ALERT:
        return [Notice.from_dict(payload)]
    if type_ == stream.POSITION_UPDATE and payload.get("repair"):
        symbol = payload.get("symbol")
        return [
            Notice(
                f"{RECONCILIATION_REPAIR}:position:{payload.get('session_id')}:{symbol}:"
                f"{payload.get('qty')}",
                RECONCILIATION_REPAIR,
                "warning",
                f"Repaired position {symbol}",
                f"Position {symbol}: {payload['repair']}",
                {"symbol": symbol, "qty": payload.get("qty")},
            )
        ]
    return []
