from __future__ import annotations

from django.db import models


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

    def __str__(self) -> str:
        return f"{self.symbol} {self.timeframe} {self.timestamp:%Y-%m-%d %H:%M} {self.close}"
