from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready

logger = logging.getLogger(__name__)


@shared_task(name="research.execute", bind=True, acks_late=False)
def execute_run(self, run_id: int) -> str | None:
    """Runs on the `research` queue only (the Procfile's `research` worker)."""
    from strategies.research.services import run_execute

    run = run_execute(run_id=run_id, worker=self.request.hostname or "")
    return run.status if run else None


@worker_ready.connect
def fail_interrupted_runs(sender=None, **kwargs) -> None:
    from strategies.research.services import runs_interrupted_fail

    hostname = getattr(sender, "hostname", "") or ""
    try:
        failed = runs_interrupted_fail(worker=hostname)
    except Exception:  # noqa: BLE001 - never keep a worker from starting
        logger.exception("marking interrupted research runs failed")
        return
    if failed:
        logger.warning("%d research run(s) interrupted on %s marked failed", failed, hostname)
