"""The market-data API: thin views over marketdata.selectors, answers cached in Redis.

The heavy part of each answer (the rows) is cached as JSON text under a key carrying the
symbol's version stamp, so a new bar invalidates it at once; `age_seconds`/`stale` are computed
per request so a dead provider shows up even while the rows come from the cache.
"""

from __future__ import annotations

import json
from datetime import timedelta

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.views import APIView

from core.shapes import RawJSON, json_object
from marketdata import cache, calendar, selectors
from marketdata.api.serializers import (
    ChartDataSerializer,
    MarketDataPageSerializer,
    StockDataSerializer,
    StockDataSymbolSerializer,
    candle,
    latest_quote,
    ohlcv_row,
    price_point,
)
from marketdata.exceptions import InvalidParameter, UnknownSymbol
from marketdata.models import SYMBOL_RE, Timeframe
from tradingrobot.api import cache as api_cache

MAX_DAYS = 366
MAX_LIMIT = 5000


def _json(text: str, status: int = 200) -> HttpResponse:
    return HttpResponse(text, status=status, content_type="application/json")


def _dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"))


def parse_symbol(raw: str | None) -> str:
    if not raw:
        raise InvalidParameter("symbol", "is required")
    symbol = raw.strip().upper()
    if not SYMBOL_RE.match(symbol):
        raise InvalidParameter("symbol", "must be 1-16 letters, digits, '.' or '-'")
    if not selectors.symbol_known(symbol):
        raise UnknownSymbol(f"Unknown symbol {symbol}.", details={"symbol": symbol})
    return symbol


