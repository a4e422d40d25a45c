from __future__ import annotations

from celery import shared_task


@shared_task(name="trading.order_resubmit", max_retries=None)
def order_resubmit(order_id: str) -> str:
    from trading.services import order_resubmit as resubmit

    return resubmit(order_id=order_id).status


@shared_task(name="trading.reconcile")
def reconcile() -> dict:
    from trading.services import reconcile as run

    return run(by="celery").as_dict()
