from __future__ import annotations

from streaming import events
from streaming.publish import send_now


def snapshot_publish() -> None:
    """The periodic status + performance snapshot: computed once here, for every client."""
    from trading.selectors import performance_get, status_get

    send_now(events.STATUS, status_get())
    send_now(events.PERFORMANCE_UPDATE, performance_get())
