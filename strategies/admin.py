"""StrategyConfig admin: validated params, run now / backtest / enable / disable, plugin errors.

Thin: every action calls a service in strategies.services and renders its result.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse

from strategies import registry, services
from strategies.models import StrategyConfig
from trading.exceptions import DomainError
from trading.permissions import TradeActionsAdmin, trade_action, user_can_trade

CHART_W, CHART_H, CHART_PAD = 760, 240, 8


def equity_svg_points(curve: list[dict]) -> dict:
    """Server-side chart data for the inline SVG: polyline points and the value range."""
    values = [p["equity"] for p in curve if p["equity"] is not None]
    if len(values) < 2:
        return {"points": "", "low": None, "high": None}
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (CHART_W - 2 * CHART_PAD) / (len(values) - 1)
    points = " ".join(
        f"{CHART_PAD + i * step:.1f},"
        f"{CHART_H - CHART_PAD - (v - low) / span * (CHART_H - 2 * CHART_PAD):.1f}"
        for i, v in enumerate(values)
    )
    return {"points": points, "low": low, "high": high}


class StrategyConfigForm(forms.ModelForm):
    class Meta:
        model = StrategyConfig
        fields = ["name", "plugin", "symbols", "params", "allocation", "timeframe", "enabled"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        loaded = sorted(registry.get_registry().strategies)
        choices = [(name, name) for name in loaded]
        current = self.instance.plugin if self.instance and self.instance.pk else None
        if current and current not in loaded:
            choices.append((current, f"{current} (not loaded)"))
        self.fields["plugin"] = forms.ChoiceField(
            choices=choices, help_text="Loaded strategy plugins (see Plugins for load errors)."
        )
        lines = []
        for name in loaded:
            cls = registry.get_strategy(name)
            schema = ", ".join(
                f"{key} ({spec['type']}, default {spec['default']!r})"
                for key, spec in cls.params_schema().items()
            )
            lines.append(f"{name}: {schema}")
        self.fields["params"].help_text = (
            "JSON object; omitted keys take the plugin's defaults. " + " | ".join(lines)
        )


@admin.register(StrategyConfig)
class StrategyConfigAdmin(TradeActionsAdmin, admin.ModelAdmin):
    form = StrategyConfigForm
    list_display = [
        "name",
        "plugin",
        "symbols",
        "enabled",
        "allocation",
        "last_run_at",
        "last_error",
    ]
    list_filter = ["enabled", "plugin"]
    readonly_fields = ["last_run_at", "last_signal", "last_error"]
    actions = ["run_now", "backtest", "enable", "disable"]
    change_list_template = "admin/strategies/strategyconfig/change_list.html"

    def get_urls(self):
        return [
            path(
                "plugins/",
                self.admin_site.admin_view(self.plugins_view),
                name="strategies_strategyconfig_plugins",
            ),
            path(
                "<int:pk>/backtest/",
                self.admin_site.admin_view(self.backtest_view),
                name="strategies_strategyconfig_backtest",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        errors = registry.get_registry().errors
        extra_context = {**(extra_context or {}), "plugin_errors": sorted(errors.items())}
        return super().changelist_view(request, extra_context)

    @trade_action(description="Run now (send orders for the latest bar)")
    def run_now(self, request, queryset):
        for config in queryset:
            try:
                decisions = services.strategy_run_now(config=config)
            except DomainError as exc:
                self.message_user(request, f"{config}: {exc.message}", messages.ERROR)
                continue
            summary = ", ".join(f"{d.symbol}: {d.note}" for d in decisions) or "nothing to do"
            level = messages.WARNING if config.last_error else messages.SUCCESS
            self.message_user(request, f"{config}: {summary}", level)

    @trade_action(description="Backtest (result page)")
    def backtest(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one strategy to backtest.", messages.ERROR)
            return None
        url = reverse("admin:strategies_strategyconfig_backtest", args=[queryset.get().pk])
        return redirect(url)

    @trade_action(description="Enable")
    def enable(self, request, queryset):
        self._set_enabled(request, queryset, True)

    @trade_action(description="Disable")
    def disable(self, request, queryset):
        self._set_enabled(request, queryset, False)

    def _set_enabled(self, request, queryset, enabled: bool) -> None:
        done = 0
        for config in queryset:
            try:
                services.strategy_set_enabled(config=config, enabled=enabled)
                done += 1
            except DomainError as exc:
                self.message_user(request, f"{config}: not enabled: {exc.message}", messages.ERROR)
        if done:
            word = "enabled" if enabled else "disabled"
            self.message_user(request, f"{done} strategy config(s) {word}.", messages.SUCCESS)

    def plugins_view(self, request):
        if request.method == "POST":
            if not user_can_trade(request.user):
                return redirect("admin:index")
            services.strategies_reload()
            self.message_user(request, "Strategy plugins reloaded.", messages.SUCCESS)
            return redirect(request.path)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Strategy plugins",
            "plugins": registry.plugins_describe(),
        }
        return TemplateResponse(request, "admin/strategies/plugins.html", context)

    def backtest_view(self, request, pk: int):
        if not user_can_trade(request.user):
            raise PermissionDenied
        config = get_object_or_404(StrategyConfig, pk=pk)
        try:
            days = int(request.GET.get("days", 30))
        except ValueError:
            days = -1
        result, error = None, None
        try:
            result = services.strategy_backtest_config(config=config, days=days)
        except DomainError as exc:
            error = exc.message
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Backtest: {config}",
            "config": config,
            "days": days,
            "result": result,
            "error": error,
            "metric_rows": _metric_rows(result) if result else [],
            "chart": equity_svg_points(result["equity_curve"]) if result else None,
            "chart_w": CHART_W,
            "chart_h": CHART_H,
        }
        return TemplateResponse(request, "admin/strategies/backtest.html", context)


def _metric_rows(result: dict) -> list[tuple[str, str, list[str]]]:
    from strategies.management.commands.backtest import METRIC_ROWS, format_metric

    return [
        (
            label,
            format_metric(result["metrics"].get(key), kind),
            [
                format_metric(result["per_symbol"][s]["metrics"].get(key), kind)
                for s in result["symbols"]
            ],
        )
        for key, label, kind in METRIC_ROWS
    ]
