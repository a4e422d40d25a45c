from __future__ import annotations

from celery import shared_task


@shared_task(name="strategies.run")
def run_strategies() -> dict:
    from strategies.services import strategies_run_enabled

    return strategies_run_enabled()
