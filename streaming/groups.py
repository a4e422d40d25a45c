"""Channel-layer group names, each beside the check that lets a connection join it."""

from __future__ import annotations

from typing import Any

# Every authenticated /ws/updates client: all events, market_data filtered per client.
UPDATES = "updates"


def can_join_updates(scope: dict[str, Any]) -> bool:
    user = scope.get("user")
    return bool(user is not None and user.is_authenticated)
