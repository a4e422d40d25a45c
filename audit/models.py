"""The audit log: one row per state change a person, key, strategy or the system made.

Append-only in the application: an entry is inserted once and never updated or deleted
(`save()` of an existing entry, `delete()`, and QuerySet `update()`/`delete()` through the
default manager raise). Deleting a user or an API key only clears the foreign key (SET_NULL,
done by Django's collector on the base manager); `actor` keeps the name.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class AuditLogIsAppendOnly(RuntimeError):
    """Raised on any attempt to change or remove an audit entry."""


class Via(models.TextChoices):
    API = "api", "API key"
    ADMIN = "admin", "Admin"
    DASHBOARD = "dashboard", "Dashboard"
    WORDPRESS = "wordpress", "WordPress"
    STRATEGY = "strategy", "Strategy"
    TELEGRAM = "telegram", "Telegram"
    SYSTEM = "system", "System"


class Outcome(models.TextChoices):
    OK = "ok", "OK"
    REFUSED = "refused", "Refused"
    ERROR = "error", "Error"


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AuditLogIsAppendOnly("audit entries cannot be updated")

    def bulk_update(self, objs, fields, batch_size=None):
        raise AuditLogIsAppendOnly("audit entries cannot be updated")

    def delete(self):
        raise AuditLogIsAppendOnly("audit entries cannot be deleted")

    delete.queryset_only = True


class AuditEntry(models.Model):
    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.CharField(
        max_length=150, help_text='A username, "key:<key name>", a strategy config or "system".'
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    api_key = models.ForeignKey(
        "trading.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    via = models.CharField(max_length=16, choices=Via.choices)
    action = models.CharField(max_length=64, db_index=True, help_text="e.g. order.submit")
    target = models.CharField(max_length=200, blank=True, help_text="e.g. an order's id")
    details = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.OK)
    code = models.CharField(max_length=64, blank=True, help_text="e.g. trading_halted")

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.outcome}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AuditLogIsAppendOnly("audit entries cannot be updated")
        kwargs["force_insert"] = True
        kwargs.pop("force_update", None)
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AuditLogIsAppendOnly("audit entries cannot be deleted")
