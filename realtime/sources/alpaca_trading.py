"""Alpaca's order updates (`trade_updates`) through alpaca-py's `TradingStream`.

alpaca-py's own `run()` reconnects in a loop of its own (alpaca-py issue 740: no backoff at
first, a 429 storm against the one connection Alpaca allows per account). We drive one
connection at a time instead and let `realtime.runner` own reconnection, backoff and the lease:
`_start_ws()` connects, authenticates and sends `listen`; we wait for the `listening` reply,
refresh the open orders over REST (a fill during the gap is never lost), call `link.ready()`,
then read frames (paper sends binary ones) and hand each to the library's `_dispatch`, which
calls our handler for `trade_updates`.

The client is built with `raw_data=True`, as the REST broker is: Alpaca's JSON is read by
`trading.brokers.alpaca.order_from_alpaca`, so money stays exact. Every update goes through
`trading.services.order_record_update` (the same recording as every other broker answer,
idempotent by the cumulative filled quantity). A malformed or hostile message is logged and
skipped; it never ends the connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import InterfaceError, OperationalError, connection

from realtime.sources.base import StreamLink, StreamSource

logger = logging.getLogger(__name__)

LISTEN_TIMEOUT_SECONDS = 10.0
MAX_FRAME_BYTES = 1 << 20
SIDES = {"buy", "sell"}


def stream_url() -> str | None:
    """ALPACA_STREAM_URL, else derived from ALPACA_URL_OVERRIDE (`/stream` on the same host),
    else None: alpaca-py's paper or live URL (wss://paper-api.alpaca.markets/stream)."""
    if settings.ALPACA_STREAM_URL:
        return settings.ALPACA_STREAM_URL
    if settings.ALPACA_URL_OVERRIDE:
        parts = urlsplit(settings.ALPACA_URL_OVERRIDE)
        scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
        return urlunsplit((scheme, parts.netloc, "/stream", "", ""))
    return None


async def in_db_thread(fn: Callable[..., Any], /, **kwargs: Any) -> Any:
    """Run ORM work in the one thread this process gives it (connections stay per thread)."""

    def call() -> Any:
        # A long-lived process keeps its connection (closing it per update, as
        # close_old_connections does with CONN_MAX_AGE=0, costs a new connection each time);
        # one the server dropped is replaced once.
        try:
            return fn(**kwargs)
        except (InterfaceError, OperationalError):
            if connection.in_atomic_block:
                raise
            connection.close()
            return fn(**kwargs)

    return await sync_to_async(call, thread_sensitive=True)()


def _decimal(value: Any) -> Decimal | None:
    """A finite, non-negative number from Alpaca's JSON (strings or numbers), else None."""
    if value is None or isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        number = Decimal(str(value))
    except ArithmeticError:
        return None
    return number if number.is_finite() and number >= 0 else None


def state_from_update(data: Any):
    """Our BrokerOrder for one `trade_updates` payload, or None (with the reason logged) when it
    is not a well-formed update about an order."""
    from trading.brokers.alpaca import _time, order_from_alpaca
    from trading.brokers.base import Fill

    if not isinstance(data, dict) or not isinstance(data.get("order"), dict):
        return _skip("no order in it", data)
    raw = data["order"]
    for key in ("client_order_id", "id", "symbol"):
        if not isinstance(raw.get(key), str) or not raw[key] or len(raw[key]) > 128:
            return _skip(f"order.{key} missing or invalid", data)
    if raw.get("side") not in SIDES:
        return _skip("order.side must be buy or sell", data)
    qty, filled = _decimal(raw.get("qty")), _decimal(raw.get("filled_qty") or "0")
    if qty is None or filled is None or filled > qty:
        return _skip("order.qty/filled_qty must be numbers, 0 <= filled_qty <= qty", data)
    if raw.get("filled_avg_price") is not None and _decimal(raw["filled_avg_price"]) is None:
        return _skip("order.filled_avg_price must be a non-negative number", data)
    try:
        state = order_from_alpaca(raw)
        executed_at = _time(data.get("timestamp"))
    except (ValueError, TypeError, ArithmeticError) as exc:
        return _skip(f"unreadable ({exc})", data)
    event = data.get("event")
    price, exec_qty = _decimal(data.get("price")), _decimal(data.get("qty"))
    execution_id = data.get("execution_id")
    if event in ("fill", "partial_fill") and price and exec_qty and isinstance(execution_id, str):
        # This execution alone: booked as such when it is all that is new, else the service
        # books the difference of the cumulative quantities.
        fill = Fill(
            qty=exec_qty,
            price=price,
            fee=Decimal("0"),
            executed_at=executed_at or datetime.now(UTC),
            broker_trade_id=execution_id[:64],
        )
        state = dataclasses.replace(state, fills=[fill])
    return state


