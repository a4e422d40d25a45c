"""The Trading Robot API paths the WordPress plugin already speaks, over the same services.

GET /api/status, GET /api/portfolio, GET /api/market_data/{symbol},
POST /api/trade/{symbol}/{side} {"quantity": n}, POST /api/stop_trading.
Success answers {"status": "ok", ...}; an error keeps the one error shape and adds the plugin's
fields: {"status": "error", "message": ..., "error": {"code", "message", "details"}}.
"""

from __future__ import annotations

import re

from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from marketdata.models import Timeframe
from streaming.events import iso_utc
from trading import selectors as trading_selectors
from trading import services as trading_services
from trading.api.views import StatusView
from trading.exceptions import UnknownSymbol
from trading.models import ApiKey, OrderSide, OrderSource, OrderType, TimeInForce
from tradingrobot.api.fields import AsciiDecimalField
from tradingrobot.api.permissions import HasTradeScope
from tradingrobot.api.selectors import ohlcv_rows, portfolio_payload

SYMBOL = re.compile(r"^[A-Za-z0-9.\-]{1,16}$")


class AliasErrorMixin:
    """Adds the plugin's {"status": "error", "message"} beside the standard error object."""

    def handle_exception(self, exc):
        response = super().handle_exception(exc)
        error = response.data.get("error") if isinstance(response.data, dict) else None
        if error is not None:
            response.data = {"status": "error", "message": error["message"], "error": error}
        return response


def _symbol(raw: str) -> str:
    if not SYMBOL.match(raw):
        raise serializers.ValidationError(
            {"symbol": ["Expected a ticker symbol (1-16 characters)."]}
        )
    return raw.upper()


def _actor(request) -> str:
    if isinstance(request.auth, ApiKey):
        return f"api-key:{request.auth.name}"
    return getattr(request.user, "username", "") or "api"


class AliasStatusView(AliasErrorMixin, StatusView):
    """GET /api/status: the same body as GET /api/v1/status."""


class AliasPortfolioView(AliasErrorMixin, APIView):
    """GET /api/portfolio: cash, equity, P&L and open positions of the current session."""

    def get(self, request):
        return Response(portfolio_payload())


class MarketDataQuery(serializers.Serializer):
    timeframe = serializers.ChoiceField(choices=Timeframe.choices, default=Timeframe.MIN5)
    limit = serializers.IntegerField(min_value=1, max_value=5000, default=100)


class AliasMarketDataView(AliasErrorMixin, APIView):
    """GET /api/market_data/{symbol}?timeframe=5Min&limit=100: OHLCV rows, oldest first."""

    def get(self, request, symbol: str):
        symbol = _symbol(symbol)
        query = MarketDataQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        timeframe = query.validated_data["timeframe"]
        rows = ohlcv_rows(symbol=symbol, timeframe=timeframe, limit=query.validated_data["limit"])
        if rows is None:
            raise UnknownSymbol(
                f"unknown symbol {symbol!r}: no market data", details={"symbol": symbol}
            )
        return Response({"symbol": symbol, "timeframe": timeframe, "data": rows})


class TradeRequest(serializers.Serializer):
    quantity = AsciiDecimalField(
        max_digits=18, decimal_places=6, min_value=0, help_text="Shares to buy or sell (> 0)."
    )
    type = serializers.ChoiceField(choices=OrderType.choices, default=OrderType.MARKET)
    time_in_force = serializers.ChoiceField(choices=TimeInForce.choices, default=TimeInForce.DAY)
    limit_price = AsciiDecimalField(
        max_digits=18, decimal_places=6, min_value=0, required=False, allow_null=True
    )
    stop_price = AsciiDecimalField(
        max_digits=18, decimal_places=6, min_value=0, required=False, allow_null=True
    )
    client_order_id = serializers.CharField(
        min_length=1, max_length=128, required=False, help_text="Idempotency key."
    )

    def validate_quantity(self, value):
        if value <= 0:
            raise serializers.ValidationError("Must be greater than 0.")
        return value


class AliasTradeView(AliasErrorMixin, APIView):
    """POST /api/trade/{symbol}/{side} {"quantity": n}: a market order (or limit/stop) by the
    plugin; the same order_submit as POST /api/v1/orders/submit (source "wordpress")."""

    permission_classes = [HasTradeScope]

    def post(self, request, symbol: str, side: str):
        symbol = _symbol(symbol)
        side = side.lower()
        if side not in OrderSide.values:
            raise serializers.ValidationError({"side": [f"Expected one of {OrderSide.values}."]})
        body = TradeRequest(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        result = trading_services.order_submit(
            symbol=symbol,
            side=side,
            qty=data["quantity"],
            type=data["type"],
            time_in_force=data["time_in_force"],
            limit_price=data.get("limit_price"),
            stop_price=data.get("stop_price"),
            client_order_id=data.get("client_order_id"),
            source=OrderSource.WORDPRESS,
        )
        return Response(
            {"status": "ok", "order": trading_selectors.order_payload(result.order)},
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )


class StopTradingRequest(serializers.Serializer):
    reason = serializers.CharField(max_length=255, required=False, default="stopped via API")
    flatten = serializers.BooleanField(required=False, default=False)


class AliasStopTradingView(AliasErrorMixin, APIView):
    """POST /api/stop_trading: engage the kill switch (cancel open orders; optionally flatten)."""

    permission_classes = [HasTradeScope]

    def post(self, request):
        body = StopTradingRequest(data=request.data if request.data else {})
        body.is_valid(raise_exception=True)
        switch = trading_services.trading_halt(
            reason=body.validated_data["reason"],
            by=_actor(request),
            flatten=body.validated_data["flatten"],
        ).switch
        return Response(
            {
                "status": "ok",
                "halted": switch.engaged,
                "reason": switch.reason,
                "changed_at": iso_utc(switch.changed_at),
            }
        )
