"""The subscriber `streaming.publish` calls with each committed batch of events."""

from __future__ import annotations

from collections import OrderedDict
from threading import Lock
from typing import Any

from django.conf import settings

from notifications.events import from_stream

# Ids this process enqueued lately: the `status` event is republished on every state change,
# and its kill-switch or session notice should cost one task, not one per republish. The
# delivery's unique (event id, channel) is what guarantees once; this only saves work.
_recent: OrderedDict[str, None] = OrderedDict()
_lock = Lock()
_RECENT_MAX = 4096


def _first_time(notice_id: str) -> bool:
    with _lock:
        if notice_id in _recent:
            return False
        _recent[notice_id] = None
        if len(_recent) > _RECENT_MAX:
            _recent.popitem(last=False)
        return True


def on_events_committed(items: list[tuple[str, dict[str, Any]]]) -> None:
    if not settings.NOTIFICATIONS_ENABLED:
        return
    notices = [n for type_, payload in items for n in from_stream(type_, payload)]
    notices = [n for n in notices if _first_time(n.id)]
    if notices:
        from notifications.services import notices_enqueue

        notices_enqueue(notices)
