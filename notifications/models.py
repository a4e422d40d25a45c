"""Where notifications go (Channel) and what happened to each one (Delivery)."""

from __future__ import annotations

from django.db import models


class ChannelKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook (signed JSON)"
    SLACK = "slack", "Slack incoming webhook"
    DISCORD = "discord", "Discord webhook"
    TELEGRAM = "telegram", "Telegram bot"
    EMAIL = "email", "Email"


class Severity(models.TextChoices):
    INFO = "info", "info"
    WARNING = "warning", "warning"
    CRITICAL = "critical", "critical"


SEVERITY_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


class Channel(models.Model):
    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=16, choices=ChannelKind.choices)
    target = models.CharField(
        max_length=1000,
        help_text="webhook/Slack/Discord: the URL; Telegram: the chat id; email: addresses, "
        "comma-separated",
    )
    secret = models.CharField(
        max_length=500,
        blank=True,
        help_text="webhook: the HMAC signing secret; Telegram: the bot token. Never shown again.",
    )
    enabled = models.BooleanField(default=True)
    events = models.JSONField(
        default=list,
        blank=True,
        help_text='event kinds to send, e.g. ["order.filled", "kill_switch.engaged"]; '
        "empty means all",
    )
    min_severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.INFO)
    quiet_start = models.TimeField(
        null=True, blank=True, help_text="quiet hours start (only critical events are sent)"
    )
    quiet_end = models.TimeField(null=True, blank=True)
    timezone = models.CharField(
        max_length=64, default="America/New_York", help_text="timezone of the quiet hours"
    )
    from_env = models.CharField(
        max_length=64, blank=True, editable=False, help_text="environment variable it came from"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    def __repr__(self) -> str:  # never the secret or the target (Slack/Discord URLs hold tokens)
        return f"<Channel {self.pk} {self.kind} {self.name!r}>"

    def clean(self) -> None:
        from notifications.services import channel_validate

        channel_validate(
            kind=self.kind,
            target=self.target,
            secret=self.secret,
            events=self.events,
            timezone_name=self.timezone,
        )


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "pending"
    RETRY = "retry", "waiting to retry"
    DELIVERED = "delivered", "delivered"
    FAILED = "failed", "failed"
    SKIPPED = "skipped", "skipped (quiet hours)"


class Delivery(models.Model):
    """One event to one channel. Unique on (event_id, channel): an event reaches a channel once,
    however often it is published or retried."""

    event_id = models.CharField(max_length=200)
    kind = models.CharField(max_length=40)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    notice = models.JSONField()
    status = models.CharField(
        max_length=10, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    next_attempt_at = models.DateTimeField(db_index=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.UniqueConstraint(fields=["event_id", "channel"], name="delivery_once")
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"{self.event_id} -> {self.channel_id}"

    @property
    def idempotency_key(self) -> str:
        return f"{self.event_id}#{self.channel_id}"
