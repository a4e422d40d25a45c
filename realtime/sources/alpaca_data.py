"""Alpaca's real-time stock data (trades and quotes of PRIMARY_SYMBOLS) through alpaca-py's
`StockDataStream`, as a `StreamSource` for the `stream` process.

alpaca-py's own `run()` reconnects in a loop of its own (and before 0.43 without backoff: alpaca-py
issue 740, a 429 storm against Alpaca's one-connection-per-endpoint limit). Here one `run(link)`
is exactly one connection: the library's `_connect` (msgpack content type, the "connected"
greeting), our `_auth` (the library's, keeping Alpaca's error code) and the library's
`_send_subscribe_msg` and `_dispatch`, then a read loop of ours that ends on the first error or
close. Reconnecting, with backoff and jitter, is the runner's job alone.

Alpaca's error messages end the connection with a logged reason and `StreamRefused(code)`: 402
auth failed, 406 connection limit exceeded, 405 symbol limit exceeded, 409 insufficient
subscription, ... Malformed frames, unknown symbols and impossible prices are logged (at most
once per `COMPLAINT_SECONDS` per kind) and skipped; they never end the connection.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime
from functools import cache
from typing import Any

import msgpack

from core.times import parse_iso_utc
from realtime.feed import (
    MarketFeed,
    clean_price,
    clean_size,
    market_silence_limit,
    orders_react,
)
from realtime.sources.base import StreamLink, StreamSource

logger = logging.getLogger(__name__)

COMPLAINT_SECONDS = 10.0

# The connection's bounds: a time limit to connect and close, keepalive pings, a frame size cap
# and a bounded receive queue (alpaca-py's defaults wait 180 s for a pong and cap nothing).
WEBSOCKET_PARAMS = {
    "open_timeout": 10,
    "close_timeout": 2,
    "ping_interval": 10,
    "ping_timeout": 20,
    "max_size": 1 << 20,
    "max_queue": 1024,
}

# Alpaca's documented stream error codes, with what to do about them.
ERROR_HINTS = {
    400: "invalid syntax (a bug here: report it)",
    401: "not authenticated",
    402: "check ALPACA_API_KEY and ALPACA_SECRET_KEY",
    403: "already authenticated",
    404: "authentication timed out",
    405: "too many symbols for the data plan: shorten PRIMARY_SYMBOLS",
    406: "another connection already holds this account's data stream (most plans allow one)",
    407: "this client read too slowly and was dropped",
    409: "the feed needs a subscription the account lacks: ALPACA_DATA_FEED=iex",
    410: "invalid subscribe action for this feed",
    500: "Alpaca internal error",
}


class StreamRefused(Exception):
    """Alpaca sent an error message: the connection is over."""

    def __init__(self, code: int | None, message: str) -> None:
        self.code = code
        hint = ERROR_HINTS.get(code) if isinstance(code, int) else None
        text = f"Alpaca market-data stream error {code}: {message}"
        super().__init__(f"{text} ({hint})" if hint else text)


def _timestamp(value: Any) -> datetime | None:
    if isinstance(value, msgpack.Timestamp):
        return value.to_datetime()
    return parse_iso_utc(value)


@cache
def _stream_class():
    from alpaca.data.live.stock import StockDataStream

    class _OneConnection(StockDataStream):
        """alpaca-py's stream, driven one connection at a time (see the module docstring)."""

        async def _auth(self) -> None:
            # The library's handshake, keeping the error code its ValueError drops.
            await self._ws.send(
                msgpack.packb({"action": "auth", "key": self._api_key, "secret": self._secret_key})
            )
            reply = _frame(await self._ws.recv())
            first = reply[0] if reply and isinstance(reply[0], dict) else {}
            if first.get("T") == "error":
                raise StreamRefused(first.get("code"), str(first.get("msg", "auth failed")))
            if first.get("T") != "success" or first.get("msg") != "authenticated":
                raise StreamRefused(None, f"unexpected answer to auth: {reply!r:.200}")

    return _OneConnection


def _frame(raw: Any) -> list:
    """The messages of one frame (MessagePack, or JSON text); ValueError if it is neither."""
    if isinstance(raw, bytes):
        try:
            decoded = msgpack.unpackb(raw)
        except Exception as exc:  # noqa: BLE001 - msgpack raises several types on garbage
            raise ValueError(f"malformed msgpack frame ({type(exc).__name__}: {exc})") from exc
    else:
        import json

        decoded = json.loads(raw)
    return decoded if isinstance(decoded, list) else [decoded]


