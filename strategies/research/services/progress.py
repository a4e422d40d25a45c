"""A run's progress: the payload the `research_progress` stream event carries, published on
every status change, and the reporter a running run writes its progress through."""

from __future__ import annotations

import time
from typing import Any

from strategies.research.models import ResearchRun

PROGRESS_EVERY_SECONDS = 0.5
CANCEL_POLL_SECONDS = 0.5


def progress_payload(run: ResearchRun) -> dict[str, Any]:
    return {
        "id": run.pk,
        "kind": run.kind,
        "status": run.status,
        "progress": round(float(run.progress), 4),
        "message": run.message,
        "plugin": run.plugin,
    }


def publish_progress(run: ResearchRun) -> None:
    from streaming.events import RESEARCH_PROGRESS
    from streaming.publish import publish

    publish(RESEARCH_PROGRESS, progress_payload(run))


class Reporter:
    """Progress written to the row and published, at most every PROGRESS_EVERY_SECONDS; the
    cancel flag read back at the same pace."""

    def __init__(self, run: ResearchRun, on_progress: Any = None) -> None:
        self.run = run
        self.last = 0.0
        self.last_poll = 0.0
        self.canceled = False
        self.on_progress = on_progress

    def __call__(self, fraction: float, message: str = "") -> None:
        fraction = max(0.0, min(1.0, fraction))
        if self.on_progress:
            self.on_progress(fraction, message)
        now = time.monotonic()
        if now - self.last < PROGRESS_EVERY_SECONDS and fraction < 1.0:
            return
        self.last = now
        self.run.progress = fraction
        self.run.message = message[:200]
        ResearchRun.objects.filter(pk=self.run.pk).update(
            progress=fraction, message=self.run.message
        )
        self.canceled = ResearchRun.objects.filter(pk=self.run.pk, cancel_requested=True).exists()
        from streaming.events import RESEARCH_PROGRESS
        from streaming.publish import send_now

        send_now(RESEARCH_PROGRESS, progress_payload(self.run))

    def should_cancel(self) -> bool:
        now = time.monotonic()
        if not self.canceled and now - self.last_poll >= CANCEL_POLL_SECONDS:
            self.last_poll = now
            self.canceled = ResearchRun.objects.filter(
                pk=self.run.pk, cancel_requested=True
            ).exists()
        return self.canceled


def send_progress(run: ResearchRun) -> None:
    from streaming.events import RESEARCH_PROGRESS
    from streaming.publish import send_now

    send_now(RESEARCH_PROGRESS, progress_payload(run))
