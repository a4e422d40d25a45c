"""OpenAPI: what every operation gets for free, and response shapes for views without serializers.

Every operation of the schema, whoever wrote its view, gets from `AutoSchema` (the project's
DEFAULT_SCHEMA_CLASS) the error responses it can answer, all in the one error shape: 400 and 404
always, 401 and 403 unless the view is public, 429 (with Retry-After) when it is throttled, and
409/415/422/503 for writes; and from `ApiKeyScheme` the Bearer security scheme. Views without
serializers (APIViews returning dicts) get their response shapes from `document_views()`, called
once by tradingrobot.urls, so apps need no schema code of their own.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from marketdata.models import Timeframe
from trading.models import OrderSide

ERROR_DESCRIPTIONS = {
    "400": "Bad request: a parameter or the body is invalid (details name the fields).",
    "401": "No credentials, or an unknown, revoked or expired API key.",
    "403": "The API key's scope does not allow this (trading needs scope 'trade').",
    "404": "No such resource (or unknown symbol).",
    "409": "Conflict: trading is halted (code trading_halted), no running session, or the "
    "resource's state does not allow it.",
    "422": "Refused by a risk check or the broker.",
    "415": "The body's Content-Type is not application/json or form-encoded.",
    "429": "Rate limit of the API key exceeded; retry after Retry-After seconds.",
    "503": "The broker (or a dependency) is unavailable; retry later.",
}
WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


# --- shared shapes -------------------------------------------------------------------------------


class ErrorBodySerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="Machine-readable, e.g. invalid_request, trading_halted."
    )
    message = serializers.CharField()
    details = serializers.DictField(help_text="Field errors or context; {} when none.")


class ErrorSerializer(serializers.Serializer):
    error = ErrorBodySerializer()

    class Meta:
        ref_name = "Error"


class AliasErrorSerializer(serializers.Serializer):
    # Absent only when the request never reached an alias view (e.g. a path that matches none).
    status = serializers.ChoiceField(choices=["error"], required=False)
    message = serializers.CharField(required=False)
    error = ErrorBodySerializer()


ERROR_EXAMPLE = {
    "error": {
        "code": "invalid_request",
        "message": "Invalid request: quantity",
        "details": {"quantity": ["Must be greater than 0."]},
    }
}


class AutoSchema(SpectacularAutoSchema):
    def _error_codes(self) -> list[str]:
        codes = ["400", "404"]
        public = any(isinstance(p, AllowAny) for p in self.view.get_permissions())
        if not public:
            codes += ["401", "403"]
        if self.view.get_throttles():
            codes.append("429")
        if self.method in WRITE_METHODS:
            codes += ["409", "415", "422", "503"]
        return sorted(codes)

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        from tradingrobot.api.aliases import AliasErrorMixin

        error = AliasErrorSerializer if isinstance(self.view, AliasErrorMixin) else ErrorSerializer
        for code in self._error_codes():
            if code in responses:
                continue
            response = self._get_response_for_code(error, code, direction=direction)
            response["description"] = ERROR_DESCRIPTIONS[code]
            if code == "429":
                response["headers"] = {
                    "Retry-After": {
                        "description": "Seconds until the key may call again.",
                        "schema": {"type": "integer"},
                    }
                }
            responses[code] = response
        return responses

    def get_tags(self) -> list[str]:
        if not self.path.startswith("/api/v1/"):
            return ["Trading Robot API aliases"]
        return super().get_tags()


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "tradingrobot.api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key from admin or `manage.py create_api_key NAME --scope "
            "read|trade`, sent as `Authorization: Bearer <key>`.",
        }


def preprocess_endpoints(endpoints, **kwargs):
    """Document each route once: the WordPress prefix serves exactly the /api/v1/ routes."""
    return [e for e in endpoints if not e[0].startswith("/wp-json/")]


def postprocess_schema(result, generator, request, public):
    schemas = result.get("components", {}).get("schemas", {})
    if "Error" in schemas:
        schemas["Error"]["example"] = ERROR_EXAMPLE
    result["servers"] = [
        {"url": "/", "description": "This server (also under /wp-json/tradingrobotplug/v1/)."}
    ]
    return result


# --- response shapes of APIViews that return dicts -----------------------------------------------


class Money(serializers.CharField):
    """A decimal amount as a string (exact; never a float)."""


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


class StatusSerializer(serializers.Serializer):
    trading_enabled = serializers.BooleanField()
    halted = serializers.BooleanField()
    kill_switch = KillSwitchStateSerializer()
    session = SessionSummarySerializer(allow_null=True)
    broker = serializers.CharField()
    marketdata_provider = serializers.CharField()
    clock = serializers.ChoiceField(choices=["simulated", "exchange"])
    market_time = serializers.DateTimeField()
    market_open = serializers.BooleanField()
    symbols = serializers.ListField(child=serializers.CharField())
    last_collection_at = serializers.DateTimeField(allow_null=True)
    open_orders = serializers.IntegerField(min_value=0)


class QuoteSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    price = Money()
    change = Money()
    change_pct = Money()
    volume = serializers.IntegerField()
    timestamp = serializers.DateTimeField()
    age_seconds = serializers.FloatField()
    stale = serializers.BooleanField()


class StockDataSerializer(serializers.Serializer):
    stock_data = QuoteSerializer(many=True)


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


class WebSocketTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Pass as /ws/updates?token=; valid 5 minutes.")
    expires_at = serializers.DateTimeField()


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


class OhlcvSerializer(serializers.Serializer):
    timestamp = serializers.DateTimeField(help_text="Bar start, UTC.")
    open = Money()
    high = Money()
    low = Money()
    close = Money()
    volume = serializers.IntegerField()


class MarketDataSerializer(serializers.Serializer):
    symbol = serializers.CharField()
    timeframe = serializers.CharField()
    data = OhlcvSerializer(many=True)


class FeedAgeFields(serializers.Serializer):
    """How fresh a symbol's data is (marketdata.selectors.feed_staleness)."""

    age_seconds = serializers.IntegerField(
        allow_null=True, help_text="Whole seconds since the provider last answered for it."
    )
    stale = serializers.BooleanField()


