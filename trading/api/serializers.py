from __future__ import annotations

from rest_framework import serializers

from trading.models import Order, Position, Trade


class TradeSerializer(serializers.ModelSerializer):
    order_id = serializers.UUIDField(read_only=True)
    session_id = serializers.IntegerField(read_only=True)
    strategy = serializers.SerializerMethodField()

    class Meta:
        model = Trade
        fields = [
            "id",
            "order_id",
            "session_id",
            "symbol",
            "side",
            "qty",
            "price",
            "fee",
            "realized_pnl",
            "executed_at",
            "strategy",
        ]

    def get_strategy(self, trade: Trade) -> str | None:
        config = trade.order.strategy_config if trade.order_id else None
        return config.name if config else None


class PositionSerializer(serializers.ModelSerializer):
    session_id = serializers.IntegerField(read_only=True)
    market_value = serializers.DecimalField(max_digits=30, decimal_places=6, read_only=True)
    unrealized_pnl = serializers.DecimalField(max_digits=30, decimal_places=6, read_only=True)

    class Meta:
        model = Position
        fields = [
            "symbol",
            "qty",
            "avg_entry_price",
            "last_price",
            "market_value",
            "unrealized_pnl",
            "realized_pnl",
            "session_id",
            "updated_at",
        ]


class OrderSerializer(serializers.ModelSerializer):
    session_id = serializers.IntegerField(read_only=True)
    strategy_config_id = serializers.IntegerField(read_only=True, allow_null=True)

    class Meta:
        model = Order
        fields = [
            "id",
            "client_order_id",
            "broker_order_id",
            "session_id",
            "strategy_config_id",
            "source",
            "symbol",
            "side",
            "type",
            "qty",
            "limit_price",
            "stop_price",
            "time_in_force",
            "status",
            "filled_qty",
            "filled_avg_price",
            "reject_reason",
            "created_at",
            "submitted_at",
            "filled_at",
            "canceled_at",
        ]
