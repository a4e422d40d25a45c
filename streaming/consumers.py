"""/ws/updates: authenticate, register with this process's hub, answer client actions."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from streaming import events, groups
from streaming.fanout import (
    CLOSE_SERVICE_RESTART,
    FALLBACK_QUEUE_SIZE,
    RAW_SOCKET_SCOPE_KEY,
    Batch,
    hub,
)
from streaming.watch import CLOSE_TOO_MANY_CONNECTIONS, CLOSE_UNAUTHORIZED, watch

logger = logging.getLogger(__name__)

MAX_SUBSCRIBED_SYMBOLS = 200
MAX_MESSAGE_CHARS = 16 * 1024


@database_sync_to_async
def _status_snapshot() -> dict:
    from trading.selectors import status_get

    return status_get()


class UpdatesConsumer(AsyncWebsocketConsumer):
    # Events arrive through streaming.fanout's per-process subscription, not the channel layer:
    # no alias means no per-connection channel (and no Redis round trip per connection).
    channel_layer_alias = "__no_channel_layer__"
    symbols: frozenset[str] | None = None  # None: every symbol

    async def connect(self) -> None:
        self.registered = False
        self.watched = False
        self.skipped = 0
        self.raw = self.scope.get(RAW_SOCKET_SCOPE_KEY)
        self.outbox: asyncio.Queue[bytes] | None = None
        self.writer: asyncio.Task | None = None
        # Accept first, so the close code (4401) reaches the client instead of an HTTP 403.
        await self.accept()
        if not groups.can_join_updates(self.scope):
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        self.watch = watch()
        if not self.watch.add(self, self.scope.get("principal")):
            await self.close(code=CLOSE_TOO_MANY_CONNECTIONS)
            return
        self.watched = True
        if self.raw is None or not self.raw.usable():
            # Not under daphne (or compressed): a bounded queue and a writer task per client.
            self.raw = None
            self.outbox = asyncio.Queue(maxsize=FALLBACK_QUEUE_SIZE)
            self.writer = asyncio.ensure_future(self._write_outbox())
        self.hub = hub()
        await self.hub.add(self)
        self.registered = True
        status = await _status_snapshot()
        status["stream"] = "live" if self.hub.healthy else "down"
        await self._send_event(events.STATUS, status)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "watched", False):
            self.watch.discard(self)
            self.watched = False
        if getattr(self, "registered", False):
            self.hub.discard(self)
            self.registered = False
        if getattr(self, "writer", None) is not None:
            self.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.writer

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if text_data is None or len(text_data) > MAX_MESSAGE_CHARS:
            await self._error("malformed", "messages must be JSON objects sent as text")
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            await self._error("malformed", "messages must be JSON objects")
            return
        if not isinstance(message, dict):
            await self._error("malformed", "messages must be JSON objects")
            return
        action = message.get("action")
        if action == "ping":
            await self._send_event(events.PONG, {})
        elif action == "subscribe":
            symbols = message.get("symbols")
            if (
                not isinstance(symbols, list)
                or not all(isinstance(s, str) and 0 < len(s) <= 16 for s in symbols)
                or (len(symbols) > MAX_SUBSCRIBED_SYMBOLS)
            ):
                await self._error("invalid_symbols", "symbols must be a list of ticker strings")
                return
            self.symbols = frozenset(s.upper() for s in symbols) or None
            await self._send_event(
                events.STATUS,
                {"subscribed": sorted(self.symbols or []), "all_symbols": self.symbols is None},
            )
        else:
            await self._error("unknown_action", f"unknown action {str(action)[:50]!r}")

    # --- called by the hub, synchronously, once per event: keep it cheap --------------------

    def deliver(self, batch: Batch) -> None:
        if self.raw is not None:
            count, frames = batch.frames(self.symbols)
            if count and not self.raw.write(frames):
                self.skipped += count  # the client sees a seq gap and re-fetches
            return
        for text in batch.texts(self.symbols):
            try:
                self.outbox.put_nowait(text)
            except asyncio.QueueFull:
                self.skipped += 1

    def notify(self, type_: str, payload: dict) -> None:
        """A direct (seq 0) frame from the hub, e.g. that the stream is down."""
        text = events.dumps(events.envelope(type_, payload, 0)).encode()
        self.deliver(Batch([(type_, "", text)]))

    def restart(self) -> None:
        asyncio.ensure_future(self.close(code=CLOSE_SERVICE_RESTART))

    def revoke(self) -> None:
        """Called by streaming.watch: the key was revoked or the user deactivated."""
        self.watched = False
        asyncio.ensure_future(self.close(code=CLOSE_UNAUTHORIZED))

    # ------------------------------------------------------------------------------------------

    async def _write_outbox(self) -> None:
        while True:
            text = await self.outbox.get()
            await self.send(text_data=text.decode())

    async def _send_event(self, type_: str, payload: dict) -> None:
        # Direct replies are not part of any broadcast sequence: seq 0.
        await self.send(text_data=events.dumps(events.envelope(type_, payload, 0)))

    async def _error(self, code: str, message: str) -> None:
        await self._send_event(events.ERROR, {"code": code, "message": message})
