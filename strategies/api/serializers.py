from __future__ import annotations

from rest_framework import serializers

from strategies import registry
from strategies.models import StrategyConfig


class PluginSerializer(serializers.Serializer):
    name = serializers.CharField(allow_null=True)
    description = serializers.CharField()
    origin = serializers.CharField()
    allow_short = serializers.BooleanField()
    params_schema = serializers.DictField()
    defaults = serializers.DictField()
    load_error = serializers.CharField(allow_null=True)


class StrategyConfigSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    load_error = serializers.SerializerMethodField()
    params_schema = serializers.SerializerMethodField()
    defaults = serializers.SerializerMethodField()

    class Meta:
        model = StrategyConfig
        fields = [
            "id",
            "name",
            "plugin",
            "symbols",
            "params",
            "allocation",
            "timeframe",
            "enabled",
            "status",
            "load_error",
            "params_schema",
            "defaults",
            "last_run_at",
            "last_signal",
            "last_error",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_status(self, config: StrategyConfig) -> str:
        """`unavailable` (plugin not loaded), `error` (last run failed), `enabled`, `disabled`."""
        if registry.get_strategy(config.plugin) is None:
            return "unavailable"
        if config.last_error:
            return "error"
        return "enabled" if config.enabled else "disabled"

    def get_load_error(self, config: StrategyConfig) -> str | None:
        if registry.get_strategy(config.plugin) is not None:
            return None
        errors = [e for o, e in registry.get_registry().errors.items() if config.plugin in o]
        return errors[0] if errors else f"no strategy plugin named {config.plugin!r} is loaded"

    def get_params_schema(self, config: StrategyConfig) -> dict:
        cls = registry.get_strategy(config.plugin)
        return cls.params_schema() if cls else {}

    def get_defaults(self, config: StrategyConfig) -> dict:
        cls = registry.get_strategy(config.plugin)
        return cls.validate_params({}) if cls else {}


class StrategyListSerializer(serializers.Serializer):
    strategies = StrategyConfigSerializer(many=True)
    plugins = PluginSerializer(many=True)


class PluginListSerializer(serializers.Serializer):
    plugins = PluginSerializer(many=True)


class DecisionSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    bar_time = serializers.CharField(allow_null=True)
    target = serializers.FloatField(allow_null=True)
    order_id = serializers.CharField(allow_null=True)
    note = serializers.CharField()
    error = serializers.CharField(allow_blank=True)


class ExecuteResultSerializer(serializers.Serializer):
    strategy = StrategyConfigSerializer()
    decisions = DecisionSerializer(many=True)


class PerformanceSerializer(serializers.Serializer):
    session_id = serializers.IntegerField(allow_null=True)
    equity = serializers.CharField()
    cash = serializers.CharField()
    total_return = serializers.FloatField(allow_null=True)
    realized_pnl = serializers.CharField()
    metrics = serializers.DictField()
    equity_curve = serializers.ListField(child=serializers.DictField())


class StrategyStateSerializer(serializers.Serializer):
    name = serializers.CharField()
    plugin = serializers.CharField()
    symbols = serializers.ListField(child=serializers.CharField())
    enabled = serializers.BooleanField()
    last_run_at = serializers.DateTimeField(allow_null=True)
    last_signal = serializers.DictField(
        help_text="Per symbol, the last run's decision: target, bar_time, note, order_id."
    )
    last_error = serializers.CharField(allow_blank=True)
