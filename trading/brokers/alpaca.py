"""The Alpaca broker: alpaca-py's `TradingClient` behind our async `BaseBroker` interface.

alpaca-py is synchronous (requests), so every call runs in a worker thread. The client is built
with `raw_data=True`: we read Alpaca's JSON ourselves so money stays exact (`Decimal` from the
strings Alpaca sends, where alpaca-py's models would go through float) and an order status
alpaca-py's enum does not know yet cannot break parsing.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

import requests

from core.http import disable_sdk_retry, install_timeout
from trading.brokers.base import (
    BaseBroker,
    BrokerAccount,
    BrokerClock,
    BrokerError,
    BrokerOrder,
    BrokerPosition,
    Fill,
    OrderRequest,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

# A status that depends on the fills so far: "partially_filled" if anything filled, else "new".
LIVE = "live"
# For `calculated`: "filled" if the whole qty filled, else "partially_filled".
BY_FILL = "by_fill"

# Alpaca order status -> ours (pending_submit, new, accepted, partially_filled, filled, canceled,
# expired, rejected). pending_submit is ours alone: the order row exists, the broker has not
# acknowledged it. An order Alpaca still works is never mapped to a terminal status.
ALPACA_STATUS_MAP: dict[str, str] = {
    # Routed to the exchange: the usual first state.
    "new": "new",
    # Received but not yet routed (common outside market hours).
    "accepted": "accepted",
    # Received and routed, not yet acknowledged by the venue: live, cancelable.
    "pending_new": "accepted",
    # Being priced by the exchange before it works: live, nothing filled.
    "accepted_for_bidding": "accepted",
    "partially_filled": "partially_filled",
    "filled": "filled",
    # Done for today, works again next session (gtc): live.
    "done_for_day": LIVE,
    "canceled": "canceled",
    "expired": "expired",
    # Replaced by another order (which has a new Alpaca id): this order is over. Whatever it
    # filled before the replace is reported through filled_qty like any other order.
    "replaced": "canceled",
    # A cancel or replace was requested but not confirmed: the order may still fill.
    "pending_cancel": LIVE,
    "pending_replace": LIVE,
    # A trade is guaranteed but has not happened yet: live.
    "stopped": LIVE,
    "rejected": "rejected",
    # Not eligible for trading for now, may resume: live, nothing new to fill.
    "suspended": "accepted",
    # Completed for the day, settlement calculations pending.
    "calculated": BY_FILL,
    # Held by Alpaca: a bracket/OTO leg waiting for its entry to fill (ours too).
    "held": "held",
}

OPEN_QUERY_STATUSES = {"open", "closed", "all"}


def _dec(value: Any, default: Decimal | None = None) -> Decimal | None:
    if value is None or value == "":
        return default
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return default


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def map_status(alpaca_status: str, *, filled_qty: Decimal, qty: Decimal | None) -> str:
    """Our status for an Alpaca order status (see ALPACA_STATUS_MAP)."""
    mapped = ALPACA_STATUS_MAP.get(alpaca_status)
    if mapped is None:
        # A status Alpaca added after this was written: the order exists, so treat it as live
        # rather than guess a terminal state.
        logger.warning("Unknown Alpaca order status %r; treating it as live", alpaca_status)
        mapped = LIVE
    if mapped == LIVE:
        return "partially_filled" if filled_qty > 0 else "new"
    if mapped == BY_FILL:
        if qty is not None and filled_qty >= qty:
            return "filled"
        return "partially_filled" if filled_qty > 0 else "new"
    return mapped


def _leg_role(raw: dict) -> str:
    """A leg's role: Alpaca's group_role, or (for answers without it) its type."""
    role = raw.get("group_role")
    if role in ("take_profit", "stop_loss"):
        return role
    return "take_profit" if raw.get("type") == "limit" else "stop_loss"


def order_from_alpaca(raw: dict, *, leg: bool = False) -> BrokerOrder:
    """Our BrokerOrder for Alpaca's Order JSON, with one cumulative Fill for what is filled;
    the legs of a bracket/OTO/OCO order (read with `nested=true`) come along, each mapped."""
    filled_qty = _dec(raw.get("filled_qty"), Decimal("0"))
    qty = _dec(raw.get("qty"))
    filled_avg_price = _dec(raw.get("filled_avg_price"))
    status = map_status(str(raw.get("status", "")), filled_qty=filled_qty, qty=qty)
    fills = []
    if filled_qty > 0 and filled_avg_price is not None:
        executed_at = (
            _time(raw.get("filled_at")) or _time(raw.get("updated_at")) or datetime.now(UTC)
        )
        fills.append(
            Fill(
                qty=filled_qty,
                price=filled_avg_price,
                fee=Decimal("0"),  # Alpaca charges no commission on equities; fees come later
                executed_at=executed_at,
                # Cumulative: the service diffs this against the fills it already recorded.
                broker_trade_id=f"{raw.get('id')}:{filled_qty}",
            )
        )
    reject_reason = ""
    if status == "rejected":
        reject_reason = str(raw.get("reject_reason") or "rejected by broker")
    return BrokerOrder(
        client_order_id=str(raw.get("client_order_id", "")),
        broker_order_id=str(raw.get("id", "")),
        symbol=str(raw.get("symbol", "")),
        side=str(raw.get("side", "")),
        type=str(raw.get("type") or raw.get("order_type") or ""),
        qty=qty if qty is not None else Decimal("0"),
        status=status,
        filled_qty=filled_qty,
        filled_avg_price=filled_avg_price,
        limit_price=_dec(raw.get("limit_price")),
        stop_price=_dec(raw.get("stop_price")),
        time_in_force=str(raw.get("time_in_force") or "day"),
        reject_reason=reject_reason,
        submitted_at=_time(raw.get("submitted_at")),
        fills=fills,
        order_class=str(raw.get("order_class") or "simple"),
        leg_role=_leg_role(raw) if leg else "",
        legs=[order_from_alpaca(child, leg=True) for child in raw.get("legs") or []],
        hwm=_dec(raw.get("hwm")),
    )


def _api_message(error: Any) -> str:
    """Alpaca's `message` from an APIError, or its raw text when the body is not JSON."""
    text = str(getattr(error, "_error", "") or error)
    try:
        body = json.loads(text)
    except ValueError:
        return text or "broker error"
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return text


