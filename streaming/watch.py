"""Open WebSockets are re-checked: a revoked key or a deactivated user loses its sockets.

A socket is authenticated once, when it opens; without this it would stream until the client
left. Every WEBSOCKET_RECHECK_SECONDS (5) each process asks the database, in one query per kind,
whether the principals of its open sockets are still allowed (key not revoked or expired, owner
or user active), and closes the others with 4401: a revocation or deactivation reaches every
open socket within that interval (plus the query).

Also here: at most WEBSOCKET_MAX_CONNECTIONS_PER_PRINCIPAL sockets per key or user in one
process; the next one is closed with 4429 (one token used to serve unlimited connections).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import Counter
from typing import Any, Protocol

from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model

logger = logging.getLogger(__name__)

CLOSE_UNAUTHORIZED = 4401
CLOSE_TOO_MANY_CONNECTIONS = 4429

Principal = tuple[str, Any]


class Watched(Protocol):
    def revoke(self) -> None: ...


@database_sync_to_async
def principals_allowed(principals: set[Principal]) -> set[Principal]:
    from streaming.auth import key_usable
    from trading.models import ApiKey

    key_ids = [value for kind, value in principals if kind == "key"]
    user_ids = [value for kind, value in principals if kind == "user"]
    allowed: set[Principal] = set()
    if key_ids:
        keys = ApiKey.objects.select_related("owner").filter(id__in=key_ids)
        allowed.update(("key", key.id) for key in keys if key_usable(key))
    if user_ids:
        active = get_user_model().objects.filter(pk__in=user_ids, is_active=True)
        allowed.update(("user", pk) for pk in active.values_list("pk", flat=True))
    return allowed


class Watch:
    """The open sockets of one event loop (one daphne process), by principal."""

    def __init__(self) -> None:
        self.clients: dict[Watched, Principal] = {}
        self._task: asyncio.Task | None = None

    def add(self, client: Watched, principal: Principal | None) -> bool:
        """Register a socket; False if its principal already has the most it may."""
        if principal is None:
            return True  # nothing to re-check (not reachable: only authenticated sockets join)
        limit = settings.WEBSOCKET_MAX_CONNECTIONS_PER_PRINCIPAL
        if limit and Counter(self.clients.values())[principal] >= limit:
            return False
        self.clients[client] = principal
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())
        return True

    def discard(self, client: Watched) -> None:
        self.clients.pop(client, None)
        if not self.clients and self._task is not None:
            self._task.cancel()
            self._task = None

    async def recheck(self) -> int:
        """Close the sockets whose principal is no longer allowed; returns how many."""
        principals = set(self.clients.values())
        if not principals:
            return 0
        allowed = await principals_allowed(principals)
        closed = 0
        for client, principal in list(self.clients.items()):
            if principal not in allowed:
                self.clients.pop(client, None)
                client.revoke()
                closed += 1
        if closed:
            logger.info("closed %d WebSocket(s) of revoked keys or inactive users", closed)
        return closed

    async def _run(self) -> None:
        while self.clients:
            await asyncio.sleep(settings.WEBSOCKET_RECHECK_SECONDS)
            try:
                await self.recheck()
            except Exception:  # noqa: BLE001 - a database hiccup: try again next interval
                logger.warning("WebSocket re-check failed; retrying", exc_info=True)


_watches: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Watch] = weakref.WeakKeyDictionary()


def watch() -> Watch:
    loop = asyncio.get_running_loop()
    found = _watches.get(loop)
    if found is None:
        found = _watches[loop] = Watch()
    return found