def _skip(reason: str, data: Any) -> None:
    logger.warning("trade update skipped: %s: %.300r", reason, data)
    return None


class AlpacaTradingSource(StreamSource):
    name = "trade_updates"

    def __init__(self) -> None:
        if not settings.ALPACA_API_KEY or not settings.ALPACA_SECRET_KEY:
            raise ImproperlyConfigured(
                "The alpaca trade-updates stream needs ALPACA_API_KEY and ALPACA_SECRET_KEY."
            )
        self._stream = None
        self.updates = 0  # recorded since start (for logs and tests)

    def account(self) -> str:
        digest = hashlib.sha256(settings.ALPACA_API_KEY.encode()).hexdigest()[:16]
        return f"alpaca:{digest}"

    def silence_limit(self) -> float | None:
        # Order updates are quiet whenever nothing trades; a dead TCP connection is found by
        # the websocket pings instead (ping_interval / ping_timeout below).
        return None

    async def run(self, link: StreamLink) -> None:
        from alpaca.trading.stream import TradingStream

        stream = TradingStream(
            settings.ALPACA_API_KEY,
            settings.ALPACA_SECRET_KEY,
            paper=settings.ALPACA_PAPER,
            raw_data=True,
            url_override=stream_url(),
            websocket_params={
                "ping_interval": 10,
                "ping_timeout": 20,
                "open_timeout": 10,
                "close_timeout": 2,
                "max_queue": 1024,
                "max_size": MAX_FRAME_BYTES,
            },
        )
        stream.subscribe_trade_updates(self._on_update)
        self._stream = stream
        try:
            await stream._start_ws()  # connect, authenticate (raises if refused), listen
            ws = stream._ws
            early = await asyncio.wait_for(self._listening(ws), LISTEN_TIMEOUT_SECONDS)
            # Before resuming: whatever happened while we were away comes from REST.
            await in_db_thread(_refresh)
            link.ready()
            for message in early:
                await stream._dispatch(message)
            while True:
                frame = await ws.recv()
                link.received()
                message = _decode(frame)
                if message is not None:
                    await stream._dispatch(message)
        finally:
            await stream.close()

    async def close(self) -> None:
        if self._stream is not None:
            await self._stream.close()

    @staticmethod
    async def _listening(ws) -> list[dict]:
        """Wait for the `listening` reply; returns updates that came before it."""
        early: list[dict] = []
        while True:
            message = _decode(await ws.recv())
            if message is None:
                continue
            stream = message.get("stream")
            if stream == "listening":
                streams = (message.get("data") or {}).get("streams") or []
                if "trade_updates" not in streams:
                    raise ConnectionError(f"not listening to trade_updates: {message!r:.200}")
                return early
            if stream == "trade_updates":
                early.append(message)
            elif stream == "authorization" or "error" in message:
                raise ConnectionError(f"listen refused: {message!r:.200}")

    async def _on_update(self, message: dict) -> None:
        state = state_from_update(message.get("data"))
        if state is None:
            return
        event = str((message.get("data") or {}).get("event") or "")
        try:
            await in_db_thread(_record, state=state, event=event)
        except Exception:  # noqa: BLE001 - one update must not end the stream; REST settles it
            logger.exception("trade update %s for %s failed", event, state.client_order_id)
            return
        self.updates += 1


def _decode(frame: str | bytes) -> dict | None:
    try:
        message = json.loads(frame)
    except (ValueError, UnicodeDecodeError):
        logger.warning("trade stream: a frame that is not JSON: %.200r", frame)
        return None
    if not isinstance(message, dict):
        logger.warning("trade stream: a frame that is not an object: %.200r", frame)
        return None
    return message


def _refresh() -> None:
    from trading.services import orders_refresh_open

    orders_refresh_open(by="stream")


def _record(*, state, event: str) -> None:
    from trading.services import order_record_update

    order_record_update(state=state, event=event)