def parse_int(request, name: str, *, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidParameter(name, f"must be an integer from {low} to {high}") from None
    if not low <= value <= high:
        raise InvalidParameter(name, f"must be an integer from {low} to {high}")
    return value


def parse_timeframe(request) -> str:
    raw = request.query_params.get("timeframe") or "5Min"
    # Accept any letter case ("5min", "1hour") but answer with the canonical name.
    for timeframe in selectors.TIMEFRAMES:
        if raw.lower() == timeframe.lower():
            return timeframe
    raise InvalidParameter("timeframe", f"must be one of {', '.join(selectors.TIMEFRAMES)}")


def _since(symbol: str, days: int):
    """Where the last `days` NYSE sessions of `symbol`'s data begin: counted back from its
    newest bar, so a provider outage still shows the last data (flagged stale), and a cached
    answer stays right until the next bar lands (which invalidates it)."""
    latest = selectors.latest_bar_time(symbol)
    return calendar.sessions_start(latest or selectors.market_now(), days)


def _answer(serializer_class, symbol: str, **parts) -> HttpResponse:
    """One symbol's answer under exactly the keys `serializer_class` declares, with how fresh
    its data is (computed per request: a dead provider shows even while rows are cached)."""
    feed = selectors.feed_staleness([symbol])[symbol]
    values = {"symbol": symbol, **parts, "age_seconds": feed["age_seconds"], "stale": feed["stale"]}
    return _json(json_object(serializer_class, values))


# Their JSON is built here (rows cached as JSON text): the shapes are documented from the same
# declarations the rows are encoded from (schemathesis checks every answer against them).
SYMBOL_PARAM = OpenApiParameter("symbol", str, OpenApiParameter.PATH)
TIMEFRAME_PARAM = OpenApiParameter("timeframe", str, enum=Timeframe.values)
QUERY_SYMBOL_PARAM = OpenApiParameter("symbol", str)
LIMIT_PARAM = OpenApiParameter("limit", int)
DAYS_PARAM = OpenApiParameter("days", int)


@extend_schema_view(
    get=extend_schema(
        summary="Latest price per symbol",
        responses=StockDataSerializer,
        operation_id="stock_data_latest",
    )
)
class StockDataView(APIView):
    """GET stock-data: latest price per primary symbol with change and staleness.

    The whole answer is also kept per process (tradingrobot.api.cache) under the symbols' version
    stamps, for the current second only: its ages are whole seconds, so within one second a fresh
    answer would read the same."""

    def stamp_keys(self) -> list[str]:
        return cache.version_keys(settings.PRIMARY_SYMBOLS)

    def get(self, request):
        return api_cache.serve(
            self,
            request,
            seconds=min(1, settings.API_RESPONSE_CACHE_SECONDS),
            build=lambda: self.answer(list(settings.PRIMARY_SYMBOLS)),
        )

    def answer(self, symbols: list[str]) -> HttpResponse:
        def build() -> list[dict]:
            return [latest_quote(q) for q in selectors.latest_quotes(symbols)]

        rows = cache.cached("stock-data", symbols, {}, build)
        feeds = selectors.feed_staleness([row["symbol"] for row in rows])
        body = [{**row, **feeds[row["symbol"]]} for row in rows]
        for row in body:
            row.pop("last_error", None)
        return _json(_dumps({"stock_data": body}))


@extend_schema_view(
    get=extend_schema(
        summary="Price history of one symbol (?days=)",
        operation_id="stock_data_symbol",
        parameters=[SYMBOL_PARAM, DAYS_PARAM],
        responses=StockDataSymbolSerializer,
    )
)
class StockDataSymbolView(APIView):
    """GET stock-data/{symbol}?days=N: the price (close) of every 5-minute bar in the last N
    NYSE sessions, timestamped at the bar's end, with its OHLCV."""

    def get(self, request, symbol: str):
        symbol = parse_symbol(symbol)
        days = parse_int(request, "days", default=1, low=1, high=MAX_DAYS)

        def build() -> str:
            since = _since(symbol, days)
            bar = timedelta(minutes=5)
            # The price is the close, timestamped at the bar's end.
            return _dumps(
                [
                    price_point(
                        {
                            **r,
                            "symbol": symbol,
                            "price": r["close"],
                            "timestamp": r["timestamp"] + bar,
                        }
                    )
                    for r in selectors.bars_ohlcv(symbol, "5Min", since=since)
                ]
            )

        rows = cache.cached("stock-data-symbol", [symbol], {"days": days}, build)
        return _answer(StockDataSymbolSerializer, symbol, days=days, stock_data=RawJSON(rows))


def _market_data(request, symbol: str) -> HttpResponse:
    timeframe = parse_timeframe(request)
    limit = parse_int(request, "limit", default=100, low=1, high=MAX_LIMIT)

    def build() -> tuple[int, str]:
        rows = selectors.bars_ohlcv(symbol, timeframe, limit=limit)
        return len(rows), _dumps([ohlcv_row(r) for r in rows])

    count, rows = cache.cached("market-data", [symbol], {"tf": timeframe, "limit": limit}, build)
    return _answer(
        MarketDataPageSerializer, symbol, timeframe=timeframe, count=count, data=RawJSON(rows)
    )


@extend_schema_view(
    get=extend_schema(
        summary="OHLCV bars (?symbol=&timeframe=&limit=)",
        operation_id="market_data_query",
        parameters=[QUERY_SYMBOL_PARAM, TIMEFRAME_PARAM, LIMIT_PARAM],
        responses=MarketDataPageSerializer,
    )
)
class MarketDataView(APIView):
    """GET market-data?symbol=&timeframe=&limit=: the newest `limit` OHLCV rows, oldest first."""

    def get(self, request):
        return _market_data(request, parse_symbol(request.query_params.get("symbol")))


@extend_schema_view(
    get=extend_schema(
        summary="OHLCV bars of one symbol",
        operation_id="market_data_symbol",
        parameters=[SYMBOL_PARAM, TIMEFRAME_PARAM, LIMIT_PARAM],
        responses=MarketDataPageSerializer,
    )
)
class MarketDataSymbolView(APIView):
    """GET market_data/{symbol}?timeframe=&limit= (also the /api/market_data/{symbol} alias)."""

    def get(self, request, symbol: str):
        return _market_data(request, parse_symbol(symbol))


@extend_schema_view(
    get=extend_schema(
        summary="Candles for charts (?symbol=&timeframe=&days=)",
        operation_id="chart_data",
        parameters=[QUERY_SYMBOL_PARAM, TIMEFRAME_PARAM, DAYS_PARAM],
        responses=ChartDataSerializer,
    )
)
class ChartDataView(APIView):
    """GET chart-data?symbol=&timeframe=&days=: candles for charts (`time` in epoch seconds,
    numbers rather than strings, as charting libraries take them)."""

    def get(self, request):
        symbol = parse_symbol(request.query_params.get("symbol"))
        timeframe = parse_timeframe(request)
        days = parse_int(request, "days", default=5, low=1, high=MAX_DAYS)

        def build() -> str:
            since = _since(symbol, days)
            return _dumps(
                [
                    candle({**r, "time": int(r["timestamp"].timestamp())})
                    for r in selectors.bars_ohlcv(symbol, timeframe, since=since)
                ]
            )

        params = {"tf": timeframe, "days": days}
        candles = cache.cached("chart-data", [symbol], params, build)
        return _answer(
            ChartDataSerializer, symbol, timeframe=timeframe, days=days, candles=RawJSON(candles)
        )
