"""A local stand-in for Alpaca's real-time stock market-data stream (wss://stream.data.alpaca.
markets/v2/<feed>), speaking the documented protocol, for alpaca-py's `StockDataStream`.

The protocol (https://docs.alpaca.markets/docs/streaming-market-data): every frame is an array of
messages, in MessagePack when the client sent `Content-Type: application/msgpack` (alpaca-py
does) and JSON otherwise; timestamps are MessagePack Timestamp extensions (type -1) in MessagePack
and RFC 3339 strings in JSON, as the service sends them.

- on connect: `[{"T":"success","msg":"connected"}]`;
- `{"action":"auth","key","secret"}` -> `[{"T":"success","msg":"authenticated"}]`, or an error
  `402 auth failed` (then closed), `406 connection limit exceeded` when the account already holds
  `max_connections` authenticated connections (then closed), `403 already authenticated`;
  no auth within `auth_timeout` seconds -> `404 auth timeout` (then closed);
- `{"action":"subscribe"|"unsubscribe","trades":[..],"quotes":[..],"bars":[..],...}` ->
  `[{"T":"subscription","trades":[..],"quotes":[..],"bars":[..],"updatedBars":[..],
  "dailyBars":[..],"statuses":[..],"lulds":[..],"corrections":[..],"cancelErrors":[..]}]`
  (corrections and cancelErrors follow trades); before auth `401 not authenticated`; more than
  `max_symbols` symbols `405 symbol limit exceeded`; a malformed message `400 invalid syntax`;
- data: trades `{"T":"t","S","i","x","p","s","t","c","z"}`, quotes `{"T":"q","S","bx","bp","bs",
  "ax","ap","as","t","c","z"}`, sent only to connections subscribed to the symbol (or "*").

`FakeAlpacaDataStream` runs a `websockets` server on 127.0.0.1 (ephemeral port) in a thread of
its own; its methods are called from the test's thread. Hostile frames go out with `send_raw`.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import msgpack
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

API_KEY = "PKFAKESTREAMKEY"
SECRET_KEY = "fake-stream-secret"

CHANNELS = ("trades", "quotes", "bars", "updatedBars", "dailyBars", "statuses", "lulds")


@dataclass
class _Client:
    ws: ServerConnection
    msgpack: bool
    authenticated: bool = False
    subs: dict[str, set[str]] = field(default_factory=lambda: {c: set() for c in CHANNELS})

    def wants(self, channel: str, symbol: str) -> bool:
        chosen = self.subs[channel]
        return symbol in chosen or "*" in chosen


class FakeAlpacaDataStream:
    def __init__(
        self,
        *,
        api_key: str = API_KEY,
        secret_key: str = SECRET_KEY,
        feed: str = "iex",
        max_connections: int = 1,
        max_symbols: int | None = None,
        auth_timeout: float = 10.0,
    ) -> None:
        self.api_key, self.secret_key, self.feed = api_key, secret_key, feed
        self.max_connections, self.max_symbols = max_connections, max_symbols
        self.auth_timeout = auth_timeout
        self.received: list[Any] = []  # every client message, decoded
        self.errors_sent: list[int] = []  # codes of the errors answered
        self.connects = 0
        self._clients: list[_Client] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-alpaca-data", daemon=True)
        self._server = None
        self.port = 0

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeAlpacaDataStream:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake Alpaca data stream did not start")
        return self

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._server = await serve(self._handle, "127.0.0.1", 0, max_size=2**20)
            self.port = self._server.sockets[0].getsockname()[1]
            self._ready.set()
            await self._server.wait_closed()

        self._loop.run_until_complete(main())

    def stop(self) -> None:
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._thread.join(10)

    def __enter__(self) -> FakeAlpacaDataStream:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v2/{self.feed}"

    # --- what a test calls ---------------------------------------------------------------------

    def _call(self, coro) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    @property
    def authenticated(self) -> int:
        return sum(1 for c in self._clients if c.authenticated)

    def subscribed(self, channel: str) -> set[str]:
        return set().union(*(c.subs[channel] for c in self._clients)) if self._clients else set()

    def send_trade(
        self, symbol: str, price: Any, size: Any = 100, at: datetime | None = None, **extra: Any
    ) -> int:
        """Send a trade to the connections subscribed to it; returns how many got it."""
        message = {
            "T": "t",
            "S": symbol,
            "i": extra.pop("i", 1),
            "x": "V",
            "p": price,
            "s": size,
            "t": at or datetime.now(UTC),
            "c": ["@"],
            "z": "C",
            **extra,
        }
        return self._call(self._broadcast("trades", symbol, message))

    def send_quote(
        self,
        symbol: str,
        bid: Any,
        ask: Any,
        bid_size: Any = 1,
        ask_size: Any = 1,
        at: datetime | None = None,
    ) -> int:
        message = {
            "T": "q",
            "S": symbol,
            "bx": "V",
            "bp": bid,
            "bs": bid_size,
            "ax": "V",
            "ap": ask,
            "as": ask_size,
            "t": at or datetime.now(UTC),
            "c": ["R"],
            "z": "C",
        }
        return self._call(self._broadcast("quotes", symbol, message))

    def send_error(self, code: int, msg: str) -> None:
        """An error frame to every authenticated connection (e.g. 407 slow client)."""
        self._call(self._to_all([{"T": "error", "code": code, "msg": msg}]))

    def send_raw(self, data: bytes | str) -> None:
        """Anything at all, as one frame, to every authenticated connection."""

        async def go() -> None:
            for client in list(self._clients):
                if client.authenticated:
                    await client.ws.send(data)

        self._call(go())

    def drop_connections(self) -> None:
        async def go() -> None:
            for client in list(self._clients):
                await client.ws.close(1011, "dropped by the test")

        self._call(go())

    # --- the protocol --------------------------------------------------------------------------

    def _encode(self, client: _Client, messages: list[dict]) -> bytes | str:
        if client.msgpack:
            return msgpack.packb(_to_msgpack(messages))
        return json.dumps(messages, default=_json_default)

    async def _reply(self, client: _Client, messages: list[dict]) -> None:
        for message in messages:
            if message.get("T") == "error":
                self.errors_sent.append(message["code"])
        await client.ws.send(self._encode(client, messages))

    async def _error(self, client: _Client, code: int, msg: str, *, close: bool = False) -> None:
        await self._reply(client, [{"T": "error", "code": code, "msg": msg}])
        if close:
            await client.ws.close()

    async def _broadcast(self, channel: str, symbol: str, message: dict) -> int:
        sent = 0
        for client in list(self._clients):
            if client.authenticated and client.wants(channel, symbol):
                try:
                    await client.ws.send(self._encode(client, [message]))
                    sent += 1
                except ConnectionClosed:
                    pass
        return sent

    async def _to_all(self, messages: list[dict]) -> None:
        for client in list(self._clients):
            if client.authenticated:
                await self._reply(client, messages)

    async def _handle(self, ws: ServerConnection) -> None:
        content_type = ws.request.headers.get("Content-Type", "") if ws.request else ""
        client = _Client(ws=ws, msgpack="msgpack" in content_type)
        self._clients.append(client)
        self.connects += 1
        try:
            await self._reply(client, [{"T": "success", "msg": "connected"}])
            try:
                first = await asyncio.wait_for(ws.recv(), self.auth_timeout)
            except TimeoutError:
                await self._error(client, 404, "auth timeout", close=True)
                return
            await self._on_message(client, first)
            async for frame in ws:
                await self._on_message(client, frame)
        except ConnectionClosed:
            pass
        finally:
            self._clients.remove(client)

    async def _on_message(self, client: _Client, frame: bytes | str) -> None:
        try:
            message = msgpack.unpackb(frame) if isinstance(frame, bytes) else json.loads(frame)
        except Exception:  # noqa: BLE001 - whatever the client sent
            await self._error(client, 400, "invalid syntax")
            return
        self.received.append(message)
        if not isinstance(message, dict) or not isinstance(message.get("action"), str):
            await self._error(client, 400, "invalid syntax")
            return
        action = message["action"]
        if action == "auth":
            await self._auth(client, message)
        elif action in ("subscribe", "unsubscribe"):
            await self._subscribe(client, message, add=action == "subscribe")
        else:
            await self._error(client, 400, "invalid syntax")

    async def _auth(self, client: _Client, message: dict) -> None:
        if client.authenticated:
            await self._error(client, 403, "already authenticated")
            return
        if message.get("key") != self.api_key or message.get("secret") != self.secret_key:
            await self._error(client, 402, "auth failed", close=True)
            return
        if self.authenticated >= self.max_connections:
            await self._error(client, 406, "connection limit exceeded", close=True)
            return
        client.authenticated = True
        await self._reply(client, [{"T": "success", "msg": "authenticated"}])

    async def _subscribe(self, client: _Client, message: dict, *, add: bool) -> None:
        if not client.authenticated:
            await self._error(client, 401, "not authenticated")
            return
        wanted = {}
        for channel in CHANNELS:
            symbols = message.get(channel, [])
            if not isinstance(symbols, list) or not all(isinstance(s, str) for s in symbols):
                await self._error(client, 400, "invalid syntax")
                return
            wanted[channel] = set(symbols)
        after = {
            c: (client.subs[c] | wanted[c]) if add else (client.subs[c] - wanted[c])
            for c in CHANNELS
        }
        count = len(set().union(*after.values()) - {"*"})
        if self.max_symbols is not None and count > self.max_symbols:
            await self._error(client, 405, "symbol limit exceeded")
            return
        client.subs = after
        reply = {"T": "subscription", **{c: sorted(after[c]) for c in CHANNELS}}
        reply["corrections"] = sorted(after["trades"])
        reply["cancelErrors"] = sorted(after["trades"])
        await self._reply(client, [reply])


def _to_msgpack(value: Any) -> Any:
    if isinstance(value, datetime):
        return msgpack.Timestamp.from_datetime(value)
    if isinstance(value, dict):
        return {k: _to_msgpack(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_msgpack(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    raise TypeError(type(value).__name__)
