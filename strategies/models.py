from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import models


class StrategyConfig(models.Model):
    """A strategy plugin put to work: which symbols, which params, how much of the equity."""

    name = models.CharField(max_length=100, unique=True)
    plugin = models.CharField(max_length=100, help_text="The strategy plugin's unique name.")
    symbols = models.JSONField(default=list, help_text='e.g. ["SPY", "QQQ"]')
    params = models.JSONField(default=dict, blank=True)
    allocation = models.DecimalField(
        max_digits=6,
        decimal_places=4,
        default=Decimal("0.25"),
        help_text="Fraction of equity this config may use, split evenly over its symbols.",
    )
    timeframe = models.CharField(
        max_length=8,
        default="5Min",
        choices=[("5Min", "5 minutes")],
        help_text="Bar timeframe; only 5-minute bars are collected today.",
    )
    enabled = models.BooleanField(default=False)
    last_run_at = models.DateTimeField(null=True, blank=True)
    last_signal = models.JSONField(default=dict, blank=True)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from strategies.exceptions import InvalidStrategyConfig
        from strategies.validation import strategy_config_validate

        try:
            self.params = strategy_config_validate(
                plugin=self.plugin,
                symbols=self.symbols,
                params=self.params,
                allocation=self.allocation,
                timeframe=self.timeframe,
            )
        except InvalidStrategyConfig as exc:
            # Attach the error to its form field (params errors name the parameter).
            field = exc.field.split(".", 1)[0]
            if field in {"plugin", "symbols", "params", "allocation", "timeframe"}:
                raise ValidationError({field: exc.message}) from exc
            raise ValidationError(exc.message) from exc
