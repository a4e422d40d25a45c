"""Robinhood orders as data: the ref_id for our client_order_id, the order payload robin-stocks
sends, and Robinhood's order JSON mapped to our BrokerOrder (states, executions as fills)."""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils import timezone

from core.times import parse_iso_utc
from trading.brokers.base import BrokerError, BrokerOrder, Fill, OrderRequest

logger = logging.getLogger("trading.brokers.robinhood")

REF_NAMESPACE = uuid.UUID("5d0f1f4e-6f3a-5b8e-9a51-7b6f0e2f9c11")
LIVE = "live"  # partially_filled if anything filled, else new
# Robinhood order state -> ours. "queued"/"unconfirmed": received, not yet routed; "confirmed":
# working at the venue. An unknown state is treated as live (the order exists), never terminal.
STATE_MAP = {
    "queued": "accepted",
    "unconfirmed": "accepted",
    "confirmed": LIVE,
    "partially_filled": "partially_filled",
    "filled": "filled",
    "cancelled": "canceled",
    "canceled": "canceled",
    "rejected": "rejected",
    "failed": "rejected",
    "voided": "rejected",
    "expired": "expired",
}
OPEN_STATES = {"queued", "unconfirmed", "confirmed", "partially_filled"}
TIME_IN_FORCE = {"day": "gfd", "gtc": "gtc"}


def ref_id_for(client_order_id: str) -> str:
    """Robinhood's ref_id for our client_order_id: the UUIDv5 of it (stable across retries)."""
    return str(uuid.uuid5(REF_NAMESPACE, client_order_id))


def to_decimal(value: Any, default: Decimal | None = None) -> Decimal | None:
    if value is None or value == "":
        return default
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return default


def map_state(state: str, *, filled_qty: Decimal) -> str:
    mapped = STATE_MAP.get(state)
    if mapped is None:
        logger.warning("Unknown Robinhood order state %r; treating it as live", state)
        mapped = LIVE
    if mapped == LIVE:
        return "partially_filled" if filled_qty > 0 else "new"
    return mapped


def _our_type(raw: dict) -> str:
    stop = str(raw.get("trigger") or "immediate") == "stop"
    limit = str(raw.get("type") or "market") == "limit"
    if stop:
        return "stop_limit" if limit and raw.get("price") and raw.get("stop_price") else "stop"
    # A market buy goes out as a limit with a collar (preset_percent_limit), as robin-stocks
    # sends it: it is our market order.
    if limit and raw.get("preset_percent_limit") not in (None, ""):
        return "market"
    return "limit" if limit else "market"


def order_from_robinhood(raw: dict, *, client_order_id: str, symbol: str) -> BrokerOrder:
    """Our BrokerOrder for Robinhood's order JSON; its executions are the fills."""
    filled_qty = to_decimal(raw.get("cumulative_quantity"), Decimal("0"))
    state = str(raw.get("state") or "")
    status = map_state(state, filled_qty=filled_qty)
    fills = []
    for execution in raw.get("executions") or []:
        if not isinstance(execution, dict):
            continue
        qty, price = to_decimal(execution.get("quantity")), to_decimal(execution.get("price"))
        if qty is None or price is None or qty <= 0:
            continue
        fills.append(
            Fill(
                qty=qty,
                price=price,
                fee=Decimal("0"),
                executed_at=parse_iso_utc(execution.get("timestamp")) or timezone.now(),
                broker_trade_id=str(execution.get("id") or ""),
            )
        )
    order_type = _our_type(raw)
    tif = "day" if raw.get("time_in_force") == "gfd" else str(raw.get("time_in_force") or "day")
    reject_reason = ""
    if status == "rejected":
        reject_reason = str(raw.get("reject_reason") or f"{state} at Robinhood")
    return BrokerOrder(
        client_order_id=client_order_id,
        broker_order_id=str(raw.get("id") or ""),
        symbol=symbol,
        side=str(raw.get("side") or ""),
        type=order_type,
        qty=to_decimal(raw.get("quantity"), Decimal("0")),
        status=status,
        filled_qty=filled_qty,
        filled_avg_price=to_decimal(raw.get("average_price")),
        limit_price=to_decimal(raw.get("price")) if order_type in ("limit", "stop_limit") else None,
        stop_price=to_decimal(raw.get("stop_price")),
        time_in_force=tif,
        reject_reason=reject_reason,
        submitted_at=parse_iso_utc(raw.get("created_at")),
        fills=fills,
    )


def check_request(request: OrderRequest) -> None:
    """Refuse what Robinhood cannot take before any call is made."""
    if request.type not in ("market", "limit", "stop", "stop_limit"):
        raise BrokerError(
            f"Unsupported order type {request.type!r}",
            permanent=True,
            code="broker_validation_error",
        )
    for name in ("limit_price", "stop_price"):
        needed = (name == "limit_price" and request.type in ("limit", "stop_limit")) or (
            name == "stop_price" and request.type in ("stop", "stop_limit")
        )
        if needed and getattr(request, name) is None:
            raise BrokerError(f"{name} is required", permanent=True, code="broker_validation_error")


def order_payload(
    request: OrderRequest, *, account_url: str, instrument_url: str, quote: dict
) -> dict:
    """robin-stocks' `order()` payload (sent form-encoded; None values are left out)."""
    price: Any = request.limit_price
    payload: dict[str, Any] = {
        "account": account_url,
        "instrument": instrument_url,
        "symbol": request.symbol,
        "ask_price": quote.get("ask_price"),
        "bid_price": quote.get("bid_price"),
        "bid_ask_timestamp": timezone.now().strftime("%Y-%m-%d %H:%M:%S.%f"),
        "quantity": str(request.qty),
        "ref_id": ref_id_for(request.client_order_id),
        "type": "limit" if request.type in ("limit", "stop_limit") else "market",
        "stop_price": str(request.stop_price) if request.stop_price is not None else None,
        "time_in_force": TIME_IN_FORCE.get(request.time_in_force, "gfd"),
        "trigger": "stop" if request.type in ("stop", "stop_limit") else "immediate",
        "side": request.side,
        "market_hours": "regular_hours",
        "extended_hours": False,
        "order_form_version": 4,
    }
    if request.type == "stop" and request.side == "buy":
        price = request.stop_price
    if request.type == "market":
        price_field = "ask_price" if request.side == "buy" else "bid_price"
        price = quote.get(price_field)
        if request.side == "buy":
            # robin-stocks: a regular-hours market buy is a limit 5% through the ask.
            payload["type"], payload["preset_percent_limit"] = "limit", "0.05"
        else:
            price = None
    payload["price"] = str(price) if price is not None else None
    return {key: value for key, value in payload.items() if value is not None}


def uuid_or_none(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError):
        return None
