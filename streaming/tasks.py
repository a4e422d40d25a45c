from __future__ import annotations

from celery import shared_task


@shared_task(name="streaming.snapshot")
def publish_snapshot() -> None:
    """The periodic status + performance snapshot, computed once for every client."""
    from streaming.services import snapshot_publish

    snapshot_publish()