class PricePointSerializer(OhlcvSerializer):
    symbol = serializers.CharField()
    price = Money(help_text="The bar's close.")
    timestamp = serializers.DateTimeField(help_text="Bar end, UTC.")


class StockDataSymbolSerializer(FeedAgeFields):
    symbol = serializers.CharField()
    days = serializers.IntegerField(min_value=1)
    stock_data = PricePointSerializer(many=True)


class MarketDataPageSerializer(FeedAgeFields):
    symbol = serializers.CharField()
    timeframe = serializers.ChoiceField(choices=Timeframe.choices)
    count = serializers.IntegerField(min_value=0)
    data = OhlcvSerializer(many=True, help_text="Oldest first.")


class CandleSerializer(serializers.Serializer):
    time = serializers.IntegerField(help_text="Bar start, seconds since the epoch (UTC).")
    timestamp = serializers.DateTimeField(help_text="Bar start, UTC.")
    open = serializers.FloatField()
    high = serializers.FloatField()
    low = serializers.FloatField()
    close = serializers.FloatField()
    volume = serializers.IntegerField()


class ChartDataSerializer(FeedAgeFields):
    symbol = serializers.CharField()
    timeframe = serializers.ChoiceField(choices=Timeframe.choices)
    days = serializers.IntegerField(min_value=1)
    candles = CandleSerializer(many=True)


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


class StopTradingOkSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=["ok"])
    halted = serializers.BooleanField()
    reason = serializers.CharField()
    changed_at = serializers.DateTimeField()


