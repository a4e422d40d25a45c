"""Per-process fan-out: one Redis subscription per web process, local delivery to every client.

Why not `group_send` on the channel layer: it costs Redis and the consumer a message per
client (msgpack, a queue, a task wake-up, a handler call, a JSON frame built per client), which
measured ~300 µs of daphne CPU per delivered message. Here an event is received once per
process, framed once, and written to each client's socket (bench/ws_fanout.py measures it).
The events of one publish call (a fill's order, trade and position updates; a market-data
tick's quotes) arrive as one message and go to each client in one write: one system call per
client instead of one per event (bench/realtime.py measures it).

Slow clients: a client whose socket buffer holds more than MAX_BUFFERED_BYTES skips messages
(its next message shows a `seq` gap, so its dashboard re-fetches the REST snapshot); it never
delays the others, and the server never buffers more than that for it.

Redis outages: the listener reconnects with backoff; when the subscription is back it closes
every client with 4012 (service restart) so each reconnects and re-fetches what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import struct
import weakref
from typing import Any, Protocol

import redis.asyncio as aioredis
from django.conf import settings

from streaming import events
from streaming.publish import wire_split
from streaming.redis import stream_channel

logger = logging.getLogger(__name__)

MAX_BUFFERED_BYTES = 512 * 1024
FALLBACK_QUEUE_SIZE = 256
# 1012 (service restart) would say it best, but autobahn (daphne) only sends 1000 or 3000-4999.
CLOSE_SERVICE_RESTART = 4012
SUBSCRIBE_WAIT_SECONDS = 2.0
RAW_SOCKET_SCOPE_KEY = "streaming.raw_socket"


class Batch:
    """The events of one pub/sub message, each framed once; a client takes the ones it wants
    (`symbols`: its market-data filter, None for all) as one run of frames, built once per
    distinct filter."""

    __slots__ = ("events", "_chosen")

    def __init__(self, items: list[tuple[str, str, bytes]]) -> None:
        self.events = items
        self._chosen: dict[frozenset[str] | None, tuple[list[bytes], bytes]] = {}

    def _pick(self, symbols: frozenset[str] | None) -> tuple[list[bytes], bytes]:
        found = self._chosen.get(symbols)
        if found is None:
            texts = [
                text
                for type_, symbol, text in self.events
                if symbols is None or type_ != events.MARKET_DATA or symbol in symbols
            ]
            found = self._chosen[symbols] = (texts, b"".join(map(ws_text_frame, texts)))
        return found

    def texts(self, symbols: frozenset[str] | None) -> list[bytes]:
        return self._pick(symbols)[0]

    def frames(self, symbols: frozenset[str] | None) -> tuple[int, bytes]:
        """How many events, and their frames back to back."""
        texts, frames = self._pick(symbols)
        return len(texts), frames


class Client(Protocol):
    symbols: frozenset[str] | None

    def deliver(self, batch: Batch) -> None: ...

    def notify(self, type_: str, payload: dict[str, Any]) -> None: ...

    def restart(self) -> None: ...


def ws_text_frame(payload: bytes) -> bytes:
    """One unmasked, final WebSocket text frame (RFC 6455 §5.2): what a server sends."""
    n = len(payload)
    if n < 126:
        return struct.pack("!BB", 0x81, n) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


class RawSocket:
    """Direct frame writes to a daphne WebSocket connection's Twisted transport.

    Every client gets the same bytes, so the frame is built once per event instead of once per
    client by autobahn. Frames are written whole, so they interleave safely with autobahn's own
    (pings, close). Only used for uncompressed connections on a plain TCP transport.
    """

    def __init__(self, protocol: Any) -> None:
        self.protocol = protocol
        self.transport = protocol.transport
        self.sock = getattr(self.transport, "socket", None)

    @classmethod
    def from_send(cls, send: Any) -> RawSocket | None:
        try:
            from daphne.ws_protocol import WebSocketProtocol
        except ImportError:  # pragma: no cover - daphne is a dependency
            return None
        protocol = send.args[0] if isinstance(send, functools.partial) and send.args else None
        if not isinstance(protocol, WebSocketProtocol):
            return None
        transport = getattr(protocol, "transport", None)
        if not (hasattr(transport, "_tempDataLen") and hasattr(transport, "dataBuffer")):
            return None  # e.g. TLS terminated in daphne: use the ASGI send path
        return cls(protocol)

    def usable(self) -> bool:
        protocol = self.protocol
        return protocol.state == protocol.STATE_OPEN and protocol._perMessageCompress is None

    def buffered(self) -> int:
        t = self.transport
        return len(t.dataBuffer) - t.offset + t._tempDataLen

    def write(self, frame: bytes) -> bool:
        """Write the frame, or skip it (False) while the client is not keeping up."""
        buffered = self.buffered()
        if buffered > MAX_BUFFERED_BYTES:
            return False
        if buffered == 0 and self.sock is not None and not self.transport.disconnecting:
            # Nothing queued before it: send now, as asyncio's transports do. Twisted would
            # queue it and register the socket for writability (two epoll_ctl calls and a
            # callback per client per event); only what the kernel does not take goes there.
            try:
                sent = self.sock.send(frame)
            except (BlockingIOError, InterruptedError):
                sent = 0
            except OSError:
                return True  # the connection is going away; twisted reports the close
            if sent == len(frame):
                return True
            frame = frame[sent:]
        self.transport.write(frame)
        return True


class RawSocketMiddleware:
    """Outermost ASGI middleware: under daphne, put the connection's RawSocket in the scope."""

    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        if scope.get("type") == "websocket":
            raw = RawSocket.from_send(send)
            if raw is not None:
                scope = dict(scope, **{RAW_SOCKET_SCOPE_KEY: raw})
        return await self.inner(scope, receive, send)


