from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pandas as pd
from django.conf import settings
from django.db.models import Max

from marketdata import calendar
from marketdata.models import Bar


def last_price(symbol: str) -> Decimal | None:
    close = (
        Bar.objects.filter(symbol=symbol, timeframe="5Min")
        .order_by("-timestamp")
        .values_list("close", flat=True)
        .first()
    )
    return close


def latest_bar(symbol: str) -> Bar | None:
    return Bar.objects.filter(symbol=symbol, timeframe="5Min").order_by("-timestamp").first()


def latest_bar_time(symbol: str | None = None) -> datetime | None:
    bars = Bar.objects.filter(timeframe="5Min")
    if symbol:
        bars = bars.filter(symbol=symbol)
    return bars.aggregate(latest=Max("timestamp"))["latest"]


def last_collected_at() -> datetime | None:
    return Bar.objects.aggregate(latest=Max("collected_at"))["latest"]


def market_now() -> datetime:
    """The market's 'now': wall time, or under the simulated clock the end of the newest bar."""
    if settings.MARKET_CLOCK == "simulated":
        latest = latest_bar_time()
        if latest is not None:
            return latest + calendar.BAR
    return calendar.utcnow()


def market_clock() -> dict:
    now = market_now()
    return {
        "clock": settings.MARKET_CLOCK,
        "market_time": now,
        "market_open": calendar.is_open(now - calendar.BAR)
        if settings.MARKET_CLOCK == "simulated"
        else calendar.is_open(now),
    }


def known_symbols() -> list[str]:
    stored = Bar.objects.values_list("symbol", flat=True).distinct()
    return sorted(set(settings.PRIMARY_SYMBOLS) | set(stored))


def bars_recent(symbol: str, count: int, timeframe: str = "5Min") -> pd.DataFrame:
    """The newest `count` bars of one symbol, oldest first, as a float DataFrame."""
    rows = list(
        Bar.objects.filter(symbol=symbol, timeframe=timeframe)
        .order_by("-timestamp")
        .values_list("timestamp", "open", "high", "low", "close", "volume")[:count]
    )
    rows.reverse()
    frame = pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close", "volume"])
    frame = frame.set_index(pd.DatetimeIndex(frame.pop("timestamp"), name="timestamp"))
    return frame.astype("float64")


def latest_quotes(symbols: list[str] | None = None) -> list[dict]:
    """Latest price per symbol with change since the previous bar, for /stock-data."""
    symbols = symbols or settings.PRIMARY_SYMBOLS
    out = []
    for symbol in symbols:
        last_two = list(
            Bar.objects.filter(symbol=symbol, timeframe="5Min").order_by("-timestamp")[:2]
        )
        if not last_two:
            continue
        bar = last_two[0]
        previous = last_two[1].close if len(last_two) > 1 else bar.open
        change = bar.close - previous
        out.append(
            {
                "symbol": symbol,
                "price": bar.close,
                "change": change,
                "change_pct": (change / previous * 100).quantize(Decimal("0.0001"))
                if previous
                else Decimal("0"),
                "volume": bar.volume,
                "timestamp": bar.timestamp + calendar.BAR,
                "collected_at": bar.collected_at,
            }
        )
    return out