class AlpacaDataSource(StreamSource):
    name = "market_data"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        secret_key: str | None = None,
        url: str | None = None,
        feed: str | None = None,
        symbols: list[str] | None = None,
        events_per_second: float | None = None,
    ) -> None:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured

        self.api_key = settings.ALPACA_API_KEY if api_key is None else api_key
        self.secret_key = settings.ALPACA_SECRET_KEY if secret_key is None else secret_key
        if not self.api_key or not self.secret_key:
            raise ImproperlyConfigured(
                "The Alpaca market-data stream needs ALPACA_API_KEY and ALPACA_SECRET_KEY."
            )
        self.url = url or settings.ALPACA_DATA_STREAM_URL
        self.feed = feed or settings.ALPACA_DATA_FEED
        self.symbols = [s.upper() for s in (symbols or settings.PRIMARY_SYMBOLS)]
        self.events_per_second = events_per_second
        self.feed_state: MarketFeed | None = None  # the current connection's (tests read it)
        self._stream = None
        self._closing = False
        self._complained: dict[str, float] = {}

    def account(self) -> str:
        """The account the data stream connects as (Alpaca allows one data connection per
        account on most plans): the same as the trade-updates source's, so one lease covers
        both."""
        import hashlib

        return f"alpaca:{hashlib.sha256(self.api_key.encode()).hexdigest()[:16]}"

    def silence_limit(self) -> float | None:
        return market_silence_limit()

    def _complain(self, kind: str, text: str, *args: Any, exc_info: bool = False) -> None:
        now = time.monotonic()
        if now - self._complained.get(kind, -COMPLAINT_SECONDS) >= COMPLAINT_SECONDS:
            self._complained[kind] = now
            logger.warning("Alpaca market data: " + text, *args, exc_info=exc_info)

    async def run(self, link: StreamLink) -> None:
        import asyncio

        from alpaca.data.enums import DataFeed

        self._closing = False
        feed = self.feed_state = MarketFeed(
            events_per_second=self.events_per_second, on_prices=orders_react
        )
        stream = self._stream = _stream_class()(
            self.api_key, self.secret_key, raw_data=True, feed=DataFeed(self.feed),
            url_override=self.url, websocket_params=WEBSOCKET_PARAMS,
        )  # fmt: skip
        stream.subscribe_trades(self._on_trade, *self.symbols)
        stream.subscribe_quotes(self._on_quote, *self.symbols)
        writer = asyncio.create_task(feed.run())
        try:
            await stream._connect()
            await stream._auth()
            await stream._send_subscribe_msg()
            await self._consume(stream, link)
        except StreamRefused as exc:
            logger.error("%s; the stream ends here and the runner reconnects later", exc)
            raise
        finally:
            await stream.close()
            feed.stop()
            await writer

    async def _consume(self, stream, link: StreamLink) -> None:
        from websockets.exceptions import ConnectionClosed

        ws = stream._ws
        live = False
        while not self._closing:
            try:
                raw = await ws.recv()
            except ConnectionClosed as exc:
                if not self._closing:
                    logger.warning("Alpaca market-data stream closed: %s", exc)
                return
            try:
                messages = _frame(raw)
            except ValueError as exc:
                self._complain("frame", "skipping a frame: %s", exc)
                continue
            link.received()
            for message in messages:
                if not isinstance(message, dict):
                    self._complain("message", "skipping a non-object message: %.200r", message)
                    continue
                kind = message.get("T")
                if kind == "error":
                    raise StreamRefused(message.get("code"), str(message.get("msg", "")))
                if kind == "subscription":
                    if not live:
                        live = True
                        logger.info(
                            "Alpaca market data live (%s): trades %s, quotes %s",
                            self.feed, message.get("trades"), message.get("quotes"),
                        )  # fmt: skip
                        link.ready()
                    continue
                if not isinstance(message.get("S"), str):
                    continue  # not a symbol's data (or a hostile one): nothing to route
                try:
                    await stream._dispatch(message)
                except Exception:  # noqa: BLE001 - one bad message must not end the stream
                    self._complain("dispatch", "a message failed: %.200r", message, exc_info=True)

    async def _on_trade(self, message: dict) -> None:
        symbol = message["S"]
        price, at = clean_price(message.get("p")), _timestamp(message.get("t"))
        size = clean_size(message.get("s"))
        if price is None or at is None:
            self._complain("trade", "skipping a trade without a sane price/time: %.200r", message)
            return
        self.feed_state.trade(symbol, price, size, at)

    async def _on_quote(self, message: dict) -> None:
        symbol = message["S"]
        at = _timestamp(message.get("t"))
        bid, ask = clean_price(message.get("bp")), clean_price(message.get("ap"))
        if at is None or (bid is None and ask is None):
            self._complain("quote", "skipping a quote without a sane bid/ask/time: %.200r", message)
            return
        self.feed_state.quote(symbol, bid, ask, at)

    async def close(self) -> None:
        self._closing = True
        stream = self._stream
        if stream is not None and stream._ws is not None:
            await stream._ws.close()
