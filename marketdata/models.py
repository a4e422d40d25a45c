from __future__ import annotations

import re

from django.db import models

# What a ticker looks like everywhere a symbol comes in (API, strategies, commands): BRK.B, BF-B.
SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-]{0,15}$")


class Timeframe(models.TextChoices):
    MIN5 = "5Min"
    MIN15 = "15Min"
    HOUR1 = "1Hour"
    DAY1 = "1Day"


class Bar(models.Model):
    """One OHLCV bar; `timestamp` is the bar's start, UTC."""

    symbol = models.CharField(max_length=16)
    timeframe = models.CharField(max_length=8, choices=Timeframe.choices, default=Timeframe.MIN5)
    timestamp = models.DateTimeField()
    open = models.DecimalField(max_digits=20, decimal_places=6)
    high = models.DecimalField(max_digits=20, decimal_places=6)
    low = models.DecimalField(max_digits=20, decimal_places=6)
    close = models.DecimalField(max_digits=20, decimal_places=6)
    volume = models.BigIntegerField(default=0)
    source = models.CharField(max_length=16, default="synthetic")
    collected_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol", "timestamp"]
        constraints = [
            models.UniqueConstraint(
                fields=["symbol", "timeframe", "timestamp"], name="one_bar_per_symbol_time"
            )
        ]
        # The unique constraint's index already serves "last N days of one symbol"
        # (symbol, timeframe equality, timestamp range, scanned backwards).
        indexes = [
            # The newest bar of any symbol (the simulated market clock, read on every order)
            # and the last arrival (status, health): without these, a table scan each time,
            # ~20 ms at a year of bars.
            models.Index(fields=["timeframe", "timestamp"], name="bar_timeframe_timestamp"),
            models.Index(fields=["collected_at"], name="bar_collected_at"),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.timeframe} {self.timestamp:%Y-%m-%d %H:%M} {self.close}"


class ProviderBreaker(models.Model):
    """Circuit-breaker state of one market-data provider, kept in the database so a restarted
    worker keeps it and a Redis outage does not lose it."""

    provider = models.CharField(max_length=200, unique=True)
    failures = models.PositiveIntegerField(default=0)  # consecutive failed calls
    opens = models.PositiveIntegerField(default=0)  # consecutive times opened: grows the cooldown
    opened_until = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_failure_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.provider} failures={self.failures} open_until={self.opened_until}"


class SymbolFeed(models.Model):
    """When the provider last answered for a symbol: the basis of `age_seconds` and `stale`."""

    symbol = models.CharField(max_length=16, unique=True)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    def __str__(self) -> str:
        return f"{self.symbol} ok={self.last_success_at} error={self.last_error[:40]}"
