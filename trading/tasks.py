"""Thin tasks: each takes ids, calls one service, and owns its retry policy."""

from __future__ import annotations

from celery import shared_task

from trading.exceptions import BrokerUnavailable


@shared_task(
    name="trading.order_resubmit",
    # The broker could not be reached: try again with exponential backoff (2 s doubling, capped
    # at a minute, full jitter), ten times: about ORDER_SUBMIT_MAX_AGE_SECONDS' five minutes.
    # An order still pending_submit after that is reconciliation's (retried or rejected).
    autoretry_for=(BrokerUnavailable,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=10,
)
def order_resubmit(order_id: str) -> str:
    from trading.services import order_resubmit as resubmit

    return resubmit(order_id=order_id).status


@shared_task(name="trading.reconcile")
def reconcile() -> dict:
    from trading.services import reconcile as run

    return run(by="celery").as_dict()


@shared_task(name="trading.orders_poll")
def orders_poll() -> dict | None:
    """Beat, every STREAM_POLL_SECONDS: open orders over REST while the broker's stream is down."""
    from trading.services import orders_poll as poll

    report = poll()
    return report.as_dict() if report is not None else None
