"""Alpaca market data: alpaca-py's `StockHistoricalDataClient` behind `BaseProvider`.

The client runs with `raw_data=True` so one malformed bar is logged and skipped instead of
failing alpaca-py's model parsing for the whole answer, and prices become `Decimal` from the
JSON number's shortest repr (what Alpaca sent) rather than through a model's float.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import requests

from core.http import disable_sdk_retry, install_timeout
from core.times import parse_iso_utc
from marketdata.providers.base import BarData, BaseProvider, ProviderError, Quote

logger = logging.getLogger(__name__)

_TIMEFRAME = re.compile(r"^(\d+)(Min|Hour|Day|Week|Month)$")


def _price(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        price = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return price if price.is_finite() and price > 0 else None


def bar_from_alpaca(symbol: str, timeframe: str, row: Any) -> BarData | None:
    """Our BarData for one Alpaca bar row, or None (logged) if the row is not a sane bar."""
    if not isinstance(row, dict):
        logger.warning("Skipping non-object Alpaca bar for %s: %r", symbol, row)
        return None
    ts = parse_iso_utc(row.get("t"))
    o, h, low, c = (_price(row.get(k)) for k in ("o", "h", "l", "c"))
    volume = row.get("v")
    problem = None
    if ts is None or None in (o, h, low, c):
        problem = "missing or invalid time/price"
    elif isinstance(volume, bool) or not isinstance(volume, int | float) or volume < 0:
        problem = "missing or invalid volume"
    elif not (low <= min(o, c) and max(o, c) <= h):
        problem = "prices inconsistent (need low <= open, close <= high)"
    if problem:
        logger.warning("Skipping malformed Alpaca bar for %s (%s): %r", symbol, problem, row)
        return None
    return BarData(
        symbol=symbol,
        timeframe=timeframe,
        timestamp=ts,
        open=o,
        high=h,
        low=low,
        close=c,
        volume=int(volume),
    )


class AlpacaProvider(BaseProvider):
    name = "alpaca"
    stream_source = "realtime.sources.alpaca_data.AlpacaDataSource"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        secret_key: str | None = None,
        url_override: str | None = None,
        feed: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        """Credentials and URL default to the ALPACA_* settings (read here, not at import).

        `feed` is Alpaca's data feed ("iex", "sip", "delayed_sip", ...); None lets Alpaca pick
        (sip, which a free account may only query for data older than 15 minutes).
        """
        from alpaca.data.historical import StockHistoricalDataClient

        if api_key is None or secret_key is None or url_override is None:
            from django.conf import settings

            api_key = settings.ALPACA_API_KEY if api_key is None else api_key
            secret_key = settings.ALPACA_SECRET_KEY if secret_key is None else secret_key
            url_override = url_override or settings.ALPACA_DATA_URL_OVERRIDE
        if not api_key or not secret_key:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(
                "The alpaca market-data provider needs ALPACA_API_KEY and ALPACA_SECRET_KEY."
            )
        self._client = StockHistoricalDataClient(
            api_key, secret_key, raw_data=True, url_override=url_override or None
        )
        # Retrying is the collection task's job (exponential backoff there, stale data meanwhile);
        # alpaca-py's own retry would sleep 3 s per try inside a worker.
        disable_sdk_retry(self._client)
        install_timeout(self._client, timeout)
        self._feed = feed

    def _call(self, fn: Any, request: Any, what: str) -> Any:
        from alpaca.common.exceptions import APIError

        try:
            return fn(request)
        except APIError as exc:
            raise ProviderError(f"Alpaca {what} failed ({exc.status_code}): {exc}") from exc
        except requests.RequestException as exc:
            raise ProviderError(f"Alpaca unreachable for {what}: {exc}") from exc
        except (ValueError, KeyError, TypeError) as exc:
            # alpaca-py raises ValueError when a page has none of the keys it expects.
            raise ProviderError(f"Alpaca {what}: unexpected payload: {exc}") from exc

    def _feed_kwargs(self) -> dict:
        from alpaca.data.enums import DataFeed

        return {"feed": DataFeed(self._feed)} if self._feed else {}

    def fetch_bars(
        self, symbol: str, timeframe: str, start: datetime, end: datetime
    ) -> list[BarData]:
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame, TimeFrameUnit

        match = _TIMEFRAME.match(timeframe)
        if not match:
            raise ProviderError(f"Unsupported timeframe {timeframe!r} (e.g. '5Min', '1Day')")
        start, end = _aware(start), _aware(end)
        request = StockBarsRequest(
            symbol_or_symbols=symbol,
            timeframe=TimeFrame(int(match.group(1)), TimeFrameUnit(match.group(2))),
            start=start,
            end=end,
            # limit=None: alpaca-py asks for 10,000 per page and follows next_page_token to the end.
            **self._feed_kwargs(),
        )
        raw = self._call(self._client.get_stock_bars, request, "bars")
        rows = raw.get(symbol, []) if isinstance(raw, dict) else []
        bars: dict[datetime, BarData] = {}
        for row in rows:
            bar = bar_from_alpaca(symbol, timeframe, row)
            # Alpaca's end is inclusive; ours is exclusive.
            if bar is not None and start <= bar.timestamp < end:
                bars[bar.timestamp] = bar
        return [bars[ts] for ts in sorted(bars)]

    def latest(self, symbols: list[str]) -> dict[str, Quote]:
        from alpaca.data.requests import StockLatestQuoteRequest, StockLatestTradeRequest

        if not symbols:
            return {}
        result: dict[str, Quote] = {}
        trades = self._call(
            self._client.get_stock_latest_trade,
            StockLatestTradeRequest(symbol_or_symbols=list(symbols), **self._feed_kwargs()),
            "latest trades",
        )
        for symbol in symbols:
            row = trades.get(symbol) if isinstance(trades, dict) else None
            price = _price(row.get("p")) if isinstance(row, dict) else None
            ts = parse_iso_utc(row.get("t")) if isinstance(row, dict) else None
            if price is not None and ts is not None:
                result[symbol] = Quote(symbol=symbol, price=price, timestamp=ts)

        missing = [s for s in symbols if s not in result]
        if missing:
            # No usable trade (thin symbol, feed gap): fall back to the quote midpoint.
            quotes = self._call(
                self._client.get_stock_latest_quote,
                StockLatestQuoteRequest(symbol_or_symbols=missing, **self._feed_kwargs()),
                "latest quotes",
            )
            for symbol in missing:
                row = quotes.get(symbol) if isinstance(quotes, dict) else None
                if not isinstance(row, dict):
                    continue
                bid, ask, ts = (
                    _price(row.get("bp")),
                    _price(row.get("ap")),
                    parse_iso_utc(row.get("t")),
                )
                if ts is None or (bid is None and ask is None):
                    logger.warning("No usable Alpaca trade or quote for %s: %r", symbol, row)
                    continue
                price = (bid + ask) / 2 if bid is not None and ask is not None else (bid or ask)
                result[symbol] = Quote(symbol=symbol, price=price, timestamp=ts)
        return result


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
