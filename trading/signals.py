"""Reconcile with the broker when a Celery worker starts (after a crash or a deploy)."""

from __future__ import annotations

import logging

from celery.signals import worker_ready
from django.conf import settings

logger = logging.getLogger(__name__)


@worker_ready.connect
def reconcile_on_worker_start(**kwargs) -> None:
    if not settings.RECONCILE_ON_WORKER_START:
        return
    from trading.services import reconcile

    try:
        report = reconcile(by="worker start")
    except Exception:  # noqa: BLE001 - a broker outage must not keep the worker from starting
        logger.exception("reconciliation on worker start failed")
        return
    logger.info("reconciliation on worker start: %s", report.as_dict())
