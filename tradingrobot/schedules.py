"""Every periodic job, defined here once and kept in django-celery-beat's tables (editable in
admin). `schedules_ensure()` creates missing ones; an explicit COLLECT_INTERVAL_SECONDS in the
environment also resets the collection interval."""

from __future__ import annotations

import json
import os

from django.conf import settings
from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

SNAPSHOT_INTERVAL_SECONDS = 5


def _interval(seconds: int) -> IntervalSchedule:
    schedule, _ = IntervalSchedule.objects.get_or_create(
        every=seconds, period=IntervalSchedule.SECONDS
    )
    return schedule


def schedules_ensure() -> None:
    jobs = [
        (
            "Collect market data",
            "marketdata.collect",
            settings.COLLECT_INTERVAL_SECONDS,
            "COLLECT_INTERVAL_SECONDS" in os.environ,
        ),
        ("Stream status snapshot", "streaming.snapshot", SNAPSHOT_INTERVAL_SECONDS, False),
        ("Retry overdue notifications", "notifications.sweep", 30, False),
        # The fallback for a broker that streams its order updates: a no-op while it is live.
        (
            "Poll open orders while the broker stream is down",
            "trading.orders_poll",
            settings.STREAM_POLL_SECONDS,
            "STREAM_POLL_SECONDS" in os.environ,
        ),
        # An order a crashed web worker left pending_submit is settled by the first reconcile
        # after its send lease: within ORDER_SEND_LEASE_SECONDS + this interval.
        (
            "Reconcile with the broker",
            "trading.reconcile",
            settings.RECONCILE_INTERVAL_SECONDS,
            "RECONCILE_INTERVAL_SECONDS" in os.environ,
        ),
    ]
    for name, task, seconds, force in jobs:
        job, created = PeriodicTask.objects.get_or_create(
            name=name,
            defaults={"task": task, "interval": _interval(seconds), "args": json.dumps([])},
        )
        if not created and force and job.interval and job.interval.every != seconds:
            job.interval = _interval(seconds)
            job.save(update_fields=["interval"])
    # After the NYSE close (early closes are earlier still), New York time, weekdays.
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="15",
        hour="16",
        day_of_week="1-5",
        day_of_month="*",
        month_of_year="*",
        timezone="America/New_York",
    )
    PeriodicTask.objects.get_or_create(
        name="Daily summary notification",
        defaults={"task": "notifications.daily_summary", "crontab": crontab, "args": "[]"},
    )
