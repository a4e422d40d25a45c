"""Thin tasks on the `notifications` queue (a worker of its own: `notify` in the Procfile), and
the inbox drainer that worker runs."""

from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown

logger = logging.getLogger(__name__)


def _deliver_later(delivery_id: int, delay: float | None) -> None:
    if delay is None:
        deliver.apply_async(args=[delivery_id], queue="notifications")
    else:
        deliver.apply_async(args=[delivery_id], countdown=delay, queue="notifications")


def attempt(delivery_id: int) -> None:
    """One attempt; the next one, when there is one, is a `deliver` task due after its delay."""
    from notifications.services import delivery_attempt

    try:
        delay = delivery_attempt(delivery_id=delivery_id)
    except Exception:  # noqa: BLE001 - Redis or the database failed mid-attempt
        from django.conf import settings

        logger.exception("delivery %s: attempt failed; trying again after its lease", delivery_id)
        # The claim's lease may still be held: come back once it has run out.
        delay = settings.NOTIFICATIONS_TIMEOUT_SECONDS + 31
    if delay is not None:
        _deliver_later(delivery_id, delay)


@shared_task(name="notifications.deliver", ignore_result=True)
def deliver(delivery_id: int) -> None:
    """A retry (or a delivery the sweep found overdue): `attempt`."""
    attempt(delivery_id)


@shared_task(name="notifications.sweep", ignore_result=True)
def sweep() -> None:
    from notifications.services import deliveries_overdue

    for delivery_id in deliveries_overdue():
        _deliver_later(delivery_id, None)


@shared_task(name="notifications.daily_summary", ignore_result=True)
def daily_summary() -> None:
    from notifications.services import daily_summary_send

    daily_summary_send()


@worker_ready.connect
def _on_worker_ready(sender=None, **kwargs) -> None:
    """In a worker consuming the `notifications` queue: drain the inbox (one drainer in the
    cluster at a time, by lease) and sync the environment's quick-start channels, also where
    `bootstrap` is not run."""
    from django.core.exceptions import ImproperlyConfigured

    from notifications import inbox
    from notifications.services import channels_sync_from_env

    queues = {q.name for q in getattr(getattr(sender, "task_consumer", None), "queues", [])}
    if "notifications" not in queues:
        return
    inbox.start_drainer()
    worker_shutdown.connect(_on_worker_shutdown, weak=False)

    try:
        channels_sync_from_env()
    except ImproperlyConfigured as exc:
        logger.error("notification channels from the environment: %s", exc)


def _on_worker_shutdown(**_kwargs) -> None:
    """Stop draining and let the senders finish what they are sending (no more)."""
    from notifications import inbox

    inbox.stop_drainer()
