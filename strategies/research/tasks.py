from __future__ import annotations

from celery import shared_task


@shared_task(name="research.execute", acks_late=False)
def execute_run(run_id: int) -> str | None:
    """Runs on the `research` queue only (the Procfile's `research` worker)."""
    from strategies.research.services import run_execute

    run = run_execute(run_id=run_id)
    return run.status if run else None
