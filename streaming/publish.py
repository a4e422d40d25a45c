"""`publish(type, payload)`: the one way every producer sends an event to /ws/updates clients.

The event leaves after the surrounding transaction commits, so no client sees data that was
rolled back. It is serialized once, here, and fanned out by the channel layer. A Redis outage
is logged and the event dropped: clients re-fetch the REST snapshot when they see a `seq` gap.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from streaming import events, groups
from streaming.redis import next_seq

logger = logging.getLogger(__name__)


def publish(type_: str, payload: dict[str, Any]) -> None:
    if type_ not in events.TYPES:
        raise ValueError(f"unknown event type {type_!r}")
    transaction.on_commit(lambda: send_now(type_, payload))


def send_now(type_: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    """Send immediately (outside any transaction); returns the envelope, or None if it failed."""
    try:
        message = events.envelope(type_, payload, next_seq())
        text = events.dumps(message)
        async_to_sync(get_channel_layer().group_send)(
            groups.UPDATES,
            {
                "type": "stream.event",
                "event_type": type_,
                "symbol": payload.get("symbol"),
                "text": text,
            },
        )
        return message
    except Exception:  # noqa: BLE001 - any Redis/layer failure must not break the caller
        logger.warning("could not publish %s event", type_, exc_info=True)
        return None
