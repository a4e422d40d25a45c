"""Shapes of the project-level answers (health, dashboard overview) and of the Trading Robot API
aliases that are not another app's resource."""

from __future__ import annotations

from rest_framework import serializers

from core.shapes import Money
from marketdata.api.serializers import OhlcvSerializer
from trading.api.serializers import (
    BrokerStateSerializer,
    OrderSerializer,
    PositionPayloadSerializer,
    SessionSummarySerializer,
    StreamStateSerializer,
)


class CheckSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    vendor = serializers.CharField(required=False)
    error = serializers.CharField(required=False)


class FreshnessSerializer(serializers.Serializer):
    last_bar_age_seconds = serializers.FloatField(allow_null=True)
    stale = serializers.BooleanField()


class HealthSerializer(serializers.Serializer):
    """Anonymous callers get `status` only; the rest needs read scope."""

    status = serializers.ChoiceField(choices=["ok", "degraded"])
    database = CheckSerializer(required=False)
    redis = CheckSerializer(required=False)
    market_data = FreshnessSerializer(required=False)
    halted = serializers.BooleanField(allow_null=True, required=False)
    broker_state = BrokerStateSerializer(required=False)
    streams = serializers.DictField(child=StreamStateSerializer(), required=False)


class StrategySummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    plugin = serializers.CharField()
    symbols = serializers.ListField(child=serializers.CharField())
    last_run_at = serializers.DateTimeField(allow_null=True)
    last_error = serializers.CharField(allow_blank=True)


class TradesTodaySerializer(serializers.Serializer):
    count = serializers.IntegerField(min_value=0)
    realized_pnl = Money()


class MarketStateSerializer(serializers.Serializer):
    open = serializers.BooleanField()
    clock = serializers.ChoiceField(choices=["simulated", "exchange"])
    market_time = serializers.DateTimeField()


class DataFreshnessSerializer(serializers.Serializer):
    last_collection_at = serializers.DateTimeField(allow_null=True)
    age_seconds = serializers.FloatField(allow_null=True)
    stale = serializers.BooleanField()


class OverviewSerializer(serializers.Serializer):
    session = SessionSummarySerializer(allow_null=True)
    equity = Money()
    cash = Money()
    day_pnl = Money(help_text="Equity now minus equity at the start of the market day.")
    day_pnl_pct = serializers.FloatField()
    unrealized_pnl = Money()
    open_positions = PositionPayloadSerializer(many=True)
    trades_today = TradesTodaySerializer()
    active_strategies = StrategySummarySerializer(many=True)
    market = MarketStateSerializer()
    data_freshness = DataFreshnessSerializer()
    halted = serializers.BooleanField()
    halt_reason = serializers.CharField(allow_blank=True)


class MarketDataSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    data = OhlcvSerializer(many=True)


class StopTradingOkSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok"])
    halted = serializers.BooleanField()
    reason = serializers.CharField()
    changed_at = serializers.DateTimeField()


class TradeOkSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok"])
    order = OrderSerializer()
