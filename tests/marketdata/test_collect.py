from __future__ import annotations

from datetime import UTC, datetime

import pytest

from marketdata import calendar
from marketdata.models import Bar
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.selectors import market_now
from marketdata.services import bars_collect, bars_upsert

pytestmark = pytest.mark.django_db


def test_first_collection_stores_history_for_every_symbol(settings):
    result = bars_collect()
    assert sorted(result.new_bars) == sorted(settings.PRIMARY_SYMBOLS)
    for symbol in settings.PRIMARY_SYMBOLS:
        assert Bar.objects.filter(symbol=symbol).count() == settings.HISTORY_BARS_ON_START


def test_simulated_clock_moves_one_bar_per_collection():
    bars_collect()
    start = market_now()
    bars_collect()
    bars_collect()
    after = market_now()
    assert (
        after
        == calendar.next_bar_start(calendar.next_bar_start(start - calendar.BAR)) + calendar.BAR
    )
    assert Bar.objects.filter(symbol="SPY").count() == 156 + 2


def test_upsert_is_idempotent():
    provider = SyntheticProvider(seed=7)
    start = datetime(2025, 3, 3, 14, 30, tzinfo=UTC)
    bars = provider.fetch_bars("SPY", "5Min", start, start.replace(hour=21))
    bars_upsert(bars=bars, source="synthetic")
    first = list(Bar.objects.values_list("timestamp", "close"))
    bars_upsert(bars=bars, source="synthetic")
    assert list(Bar.objects.values_list("timestamp", "close")) == first
    assert len(first) == 78


def test_synthetic_bars_are_deterministic_and_consistent():
    start = datetime(2025, 11, 24, tzinfo=UTC)
    end = datetime(2025, 12, 2, tzinfo=UTC)
    one = SyntheticProvider(seed=1).fetch_bars("TSLA", "5Min", start, end)
    two = SyntheticProvider(seed=1).fetch_bars("TSLA", "5Min", start, end)
    assert one == two
    # Thanksgiving (27th) has no bars; the day after closes early at 13:00 ET (42 bars).
    days = {}
    for bar in one:
        days.setdefault(bar.timestamp.date(), []).append(bar)
        assert bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high
        assert bar.volume > 0
    assert datetime(2025, 11, 27).date() not in days
    assert len(days[datetime(2025, 11, 28).date()]) == 42
    assert len(days[datetime(2025, 11, 24).date()]) == 78
    assert SyntheticProvider(seed=2).fetch_bars("TSLA", "5Min", start, end) != one
