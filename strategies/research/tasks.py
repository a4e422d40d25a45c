from __future__ import annotations

import logging
import threading

from celery import shared_task
from celery.signals import worker_ready

logger = logging.getLogger(__name__)


# One run at a time per process. Where the worker also serves trading tasks (`make run`'s one
# threaded worker takes the research queue too), a second run goes back to the queue for a few
# seconds instead of holding one of the threads that collection and orders need.
_ONE_RUN = threading.Semaphore(1)
BUSY_RETRY_SECONDS = 3


@shared_task(name="research.execute", bind=True, acks_late=False, max_retries=None)
def execute_run(self, run_id: int) -> str | None:
    """Runs on the `research` queue (the Procfile's `research` worker, or make run's worker)."""
    from strategies.research.services import run_execute

    if not _ONE_RUN.acquire(blocking=False):
        raise self.retry(countdown=BUSY_RETRY_SECONDS)
    try:
        run = run_execute(run_id=run_id, worker=self.request.hostname or "")
    finally:
        _ONE_RUN.release()
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
