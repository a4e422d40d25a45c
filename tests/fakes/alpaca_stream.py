"""A local stand-in for Alpaca's trading stream (`wss://paper-api.alpaca.markets/stream`).

It speaks the documented protocol (docs.alpaca.markets, "Websocket Streaming"):

* the client sends `{"action": "authenticate", "data": {"key_id", "secret_key"}}` and gets
  `{"stream": "authorization", "data": {"status": "authorized", "action": "authenticate"}}`
  (or `"unauthorized"`, after which the server closes);
* `{"action": "listen", "data": {"streams": ["trade_updates"]}}` gets
  `{"stream": "listening", "data": {"streams": ["trade_updates"]}}`;
* then `{"stream": "trade_updates", "data": {"event", "execution_id", "order", "timestamp",
  "price", "qty", "position_qty"}}` per order event, the order as the REST API's Order JSON.

Like paper, every frame it sends is BINARY (`binary=False` sends text). It runs a `websockets`
server on 127.0.0.1 in a thread of its own, so synchronous tests and other processes can use
it, and lets a test push events (`push`, `push_raw`, `order_event` on top of the REST fake's
orders), drop every connection mid-stream (`drop`), refuse handshakes with an HTTP status
(`refuse_next`, e.g. 429) or above a connection limit (`limit`), and counts connections:
`active`, `max_active` (the most open at once: two would be a double connection) and `total`.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from tests.fakes.alpaca_server import API_KEY, SECRET_KEY


def _iso_now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class FakeAlpacaStream:
    def __init__(
        self, *, api_key: str = API_KEY, secret_key: str = SECRET_KEY, binary: bool = True
    ) -> None:
        self.api_key, self.secret_key, self.binary = api_key, secret_key, binary
        self.limit: int | None = None  # refuse (429) a handshake while this many are open
        self.active = 0
        self.max_active = 0
        self.total = 0  # handshakes accepted
        self.refused: list[int] = []  # statuses of refused handshakes
        self.attempts_at: list[float] = []  # time.monotonic() of every handshake, refused or not
        self.received: list[dict] = []  # every client message, parsed
        self.sent_at: dict[str, float] = {}  # execution_id -> time.time() it was sent
        self._refuse: list[int] = []
        self._listeners: set[ServerConnection] = set()
        self._connections: set[ServerConnection] = set()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="fake-alpaca-stream", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fake Alpaca stream did not start")
        self.url = f"ws://127.0.0.1:{self.port}/stream"

    # -- lifecycle ----------------------------------------------------------------------------

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def main() -> None:
            self._stop = asyncio.Event()
            async with serve(
                self._handle, "127.0.0.1", 0, process_request=self._process_request
            ) as server:
                self.port = server.sockets[0].getsockname()[1]
                self._ready.set()
                await self._stop.wait()

        self._loop.run_until_complete(main())

    def stop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(10)

    def __enter__(self) -> FakeAlpacaStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the protocol -------------------------------------------------------------------------

    def _process_request(self, connection: ServerConnection, request: Any):
        with self._lock:
            self.attempts_at.append(time.monotonic())
            status = self._refuse.pop(0) if self._refuse else None
            if status is None and self.limit is not None and self.active >= self.limit:
                status = 429
            if status is not None:
                self.refused.append(status)
                return connection.respond(status, "connection limit exceeded\n")
            self.active += 1
            self.total += 1
            self.max_active = max(self.max_active, self.active)
        return None

    async def _send(self, ws: ServerConnection, message: dict) -> None:
        text = json.dumps(message, separators=(",", ":"))
        await ws.send(text.encode() if self.binary else text)

    async def _handle(self, ws: ServerConnection) -> None:
        self._connections.add(ws)
        try:
            if not await self._authenticate(ws):
                return
            async for frame in ws:
                message = self._parse(frame)
                if message.get("action") == "listen":
                    streams = list((message.get("data") or {}).get("streams") or [])
                    await self._send(ws, {"stream": "listening", "data": {"streams": streams}})
                    if "trade_updates" in streams:
                        self._listeners.add(ws)
                    else:
                        self._listeners.discard(ws)
        except ConnectionClosed:
            pass
        finally:
            self._listeners.discard(ws)
            self._connections.discard(ws)
            with self._lock:
                self.active -= 1

    def _parse(self, frame: str | bytes) -> dict:
        try:
            message = json.loads(frame)
        except ValueError:
            message = {"unparsable": str(frame)[:200]}
        message = message if isinstance(message, dict) else {"unparsable": str(frame)[:200]}
        self.received.append(message)
        return message

    async def _authenticate(self, ws: ServerConnection) -> bool:
        message = self._parse(await asyncio.wait_for(ws.recv(), 10))
        data = message.get("data") or {}
        ok = (
            message.get("action") == "authenticate"
            and data.get("key_id") == self.api_key
            and data.get("secret_key") == self.secret_key
        )
        status = "authorized" if ok else "unauthorized"
        await self._send(
            ws, {"stream": "authorization", "data": {"status": status, "action": "authenticate"}}
        )
        if not ok:
            await ws.close(1008, "unauthorized")
        return ok

    # -- driving it from a test -----------------------------------------------------------

    def _call(self, coro) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    @property
    def listening(self) -> int:
        return len(self._listeners)

    def wait_listening(self, count: int = 1, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while self.listening < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.listening} clients listening, wanted {count}")
            time.sleep(0.02)

    def push(self, data: dict) -> int:
        """Send one trade_updates message to every listening client; returns how many."""
        return self.push_raw({"stream": "trade_updates", "data": data})

    def push_raw(self, message: dict | str | bytes) -> int:
        """Send anything (a malformed frame too) to every listening client."""

        async def send_all() -> int:
            for ws in list(self._listeners):
                if isinstance(message, dict):
                    await self._send(ws, message)
                else:
                    await ws.send(message)
            return len(self._listeners)

        return self._call(send_all())

    def drop(self) -> None:
        """Cut every connection as a network failure would: no close frame."""

        async def abort_all() -> None:
            for ws in list(self._connections):
                ws.transport.abort()

        self._call(abort_all())

    def refuse_next(self, status: int = 429, times: int = 1) -> None:
        with self._lock:
            self._refuse.extend([status] * times)

    @staticmethod
    def order_event(
        order: dict,
        event: str,
        *,
        qty: Any = None,
        price: Any = None,
        execution_id: str | None = None,
        position_qty: Any = None,
    ) -> dict:
        """A trade_updates `data` for `order` (the REST fake's Order JSON, copied as it is now)."""
        data: dict[str, Any] = {"event": event, "order": dict(order), "timestamp": _iso_now()}
        if event in ("fill", "partial_fill"):
            data["execution_id"] = execution_id or str(uuid.uuid4())
            data["price"], data["qty"] = str(price), str(qty)
            data["position_qty"] = str(position_qty if position_qty is not None else qty)
        return data

    def fill(self, rest, client_order_id: str, *, qty: Any, price: Any, send: bool = True) -> dict:
        """One execution of `qty` at `price` for an order of the REST fake: its state moves on
        (cumulative filled_qty and average price, as Alpaca reports them) and, with `send`, the
        fill or partial_fill event goes out. Returns the event's data."""
        from decimal import Decimal

        order = rest.order_by_client_id(client_order_id)
        before = Decimal(order.get("filled_qty") or "0")
        before_avg = Decimal(order.get("filled_avg_price") or "0")
        filled = before + Decimal(str(qty))
        avg = (before * before_avg + Decimal(str(qty)) * Decimal(str(price))) / filled
        done = filled >= Decimal(order["qty"])
        order = rest.set_order_status(
            client_order_id,
            "filled" if done else "partially_filled",
            filled_qty=filled,
            filled_avg_price=avg.quantize(Decimal("0.0001")),
        )
        data = self.order_event(
            order, "fill" if done else "partial_fill", qty=qty, price=price, position_qty=filled
        )
        if send:
            self.sent_at[data["execution_id"]] = time.time()
            self.push(data)
        return data
