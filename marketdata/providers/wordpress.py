"""A TradingRobotPlug WordPress site as a market-data provider.

The site answers GET {WORDPRESS_API_URL}/stock-data with {"stock_data": [{"symbol", "price",
"timestamp"}]} (the latest price per symbol) and GET {WORDPRESS_API_URL}/stock-data/{symbol}
?days=N with the price rows of the last N days. Timestamps are MySQL datetimes
("2025-12-26 15:30:00") in the site's timezone (WORDPRESS_TIMEZONE, default America/New_York).

Price rows become 5-minute OHLCV bars on the UTC clock grid: open = the first price in the bar,
close = the last, high/low = max/min, volume = the sum of the rows' `volume` when present (0
otherwise). A bar is only built once it has ended, so a half-filled bar is never stored. A
malformed row (missing or non-positive price, unparsable time, wrong symbol) is logged and
skipped.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

import requests

from marketdata.providers.base import BarData, BaseProvider, ProviderError, Quote
from tradingrobot.http import guarded_session

logger = logging.getLogger(__name__)

BAR_SECONDS = 300
MAX_DAYS = 366


def _price(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        price = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return price if price.is_finite() and price > 0 else None


def _volume(value: Any) -> int | None:
    """The row's volume; 0 when absent, None when present but not a count."""
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or number < 0 or number != number.to_integral_value():
        return None
    return int(number)


def parse_site_time(value: Any, tz: ZoneInfo) -> datetime | None:
    """A MySQL datetime in the site's timezone (an ISO string with an offset is also taken)."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=tz)
    return parsed.astimezone(UTC)


def price_rows(symbol: str, rows: Any, tz: ZoneInfo) -> list[tuple[datetime, Decimal, int]]:
    """(UTC time, price, volume) of each well-formed row for `symbol`, oldest first."""
    if not isinstance(rows, list):
        raise ProviderError(f"WordPress stock-data for {symbol}: expected a list of rows")
    out = []
    for line, row in enumerate(rows):
        problem = None
        if not isinstance(row, dict):
            problem = "not an object"
        else:
            row_symbol = str(row.get("symbol") or symbol).upper()
            at = parse_site_time(row.get("timestamp"), tz)
            price = _price(row.get("price"))
            volume = _volume(row.get("volume"))
            if row_symbol != symbol:
                problem = f"symbol {row_symbol}"
            elif at is None:
                problem = "missing or invalid timestamp"
            elif price is None:
                problem = "missing or invalid price"
            elif volume is None:
                problem = "invalid volume"
        if problem:
            logger.warning(
                "Skipping malformed WordPress row %d for %s (%s): %r", line, symbol, problem, row
            )
            continue
        out.append((at, price, volume))
    out.sort(key=lambda r: r[0])
    return out


def bars_from_prices(symbol: str, rows: Iterable[tuple[datetime, Decimal, int]]) -> list[BarData]:
    """5-minute OHLCV bars from time-ordered price rows."""
    bars: list[BarData] = []
    current: dict | None = None
    for at, price, volume in rows:
        epoch = int(at.timestamp())
        start = datetime.fromtimestamp(epoch - epoch % BAR_SECONDS, tz=UTC)
        if current is None or current["start"] != start:
            if current is not None:
                bars.append(_bar(symbol, current))
            current = {"start": start, "o": price, "h": price, "l": price, "c": price, "v": 0}
        current["h"] = max(current["h"], price)
        current["l"] = min(current["l"], price)
        current["c"] = price
        current["v"] += volume
    if current is not None:
        bars.append(_bar(symbol, current))
    return bars


def _bar(symbol: str, c: dict) -> BarData:
    return BarData(
        symbol=symbol,
        timeframe="5Min",
        timestamp=c["start"],
        open=c["o"],
        high=c["h"],
        low=c["l"],
        close=c["c"],
        volume=c["v"],
    )


class WordPressProvider(BaseProvider):
    name = "wordpress"

    def __init__(
        self,
        *,
        base_url: str | None = None,
        timezone: str | None = None,
        auth_header: str | None = None,
        timeout: float | None = None,
        now=None,
    ) -> None:
        from django.conf import settings

        base_url = base_url if base_url is not None else settings.WORDPRESS_API_URL
        if not base_url:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(
                "The wordpress market-data provider needs WORDPRESS_API_URL."
            )
        self.base_url = base_url.rstrip("/")
        self.tz = ZoneInfo(timezone or settings.WORDPRESS_TIMEZONE)
        self.timeout = timeout if timeout is not None else settings.WORDPRESS_TIMEOUT_SECONDS
        # No cross-origin redirect (the auth header would follow it), a total deadline and a
        # body size cap (tradingrobot.http).
        self.session = guarded_session(
            timeout=self.timeout,
            deadline=settings.OUTBOUND_HTTP_DEADLINE_SECONDS,
            max_bytes=settings.OUTBOUND_HTTP_MAX_BYTES,
        )
        header = auth_header if auth_header is not None else settings.WORDPRESS_AUTH_HEADER
        if header:
            name, _, value = header.partition(":")
            self.session.headers[name.strip()] = value.strip()
        self._now = now or (lambda: datetime.now(UTC))

    def _get(self, path: str, params: dict | None = None) -> Any:
        url = f"{self.base_url}/{path}"
        try:
            response = self.session.get(url, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ProviderError(f"WordPress site unreachable ({url}): {exc}") from exc
        if response.status_code != 200:
            raise ProviderError(f"WordPress {url} answered {response.status_code}")
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderError(f"WordPress {url} answered non-JSON") from exc

    @staticmethod
    def _rows(payload: Any) -> Any:
        return payload.get("stock_data") if isinstance(payload, dict) else payload

    def fetch_bars(
        self, symbol: str, timeframe: str, start: datetime, end: datetime
    ) -> list[BarData]:
        if timeframe != "5Min":
            raise ProviderError("the WordPress provider builds 5Min bars only")
        symbol = symbol.upper()
        now = self._now()
        days = min(max(math.ceil((now - start).total_seconds() / 86400) + 1, 1), MAX_DAYS)
        payload = self._get(f"stock-data/{symbol}", {"days": days})
        rows = price_rows(symbol, self._rows(payload), self.tz)
        # Only bars that have ended: a bar still filling would be stored half-made.
        complete_before = now - timedelta(seconds=BAR_SECONDS)
        return [
            bar
            for bar in bars_from_prices(symbol, rows)
            if start <= bar.timestamp < end and bar.timestamp <= complete_before
        ]

    def latest(self, symbols: list[str]) -> dict[str, Quote]:
        rows = self._rows(self._get("stock-data"))
        if not isinstance(rows, list):
            raise ProviderError("WordPress stock-data: expected a list of rows")
        wanted = {s.upper() for s in symbols}
        quotes: dict[str, Quote] = {}
        for row in rows:
            symbol = str(row.get("symbol", "")).upper() if isinstance(row, dict) else ""
            if symbol not in wanted:
                continue
            parsed = price_rows(symbol, [row], self.tz)
            if parsed:
                at, price, _ = parsed[0]
                if symbol not in quotes or at >= quotes[symbol].timestamp:
                    quotes[symbol] = Quote(symbol, price, at)
        return quotes
