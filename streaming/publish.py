"""`publish(type, payload)`: the one way every producer sends an event to /ws/updates clients.

The event leaves after the surrounding transaction commits, so no client sees data that was
rolled back. It is serialized once, here, and published once on a Redis pub/sub channel; every
web process fans it out to its own clients (streaming.fanout). A Redis outage is logged and the
event dropped: clients re-fetch the REST snapshot when they see a `seq` gap or reconnect.

Sequence numbers are per stream: `market_data` has one stream per symbol (a client subscribed
to some symbols must not see gaps for the others), every other type shares the `events` stream.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

from streaming import events
from streaming.redis import publish_many_with_seq
from tradingrobot import redis_outage

logger = logging.getLogger(__name__)

# Wire format on the pub/sub channel: one message per publish call, holding its events in order,
# each as two lines: b"<type> <symbol>" and the JSON envelope (compact JSON never holds a raw
# newline). Web processes route and filter by the header without parsing JSON, and write one
# call's events (a fill's three, a market-data tick's quotes) to each client in one send.
LINE_END = b"\n"


def wire_split(data: bytes) -> list[tuple[str, str, bytes]]:
    """The `(type, symbol, envelope JSON)` of each event in one pub/sub message."""
    lines = data.split(LINE_END)
    found = []
    for head, text in zip(lines[0::2], lines[1::2], strict=False):
        type_, _, symbol = head.decode("utf-8", "replace").partition(" ")
        found.append((type_, symbol, text))
    return found


# Called with each committed batch of events, after it is sent (notifications subscribes here).
_subscribers: list[Callable[[list[tuple[str, dict[str, Any]]]], None]] = []


def subscribe(callback: Callable[[list[tuple[str, dict[str, Any]]]], None]) -> None:
    if callback not in _subscribers:
        _subscribers.append(callback)


def stream_of(type_: str, payload: dict[str, Any]) -> str:
    if type_ == events.MARKET_DATA:
        return f"market_data:{payload.get('symbol') or ''}"
    return "events"


def publish(type_: str, payload: dict[str, Any]) -> None:
    publish_many([(type_, payload)])


def publish_many(items: list[tuple[str, dict[str, Any]]]) -> None:
    """Publish several events, in this order, after the surrounding transaction commits."""
    _check_types(items)  # now, in the caller, not later in a commit hook
    transaction.on_commit(lambda: _after_commit(items))


def _after_commit(items: list[tuple[str, dict[str, Any]]]) -> None:
    send_many_now(items)
    for callback in _subscribers:
        try:
            callback(items)
        except Exception:  # noqa: BLE001 - a subscriber must never break the producer
            logger.warning("event subscriber %s failed", callback, exc_info=True)


def send_now(type_: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """Send immediately (outside any transaction); returns the envelope, or None if it failed."""
    return send_many_now([(type_, payload)])[0]


def send_many_now(items: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any] | None]:
    """Send events immediately, in one Redis round trip; returns their envelopes (None if
    sending failed)."""
    _check_types(items)
    try:
        messages, wire = [], []
        for type_, payload in items:
            message = events.envelope(type_, payload, 0)
            text = events.dumps(message)
            # `seq` is the envelope's last key: Redis splices the number in between head and tail.
            cut = text.rindex('"seq":') + len('"seq":')
            symbol = str(payload.get("symbol") or "") if type_ == events.MARKET_DATA else ""
            symbol = "".join(symbol.split())  # the header is one line
            head = f"{type_} {symbol}".encode() + LINE_END + text[:cut].encode()
            tail = text[cut:].removeprefix("0").encode() + LINE_END
            messages.append(message)
            wire.append((stream_of(type_, payload), head, tail))
        for message, seq in zip(messages, publish_many_with_seq(wire), strict=True):
            message["seq"] = seq
    except Exception as exc:  # noqa: BLE001 - any Redis failure must not break the caller
        redis_outage.failure("event publish", exc)
        return [None] * len(items)
    redis_outage.recovered()
    return messages


def _check_types(items: list[tuple[str, dict[str, Any]]]) -> None:
    for type_, _payload in items:
        if type_ not in events.TYPES:
            raise ValueError(f"unknown event type {type_!r}")
