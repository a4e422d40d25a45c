from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from core.shapes import Money
from trading.models import (
    Order,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    SessionMode,
    TimeInForce,
    Trade,
    TradingSession,
)
from tradingrobot.api.fields import AsciiDecimalField


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


class OrderLegSerializer(serializers.ModelSerializer):
    """One order without its legs: a leg's own shape, and every field of a parent."""

    session_id = serializers.IntegerField(read_only=True)
    strategy_config_id = serializers.IntegerField(read_only=True, allow_null=True)
    parent_id = serializers.UUIDField(read_only=True, allow_null=True)

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
            "order_class",
            "parent_id",
            "leg_role",
            "trail_price",
            "trail_percent",
            "hwm",
        ]


class OrderSerializer(OrderLegSerializer):
    """An order with its legs nested (a bracket's take-profit and stop-loss, an OCO's
    stop-loss): the REST answers and the order_update event."""

    legs = OrderLegSerializer(many=True, read_only=True)

    class Meta(OrderLegSerializer.Meta):
        fields = [*OrderLegSerializer.Meta.fields, "legs"]


def _price_field(**kwargs) -> AsciiDecimalField:
    return AsciiDecimalField(
        max_digits=19, decimal_places=6, min_value=Decimal("0.000001"), **kwargs
    )


class TakeProfitSerializer(serializers.Serializer):
    """A bracket/OTO/OCO take-profit: a limit order."""

    limit_price = _price_field()


class StopLossSerializer(serializers.Serializer):
    """A bracket/OTO/OCO stop-loss: a stop order, or a stop-limit with `limit_price`."""

    stop_price = _price_field()
    limit_price = _price_field(required=False, allow_null=True)


class OrderSubmitSerializer(serializers.Serializer):
    """The body of POST orders/submit. Protective orders: `order_class` bracket (an entry with
    `take_profit` and `stop_loss`), oto (with one of them), oco (exit-only: type limit, both);
    `type: trailing_stop` with one of `trail_price` / `trail_percent`."""

    symbol = serializers.RegexField(r"^[A-Za-z][A-Za-z0-9.]{0,15}$", max_length=16)
    side = serializers.ChoiceField(choices=OrderSide.choices)
    qty = AsciiDecimalField(max_digits=18, decimal_places=6, min_value=Decimal("0.000001"))
    type = serializers.ChoiceField(choices=OrderType.choices, default=OrderType.MARKET)
    time_in_force = serializers.ChoiceField(choices=TimeInForce.choices, default=TimeInForce.DAY)
    limit_price = AsciiDecimalField(
        max_digits=19,
        decimal_places=6,
        min_value=Decimal("0.000001"),
        required=False,
        allow_null=True,
    )
    stop_price = AsciiDecimalField(
        max_digits=19,
        decimal_places=6,
        min_value=Decimal("0.000001"),
        required=False,
        allow_null=True,
    )
    client_order_id = serializers.RegexField(
        r"^[A-Za-z0-9_.:-]+$", max_length=128, required=False, allow_null=True
    )
    order_class = serializers.ChoiceField(choices=OrderClass.choices, default=OrderClass.SIMPLE)
    take_profit = TakeProfitSerializer(required=False, allow_null=True)
    stop_loss = StopLossSerializer(required=False, allow_null=True)
    trail_price = _price_field(required=False, allow_null=True)
    trail_percent = AsciiDecimalField(
        max_digits=8,
        decimal_places=4,
        min_value=Decimal("0.0001"),
        max_value=Decimal("99.9999"),
        required=False,
        allow_null=True,
        help_text="Percent of the high-water mark (0 < trail_percent < 100).",
    )

    def validate(self, attrs):
        kind = attrs.get("type", OrderType.MARKET)
        errors = {}
        # An OCO's limit price is its take-profit's (order_classes.validate_class).
        oco = attrs.get("order_class") == OrderClass.OCO
        needs_limit = kind in (OrderType.LIMIT, OrderType.STOP_LIMIT) and not oco
        if needs_limit and attrs.get("limit_price") is None:
            errors["limit_price"] = [f"required for {kind} orders"]
        if kind in (OrderType.STOP, OrderType.STOP_LIMIT) and attrs.get("stop_price") is None:
            errors["stop_price"] = [f"required for {kind} orders"]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class OrderFilterSerializer(serializers.Serializer):
    """Query parameters of GET orders: ?status=&symbol=&start=&end= (ISO-8601 date or time)."""

    status = serializers.MultipleChoiceField(choices=OrderStatus.choices, required=False)
    symbol = serializers.RegexField(r"^[A-Za-z][A-Za-z0-9.]{0,15}$", required=False)
    start = serializers.DateTimeField(required=False)
    end = serializers.DateTimeField(required=False)

    def validate(self, attrs):
        if attrs.get("start") and attrs.get("end") and attrs["start"] > attrs["end"]:
            raise serializers.ValidationError({"end": ["must not be before start"]})
        return attrs


class StopTradingSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")
    flatten = serializers.BooleanField(required=False, default=False)


class HaltResultSerializer(serializers.Serializer):
    halted = serializers.BooleanField()
    reason = serializers.CharField()
    changed_at = serializers.DateTimeField(allow_null=True)
    canceled_orders = serializers.ListField(child=serializers.CharField())
    cancel_failed = serializers.ListField(child=serializers.DictField())
    # Orders that filled between the listing and their cancel (their fills are recorded).
    filled_orders = serializers.ListField(child=serializers.CharField())
    flatten_orders = OrderSerializer(many=True)
    flatten_failed = serializers.ListField(child=serializers.DictField())


class KillSwitchSerializer(serializers.Serializer):
    halted = serializers.BooleanField(source="engaged")
    reason = serializers.CharField()
    changed_at = serializers.DateTimeField(allow_null=True)
    changed_by = serializers.CharField()


class SessionSerializer(serializers.ModelSerializer):
    class Meta:
        model = TradingSession
        fields = [
            "id",
            "mode",
            "broker",
            "status",
            "starting_cash",
            "starting_equity",
            "cash",
            "risk_limits",
            "started_at",
            "stopped_at",
            "stop_reason",
        ]


class SessionStartSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=SessionMode.choices, default=SessionMode.PAPER)
    starting_cash = AsciiDecimalField(
        max_digits=19, decimal_places=6, min_value=Decimal("0"), required=False
    )
    risk_limits = serializers.JSONField(required=False, default=dict)


class SessionStopSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=255, required=False, allow_blank=True, default="")


class AccountSerializer(serializers.Serializer):
    broker = serializers.CharField()
    session_id = serializers.IntegerField(allow_null=True)
    cash = serializers.DecimalField(max_digits=30, decimal_places=6)
    equity = serializers.DecimalField(max_digits=30, decimal_places=6)
    buying_power = serializers.DecimalField(max_digits=30, decimal_places=6)
    currency = serializers.CharField()
    status = serializers.CharField()
    halted = serializers.BooleanField()


class PortfolioSerializer(serializers.Serializer):
    session_id = serializers.IntegerField(allow_null=True)
    cash = serializers.DecimalField(max_digits=30, decimal_places=6)
    equity = serializers.DecimalField(max_digits=30, decimal_places=6)
    positions_value = serializers.DecimalField(max_digits=30, decimal_places=6)
    unrealized_pnl = serializers.DecimalField(max_digits=30, decimal_places=6)
    realized_pnl = serializers.DecimalField(max_digits=30, decimal_places=6)
    starting_equity = serializers.DecimalField(max_digits=30, decimal_places=6, required=False)
    positions = serializers.ListField(child=serializers.DictField())


# --- shapes of answers built from selectors, and of the events ----------------------------------


class KillSwitchStateSerializer(serializers.Serializer):
    engaged = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True)
    changed_at = serializers.DateTimeField(allow_null=True)


class SessionSummarySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    mode = serializers.CharField()
    broker = serializers.CharField()
    status = serializers.CharField()
    starting_cash = Money()
    cash = Money()
    started_at = serializers.DateTimeField()
    stopped_at = serializers.DateTimeField(allow_null=True)
    stop_reason = serializers.CharField(allow_blank=True)


class BrokerStateSerializer(serializers.Serializer):
    """The broker's own state (BaseBroker.health): e.g. a Robinhood login awaiting approval."""

    name = serializers.CharField()
    ok = serializers.BooleanField()
    state = serializers.CharField(help_text="ok, logged_out, approval_needed, login_failed, ...")
    detail = serializers.CharField(allow_blank=True)
    experimental = serializers.BooleanField(required=False)
    cooldown_until = serializers.DateTimeField(allow_null=True, required=False)


class StreamStateSerializer(serializers.Serializer):
    """One connection of the `stream` process (realtime.state), in `status`, `health` and the
    `status` event's `streams`."""

    state = serializers.ChoiceField(choices=["live", "reconnecting", "standby", "down"])
    since = serializers.DateTimeField(allow_null=True)
    last_message_at = serializers.DateTimeField(allow_null=True)
    last_message_age_seconds = serializers.FloatField(allow_null=True)
    reconnects = serializers.IntegerField(min_value=0)
    polling = serializers.BooleanField(help_text="Not live: the REST fallback carries on alone.")


class StatusSerializer(serializers.Serializer):
    trading_enabled = serializers.BooleanField()
    halted = serializers.BooleanField()
    kill_switch = KillSwitchStateSerializer()
    session = SessionSummarySerializer(allow_null=True)
    broker = serializers.CharField()
    broker_state = BrokerStateSerializer()
    marketdata_provider = serializers.CharField()
    clock = serializers.ChoiceField(choices=["simulated", "exchange"])
    market_time = serializers.DateTimeField()
    market_open = serializers.BooleanField()
    symbols = serializers.ListField(child=serializers.CharField())
    last_collection_at = serializers.DateTimeField(allow_null=True)
    open_orders = serializers.IntegerField(min_value=0)
    streams = serializers.DictField(
        child=StreamStateSerializer(),
        help_text="Each stream by name: `trade_updates` (the broker's), `market_data`.",
    )


class PositionPayloadSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    qty = Money()
    avg_entry_price = Money()
    last_price = Money()
    market_value = Money()
    unrealized_pnl = Money()
    realized_pnl = Money()
    session_id = serializers.IntegerField()
    updated_at = serializers.DateTimeField(allow_null=True)


class PortfolioSnapshotSerializer(serializers.Serializer):
    session_id = serializers.IntegerField(allow_null=True)
    cash = Money()
    equity = Money()
    positions_value = Money()
    unrealized_pnl = Money()
    realized_pnl = Money()
    starting_equity = Money(required=False)
    positions = PositionPayloadSerializer(many=True)


class SessionPerformanceSerializer(serializers.Serializer):
    """The WebSocket `performance_update` payload (trading.selectors.performance_get)."""

    session_id = serializers.IntegerField(allow_null=True)
    equity = Money()
    cash = Money()
    starting_equity = Money(required=False, help_text="Absent when there is no session.")
    total_return = serializers.FloatField(allow_null=True, help_text="0.05 is +5%.")
    realized_pnl = Money()
    unrealized_pnl = Money(required=False)
    trades = serializers.IntegerField(min_value=0, required=False)


class TradePayloadSerializer(serializers.Serializer):
    """The WebSocket `trade_update` payload (trading.selectors.trade_payload)."""

    id = serializers.IntegerField()
    order_id = serializers.UUIDField()
    session_id = serializers.IntegerField()
    symbol = serializers.CharField()
    side = serializers.ChoiceField(choices=OrderSide.choices)
    qty = Money()
    price = Money()
    fee = Money()
    realized_pnl = Money()
    executed_at = serializers.DateTimeField()


class EquityPointSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField()
    equity = Money()