GROUPED = ("bracket", "oco", "oto")


class AlpacaBroker(BaseBroker):
    name = "alpaca"
    # Alpaca runs bracket/OCO/OTO legs itself; we read them back nested under their parent.
    manages_legs = True
    protective_orders = True
    # Order updates the moment Alpaca has them (the `stream` process); polling is the fallback.
    stream_source = "realtime.sources.alpaca_trading.AlpacaTradingSource"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        secret_key: str | None = None,
        paper: bool | None = None,
        url_override: str | None = None,
        timeout: float = 10.0,
        rate_limit_attempts: int = 3,
        rate_limit_backoff: float = 0.5,
    ) -> None:
        """Credentials and URLs default to the ALPACA_* settings (read here, not at import)."""
        from alpaca.trading.client import TradingClient

        if api_key is None or secret_key is None or paper is None or url_override is None:
            from django.conf import settings

            api_key = settings.ALPACA_API_KEY if api_key is None else api_key
            secret_key = settings.ALPACA_SECRET_KEY if secret_key is None else secret_key
            paper = settings.ALPACA_PAPER if paper is None else paper
            url_override = url_override or settings.ALPACA_URL_OVERRIDE
        if not api_key or not secret_key:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(
                "The alpaca broker needs ALPACA_API_KEY and ALPACA_SECRET_KEY to be set."
            )
        self._client = TradingClient(
            api_key,
            secret_key,
            paper=bool(paper),
            raw_data=True,
            url_override=url_override or None,
        )
        disable_sdk_retry(self._client)
        install_timeout(self._client, timeout)
        self._attempts = max(1, rate_limit_attempts)
        self._backoff = rate_limit_backoff

    # -- plumbing ---------------------------------------------------------------------------

    async def _call(self, fn: Callable[..., T], *args: Any, action: str) -> T:
        """Run one SDK call in a thread; retry 429 with exponential backoff; map errors."""
        from alpaca.common.exceptions import APIError

        for attempt in range(1, self._attempts + 1):
            try:
                return await asyncio.to_thread(fn, *args)
            except APIError as exc:
                if exc.status_code == 429 and attempt < self._attempts:
                    # 429 means Alpaca refused before doing anything, so even a POST is safe
                    # to repeat.
                    delay = self._backoff * 2 ** (attempt - 1)
                    logger.info(
                        "Alpaca rate limit on %s; retry %d in %.2fs", action, attempt, delay
                    )
                    await asyncio.sleep(delay)
                    continue
                raise self._map_api_error(exc, action) from exc
            except requests.RequestException as exc:
                raise BrokerError(
                    f"Alpaca unreachable during {action}: {exc.__class__.__name__}: {exc}",
                    permanent=False,
                    code="broker_unavailable",
                ) from exc
        raise AssertionError("unreachable")  # the loop returns or raises

    @staticmethod
    def _map_api_error(exc: Any, action: str) -> BrokerError:
        status = exc.status_code
        message = _api_message(exc)
        if status == 429:
            return BrokerError(
                f"Alpaca rate limit during {action}: {message}",
                permanent=False,
                code="rate_limited",
            )
        if status is None or status >= 500:
            return BrokerError(
                f"Alpaca error {status} during {action}: {message}",
                permanent=False,
                code="broker_unavailable",
            )
        if status == 403 and action == "submit_order":
            # The spec's only documented 403 for POST /v2/orders: "Buying power or shares is
            # not sufficient."
            return BrokerError(message, permanent=True, code="insufficient_buying_power")
        if status in (401, 403):
            return BrokerError(
                f"Alpaca refused credentials ({status}): {message}",
                permanent=True,
                code="broker_auth_error",
            )
        if status == 404:
            return BrokerError(message, permanent=True, code="order_not_found")
        if status == 422 and action == "cancel_order":
            return BrokerError(message, permanent=True, code="order_not_cancelable")
        # 400/422 and anything else 4xx: Alpaca will say no again; pass its message through.
        return BrokerError(message, permanent=True, code="broker_validation_error")

    # -- the interface ----------------------------------------------------------------------

    async def initialize(self) -> None:
        await self.get_account()

    async def get_account(self, *, session_id: int | None = None) -> BrokerAccount:
        raw = await self._call(self._client.get_account, action="get_account")
        return BrokerAccount(
            cash=_dec(raw.get("cash"), Decimal("0")),
            equity=_dec(raw.get("equity"), Decimal("0")),
            buying_power=_dec(raw.get("buying_power"), Decimal("0")),
            currency=str(raw.get("currency") or "USD"),
            status=str(raw.get("status") or "ACTIVE"),
        )

    async def get_positions(self, *, session_id: int | None = None) -> list[BrokerPosition]:
        rows = await self._call(self._client.get_all_positions, action="get_positions")
        positions = []
        for raw in rows:
            qty = _dec(raw.get("qty"), Decimal("0"))
            if raw.get("side") == "short" and qty > 0:
                qty = -qty  # ours are signed: negative is short
            positions.append(
                BrokerPosition(
                    symbol=str(raw["symbol"]),
                    qty=qty,
                    avg_entry_price=_dec(raw.get("avg_entry_price"), Decimal("0")),
                    market_value=_dec(raw.get("market_value")),
                    unrealized_pl=_dec(raw.get("unrealized_pl")),
                )
            )
        return positions

    async def get_orders(
        self, *, status: str = "open", session_id: int | None = None
    ) -> list[BrokerOrder]:
        from alpaca.trading.enums import QueryOrderStatus
        from alpaca.trading.requests import GetOrdersRequest

        if status not in OPEN_QUERY_STATUSES:
            raise ValueError(f"status must be one of {sorted(OPEN_QUERY_STATUSES)}, not {status!r}")
        # 500 is Alpaca's maximum page; a robot with more open orders has other problems.
        request = GetOrdersRequest(status=QueryOrderStatus(status), limit=500, nested=True)
        rows = await self._call(self._client.get_orders, request, action="get_orders")
        return [order_from_alpaca(raw) for raw in rows]

    async def get_order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        try:
            raw = await self._call(
                self._client.get_order_by_client_id, client_order_id, action="get_order"
            )
        except BrokerError as exc:
            if exc.code == "order_not_found":
                return None
            raise
        if raw.get("order_class") in GROUPED and raw.get("legs") is None:
            # The lookup by client order id has no `nested`: read the legs by the order's id.
            raw = await self._order_nested(str(raw["id"]))
        return order_from_alpaca(raw)

    async def _order_nested(self, broker_order_id: str) -> dict:
        from alpaca.trading.requests import GetOrderByIdRequest

        return await self._call(
            self._client.get_order_by_id,
            broker_order_id,
            GetOrderByIdRequest(nested=True),
            action="get_order",
        )

    async def submit_order(self, request: OrderRequest) -> BrokerOrder:
        try:
            alpaca_request = self._order_request(request)
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            raise BrokerError(str(exc), permanent=True, code="broker_validation_error") from exc
        raw = await self._call(self._client.submit_order, alpaca_request, action="submit_order")
        return order_from_alpaca(raw)

    async def cancel_order(self, broker_order_id: str) -> None:
        await self._call(self._client.cancel_order_by_id, broker_order_id, action="cancel_order")

    async def get_clock(self) -> BrokerClock:
        raw = await self._call(self._client.get_clock, action="get_clock")
        return BrokerClock(
            timestamp=_time(raw["timestamp"]),
            is_open=bool(raw["is_open"]),
            next_open=_time(raw.get("next_open")),
            next_close=_time(raw.get("next_close")),
        )

    @staticmethod
    def _order_request(request: OrderRequest) -> Any:
        from alpaca.trading import requests as alpaca_requests
        from alpaca.trading.enums import OrderSide, TimeInForce

        # alpaca-py's request models take floats; Decimal -> float -> JSON keeps every digit an
        # equity order can have (repr is the shortest round-trip form).
        common = {
            "symbol": request.symbol,
            "qty": float(request.qty),
            "side": OrderSide(request.side),
            "time_in_force": TimeInForce(request.time_in_force),
            "client_order_id": request.client_order_id,
            **_protective(request),
        }
        if request.type == "trailing_stop":
            trail = (
                {"trail_price": float(request.trail_price)}
                if request.trail_price is not None
                else {"trail_percent": float(_required_float(request.trail_percent, "trail"))}
            )
            return alpaca_requests.TrailingStopOrderRequest(**common, **trail)
        if request.type == "market":
            return alpaca_requests.MarketOrderRequest(**common)
        if request.type == "limit":
            return alpaca_requests.LimitOrderRequest(
                **common, limit_price=_required_float(request.limit_price, "limit_price")
            )
        if request.type == "stop":
            return alpaca_requests.StopOrderRequest(
                **common, stop_price=_required_float(request.stop_price, "stop_price")
            )
        if request.type == "stop_limit":
            return alpaca_requests.StopLimitOrderRequest(
                **common,
                limit_price=_required_float(request.limit_price, "limit_price"),
                stop_price=_required_float(request.stop_price, "stop_price"),
            )
        raise BrokerError(
            f"Unsupported order type {request.type!r}",
            permanent=True,
            code="broker_validation_error",
        )


def _protective(request: OrderRequest) -> dict:
    """order_class with its take_profit / stop_loss legs, sent natively."""
    from alpaca.trading import requests as alpaca_requests
    from alpaca.trading.enums import OrderClass

    if request.order_class in ("", "simple"):
        return {}
    fields: dict = {"order_class": OrderClass(request.order_class)}
    if request.take_profit_limit_price is not None:
        fields["take_profit"] = alpaca_requests.TakeProfitRequest(
            limit_price=float(request.take_profit_limit_price)
        )
    if request.stop_loss_stop_price is not None:
        fields["stop_loss"] = alpaca_requests.StopLossRequest(
            stop_price=float(request.stop_loss_stop_price),
            limit_price=(
                float(request.stop_loss_limit_price)
                if request.stop_loss_limit_price is not None
                else None
            ),
        )
    return fields


def _required_float(value: Decimal | None, name: str) -> float:
    if value is None:
        raise BrokerError(f"{name} is required", permanent=True, code="broker_validation_error")
    return float(value)
