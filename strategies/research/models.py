"""Persisted research runs: backtests, grid searches and walk-forwards executed by Celery."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class RunKind(models.TextChoices):
    BACKTEST = "backtest"
    OPTIMIZE = "optimize"
    WALK_FORWARD = "walk_forward"


class RunStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"


ACTIVE_STATUSES = (RunStatus.QUEUED, RunStatus.RUNNING)


class ResearchRun(models.Model):
    kind = models.CharField(max_length=16, choices=RunKind.choices)
    status = models.CharField(
        max_length=10, choices=RunStatus.choices, default=RunStatus.QUEUED, db_index=True
    )
    config = models.ForeignKey(
        "strategies.StrategyConfig",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="research_runs",
    )
    plugin = models.CharField(max_length=100)
    # Who asked: a dashboard/admin user, an API key, or neither (a management command).
    requested_by_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by_key = models.ForeignKey(
        "trading.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    requested_by = models.CharField(max_length=200, help_text="who asked, as shown")
    inputs = models.JSONField(default=dict)
    progress = models.FloatField(default=0.0, help_text="0 to 1")
    message = models.CharField(max_length=200, blank=True)
    cancel_requested = models.BooleanField(default=False)
    worker = models.CharField(max_length=200, blank=True, help_text="the worker running it")
    error = models.TextField(blank=True)
    result = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} #{self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