def document_views() -> None:
    """Attach response (and request) shapes to the APIViews that return plain dicts."""
    from marketdata.api.views import (
        ChartDataView,
        MarketDataSymbolView,
        MarketDataView,
        StockDataSymbolView,
        StockDataView,
    )
    from strategies.api.views import StrategyDetailView, StrategyListView
    from streaming.api.views import (
        DashboardSnapshotView,
        TokenRequestSerializer,
        WebSocketTokenView,
    )
    from trading.api.serializers import OrderSerializer
    from trading.api.views import StatusView
    from tradingrobot.api import aliases
    from tradingrobot.api.views import DashboardOverviewView, HealthView

    class TradeOk(serializers.Serializer):
        status = serializers.ChoiceField(choices=["ok"])
        order = OrderSerializer()

    class DashboardSnapshotSerializer(serializers.Serializer):
        status = StatusSerializer()
        performance = SessionPerformanceSerializer()
        positions = PositionPayloadSerializer(many=True)
        open_orders = OrderSerializer(many=True, help_text="The newest 100.")
        trades = TradePayloadSerializer(many=True, help_text="The newest 50, newest first.")
        equity_curve = EquityPointSerializer(many=True, help_text="Up to 500, oldest first.")
        strategies = StrategyStateSerializer(many=True)

    status = extend_schema(
        summary="Robot status: session, kill switch, market clock",
        responses=StatusSerializer,
    )
    for view in (StatusView, aliases.AliasStatusView):
        extend_schema_view(get=status)(view)
    extend_schema_view(
        get=extend_schema(
            summary="Latest price per symbol",
            responses=StockDataSerializer,
            operation_id="stock_data_latest",
        )
    )(StockDataView)
    # Market-data and dashboard reads build their JSON in the views: their shapes are
    # documented here (schemathesis checks every answer against them).
    symbol_param = OpenApiParameter("symbol", str, OpenApiParameter.PATH)
    timeframe_param = OpenApiParameter("timeframe", str, enum=Timeframe.values)
    for view, summary, operation_id, parameters, response in (
        (
            StockDataSymbolView,
            "Price history of one symbol (?days=)",
            "stock_data_symbol",
            [symbol_param, OpenApiParameter("days", int)],
            StockDataSymbolSerializer,
        ),
        (
            MarketDataView,
            "OHLCV bars (?symbol=&timeframe=&limit=)",
            "market_data_query",
            [OpenApiParameter("symbol", str), timeframe_param, OpenApiParameter("limit", int)],
            MarketDataPageSerializer,
        ),
        (
            MarketDataSymbolView,
            "OHLCV bars of one symbol",
            "market_data_symbol",
            [symbol_param, timeframe_param, OpenApiParameter("limit", int)],
            MarketDataPageSerializer,
        ),
        (
            ChartDataView,
            "Candles for charts (?symbol=&timeframe=&days=)",
            "chart_data",
            [OpenApiParameter("symbol", str), timeframe_param, OpenApiParameter("days", int)],
            ChartDataSerializer,
        ),
        (
            DashboardSnapshotView,
            "Everything the dashboard shows, in one read",
            "dashboard_snapshot",
            [],
            DashboardSnapshotSerializer,
        ),
    ):
        extend_schema_view(
            get=extend_schema(
                summary=summary,
                operation_id=operation_id,
                parameters=parameters,
                responses=response,
            )
        )(view)
    extend_schema_view(get=extend_schema(operation_id="strategies_list"))(StrategyListView)
    extend_schema_view(get=extend_schema(operation_id="strategies_detail"))(StrategyDetailView)
    extend_schema_view(
        get=extend_schema(
            summary="Health of the database, Redis and market data (public)",
            responses={
                200: HealthSerializer,
                503: OpenApiResponse(HealthSerializer, description="The database is down."),
            },
        )
    )(HealthView)
    extend_schema_view(
        post=extend_schema(
            summary="A short-lived token for /ws/updates?token=",
            request=TokenRequestSerializer,
            responses={201: WebSocketTokenSerializer},
        )
    )(WebSocketTokenView)
    extend_schema_view(
        get=extend_schema(summary="Dashboard overview", responses=OverviewSerializer)
    )(DashboardOverviewView)
    extend_schema_view(
        get=extend_schema(
            summary="Portfolio (Trading Robot API)", responses=PortfolioSnapshotSerializer
        )
    )(aliases.AliasPortfolioView)
    extend_schema_view(
        get=extend_schema(
            summary="OHLCV bars of one symbol (Trading Robot API)",
            parameters=[aliases.MarketDataQuery],
            responses=MarketDataSerializer,
        )
    )(aliases.AliasMarketDataView)
    extend_schema_view(
        post=extend_schema(
            summary="Buy or sell (Trading Robot API)",
            parameters=[
                OpenApiParameter("side", str, OpenApiParameter.PATH, enum=["buy", "sell"]),
                OpenApiParameter(
                    "symbol", str, OpenApiParameter.PATH, pattern=r"^[A-Za-z0-9.\-]{1,16}$"
                ),
            ],
            request=aliases.TradeRequest,
            responses={
                201: OpenApiResponse(TradeOk, description="Order created."),
                200: OpenApiResponse(TradeOk, description="Same client_order_id: that order."),
            },
            examples=[
                OpenApiExample("Buy 10 shares", value={"quantity": 10}, request_only=True),
            ],
        )
    )(aliases.AliasTradeView)
    extend_schema_view(
        post=extend_schema(
            summary="Engage the kill switch (Trading Robot API)",
            request=aliases.StopTradingRequest,
            responses=StopTradingOkSerializer,
        )
    )(aliases.AliasStopTradingView)
