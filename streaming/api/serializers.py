"""Shapes of the streaming app's REST answers (WebSocket token, dashboard snapshot)."""

from __future__ import annotations

from rest_framework import serializers

from marketdata.api.serializers import QuoteEventSerializer
from strategies.api.serializers import StrategyStateSerializer
from trading.api.serializers import (
    EquityPointSerializer,
    OrderSerializer,
    PositionPayloadSerializer,
    SessionPerformanceSerializer,
    StatusSerializer,
    TradePayloadSerializer,
)


class WebSocketTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Pass as /ws/updates?token=; valid 5 minutes.")
    expires_at = serializers.DateTimeField()


class TokenRequestSerializer(serializers.Serializer):
    user_id = serializers.CharField(required=False, max_length=150, allow_blank=True)


class DashboardSnapshotSerializer(serializers.Serializer):
    status = StatusSerializer()
    performance = SessionPerformanceSerializer()
    positions = PositionPayloadSerializer(many=True)
    open_orders = OrderSerializer(many=True, help_text="The newest 100.")
    trades = TradePayloadSerializer(many=True, help_text="The newest 50, newest first.")
    equity_curve = EquityPointSerializer(many=True, help_text="Up to 500, oldest first.")
    strategies = StrategyStateSerializer(many=True)
    quotes = QuoteEventSerializer(
        many=True,
        help_text="The streamed live price of each symbol that has a fresh one (none without a "
        "stream); then `market_data` events of kind quote.",
    )
