from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from marketdata import calendar, selectors
from marketdata.models import Bar
from marketdata.providers import get_provider
from marketdata.providers.base import BarData, BaseProvider
from streaming import events
from streaming.publish import publish

logger = logging.getLogger(__name__)

UPSERT_FIELDS = ["open", "high", "low", "close", "volume", "source", "collected_at"]


def bars_upsert(*, bars: Iterable[BarData], source: str, batch_size: int = 2000) -> int:
    """Insert or update bars on (symbol, timeframe, timestamp); running it twice changes nothing."""
    now = timezone.now()
    rows = [
        Bar(
            symbol=b.symbol,
            timeframe=b.timeframe,
            timestamp=b.timestamp,
            open=b.open,
            high=b.high,
            low=b.low,
            close=b.close,
            volume=b.volume,
            source=source,
            collected_at=now,
        )
        for b in bars
    ]
    if rows:
        Bar.objects.bulk_create(
            rows,
            batch_size=batch_size,
            update_conflicts=True,
            unique_fields=["symbol", "timeframe", "timestamp"],
            update_fields=UPSERT_FIELDS,
        )
    return len(rows)


@dataclass
class CollectResult:
    market_time: datetime | None = None
    new_bars: dict[str, BarData] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


def _collect_window(symbol: str) -> tuple[datetime, datetime]:
    """[start, end) of the bars to fetch for `symbol` in this collection."""
    latest = selectors.latest_bar_time(symbol)
    if settings.MARKET_CLOCK == "simulated":
        # The simulated market moves one bar per collection: past the newest bar of any symbol.
        newest = selectors.latest_bar_time()
        anchor = newest if newest else calendar.last_completed_bar_start(calendar.utcnow())
        target = calendar.next_bar_start(anchor) if newest else anchor
    else:
        target = calendar.last_completed_bar_start(calendar.utcnow())
    if latest is None:
        history = calendar.previous_bar_starts(target, settings.HISTORY_BARS_ON_START)
        start = history[0]
    else:
        start = latest + calendar.BAR
    return start, target + calendar.BAR


def bars_collect(
    *, symbols: list[str] | None = None, provider: BaseProvider | None = None
) -> CollectResult:
    """Fetch and store the bars each symbol is missing, then publish the newest of each."""
    provider = provider or get_provider()
    symbols = symbols or settings.PRIMARY_SYMBOLS
    result = CollectResult()
    windows = {symbol: _collect_window(symbol) for symbol in symbols}
    for symbol, (start, end) in windows.items():
        if start >= end:
            continue
        try:
            bars = provider.fetch_bars(symbol, "5Min", start, end)
        except Exception as exc:  # noqa: BLE001 - one provider failure must not stop the others
            logger.warning("collecting %s from %s failed: %s", symbol, provider.name, exc)
            result.errors[symbol] = str(exc)
            continue
        with transaction.atomic():
            bars_upsert(bars=bars, source=provider.name)
            if bars:
                result.new_bars[symbol] = bars[-1]
                publish(events.MARKET_DATA, bar_payload(bars[-1]))
    result.market_time = selectors.market_now()
    return result


def bar_payload(bar: BarData | Bar) -> dict:
    return {
        "symbol": bar.symbol,
        "timeframe": bar.timeframe,
        "timestamp": events.iso_utc(bar.timestamp),
        "open": str(bar.open),
        "high": str(bar.high),
        "low": str(bar.low),
        "close": str(bar.close),
        "volume": int(bar.volume),
    }
