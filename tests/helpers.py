"""Helpers the tests share (fixtures live in conftest.py). Import them, never copy them."""

from __future__ import annotations

from channels.db import database_sync_to_async


def submit(client, **body):
    """POST /api/v1/orders/submit: a market buy of 1 SPY unless `body` says otherwise."""
    return client.post(
        "/api/v1/orders/submit", {"symbol": "SPY", "side": "buy", "qty": "1", **body}, format="json"
    )


@database_sync_to_async
def ws_token() -> str:
    """A /ws/updates token bound to a new read key."""
    from streaming.tokens import token_issue
    from trading.models import ApiKey

    key, _raw = ApiKey.objects.create_key(name="ws", scope="read")
    return token_issue(key_id=key.id, user_id=None).token