class Hub:
    """The clients of one event loop (one web process) and its one Redis subscription."""

    def __init__(self) -> None:
        self.clients: dict[Client, None] = {}
        self.connected = asyncio.Event()
        self.healthy = False
        self._task: asyncio.Task | None = None
        self.delivered = 0
        self.skipped = 0

    async def add(self, client: Client) -> None:
        """Register a client; returns once the subscription is live (or Redis is found down)."""
        self.clients[client] = None
        if self._task is None or self._task.done():
            self.connected.clear()
            self._task = asyncio.ensure_future(self._listen())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.connected.wait(), SUBSCRIBE_WAIT_SECONDS)

    def discard(self, client: Client) -> None:
        self.clients.pop(client, None)
        if not self.clients and self._task is not None:
            # No one to deliver to: let go of the subscription (and of this loop's resources).
            self._task.cancel()
            self._task = None
            self.healthy = False

    def dispatch(self, data: bytes) -> None:
        batch = Batch(wire_split(data))
        for client in list(self.clients):
            client.deliver(batch)

    async def _listen(self) -> None:
        backoff = 0.1
        failed = False
        while True:
            conn = aioredis.Redis.from_url(
                settings.REDIS_URL, socket_connect_timeout=1, socket_keepalive=True
            )
            pubsub = conn.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(stream_channel())
                self.healthy = True
                self.connected.set()
                if failed:
                    logger.info("stream subscription restored; clients reconnect to catch up")
                    for client in list(self.clients):
                        client.restart()
                failed = False
                backoff = 0.1
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self.dispatch(message["data"])
                        # A burst can arrive in one read: yield, so that sockets get written
                        # (and healthy clients never look slow) between messages.
                        await asyncio.sleep(0)
                raise ConnectionError("subscription ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any Redis failure: retry with backoff
                if not failed:
                    logger.warning("stream subscription lost (%s); retrying", exc)
                    for client in list(self.clients):
                        client.notify(events.STATUS, {"stream": "down"})
                failed = True
                self.healthy = False
                # Connections that arrive during the outage must not wait for it.
                self.connected.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await conn.aclose()


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Hub] = weakref.WeakKeyDictionary()


def hub() -> Hub:
    """This event loop's hub (one per process under daphne; one per test under pytest)."""
    loop = asyncio.get_running_loop()
    found = _hubs.get(loop)
    if found is None:
        found = _hubs[loop] = Hub()
    return found
