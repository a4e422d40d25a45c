"""/ws/updates: authenticate, join the updates group, turn group events into frames."""

from __future__ import annotations

import json
import logging

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from streaming import events, groups

logger = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
MAX_SUBSCRIBED_SYMBOLS = 200


@database_sync_to_async
def _status_snapshot() -> dict:
    from trading.selectors import status_get

    return status_get()


class UpdatesConsumer(AsyncWebsocketConsumer):
    symbols: frozenset[str] | None = None  # None: every symbol

    async def connect(self) -> None:
        # Accept first, so the close code (4401) reaches the client instead of an HTTP 403.
        await self.accept()
        if not groups.can_join_updates(self.scope):
            await self.close(code=CLOSE_UNAUTHORIZED)
            return
        self.joined = True
        await self.channel_layer.group_add(groups.UPDATES, self.channel_name)
        await self._send_event(events.STATUS, await _status_snapshot())

    async def disconnect(self, code: int) -> None:
        if getattr(self, "joined", False):
            await self.channel_layer.group_discard(groups.UPDATES, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        try:
            message = json.loads(text_data or "")
        except (json.JSONDecodeError, TypeError):
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
                or not all(isinstance(s, str) for s in symbols)
                or (len(symbols) > MAX_SUBSCRIBED_SYMBOLS)
            ):
                await self._error("invalid_symbols", "symbols must be a list of strings")
                return
            self.symbols = frozenset(s.upper() for s in symbols) or None
            await self._send_event(
                events.STATUS,
                {"subscribed": sorted(self.symbols or []), "all_symbols": self.symbols is None},
            )
        else:
            await self._error("unknown_action", f"unknown action {action!r}")

    async def stream_event(self, event: dict) -> None:
        if (
            event["event_type"] == events.MARKET_DATA
            and self.symbols is not None
            and event.get("symbol") not in self.symbols
        ):
            return
        await self.send(text_data=event["text"])

    async def _send_event(self, type_: str, payload: dict) -> None:
        # Direct replies are not part of the broadcast sequence: seq 0.
        await self.send(text_data=events.dumps(events.envelope(type_, payload, 0)))

    async def _error(self, code: str, message: str) -> None:
        await self._send_event(events.ERROR, {"code": code, "message": message})
