"""The WordPress provider against a local site that answers as a TradingRobotPlug site does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from marketdata.models import Bar
from marketdata.providers.base import ProviderError
from marketdata.providers.wordpress import WordPressProvider
from marketdata.services import bars_collect
from tests.fakes.wordpress_site import FakeWordPressSite

# 26 Dec 2025, 15:30 in New York (EST, UTC-5) is 20:30 UTC.
NOW = datetime(2025, 12, 26, 21, 0, tzinfo=UTC)


@pytest.fixture
def site():
    site = FakeWordPressSite()
    site.now = NOW.astimezone(site.tz)
    yield site
    site.close()


def provider_for(site: FakeWordPressSite, **kwargs) -> WordPressProvider:
    return WordPressProvider(base_url=site.base_url, now=lambda: NOW, **kwargs)


def test_price_rows_become_ohlcv_bars_in_utc(site):
    site.add("SPY", "2025-12-26 15:30:00", "600.10", volume=100)
    site.add("SPY", "2025-12-26 15:31:10", 601.5, volume="50")
    site.add("SPY", "2025-12-26 15:33:00", "599.90")  # no volume: counts as 0
    site.add("SPY", "2025-12-26 15:34:59", "600.40", volume=25)
    site.add("SPY", "2025-12-26 15:35:00", "600.00")  # the next bar, volume missing entirely

    bars = provider_for(site).fetch_bars("SPY", "5Min", NOW - timedelta(hours=2), NOW)

    assert [b.timestamp for b in bars] == [
        datetime(2025, 12, 26, 20, 30, tzinfo=UTC),
        datetime(2025, 12, 26, 20, 35, tzinfo=UTC),
    ]
    first = bars[0]
    assert (first.open, first.high, first.low, first.close) == (
        Decimal("600.10"),
        Decimal("601.5"),
        Decimal("599.90"),
        Decimal("600.40"),
    )
    assert first.volume == 175
    assert bars[1].volume == 0 and bars[1].open == bars[1].close == Decimal("600.00")
    path, query = site.requests[-1]
    assert path.endswith("/stock-data/SPY") and int(query["days"]) >= 1


def test_site_timezone_setting_is_honoured(site):
    site.add("QQQ", "2025-07-01 10:00:00", "500")  # summer: New York is UTC-4
    ny = provider_for(site).fetch_bars("QQQ", "5Min", datetime(2025, 7, 1, tzinfo=UTC), NOW)
    assert ny[0].timestamp == datetime(2025, 7, 1, 14, 0, tzinfo=UTC)
    utc = provider_for(site, timezone="UTC").fetch_bars(
        "QQQ", "5Min", datetime(2025, 7, 1, tzinfo=UTC), NOW
    )
    assert utc[0].timestamp == datetime(2025, 7, 1, 10, 0, tzinfo=UTC)


def test_malformed_rows_are_logged_and_skipped(site, caplog):
    site.add("NVDA", "2025-12-26 15:00:00", "180.00")
    site.add("NVDA", "not a time", "181.00")
    site.add("NVDA", "2025-12-26 15:01:00", "-5")
    site.add("NVDA", "2025-12-26 15:02:00", "abc")
    site.add("NVDA", "2025-12-26 15:03:00", None)
    site.add("NVDA", "2025-12-26 15:04:00", "181.00", volume="lots")
    site.add_raw("NVDA", ["not", "an", "object"])
    site.add("NVDA", "2025-12-26 15:04:30", "179.50")

    bars = provider_for(site).fetch_bars("NVDA", "5Min", NOW - timedelta(hours=1), NOW)

    assert len(bars) == 1
    bar = bars[0]
    assert (bar.open, bar.high, bar.low, bar.close) == (
        Decimal("180.00"),
        Decimal("180.00"),
        Decimal("179.50"),
        Decimal("179.50"),
    )
    assert sum("Skipping malformed WordPress row" in r.message for r in caplog.records) == 6


def test_a_bar_still_filling_is_not_returned(site):
    site.add("TSLA", "2025-12-26 15:50:00", "400")
    site.add("TSLA", "2025-12-26 15:57:00", "401")  # 20:55 UTC bar ends at 21:00 == NOW
    site.add("TSLA", "2025-12-26 15:58:00", "402")
    later = NOW + timedelta(minutes=1)
    bars = WordPressProvider(
        base_url=site.base_url, now=lambda: later - timedelta(minutes=1)
    ).fetch_bars("TSLA", "5Min", NOW - timedelta(hours=1), later)
    assert [b.timestamp.minute for b in bars] == [50, 55]
    early = WordPressProvider(base_url=site.base_url, now=lambda: NOW - timedelta(minutes=2))
    assert [
        b.timestamp.minute
        for b in early.fetch_bars("TSLA", "5Min", NOW - timedelta(hours=1), later)
    ] == [50]


def test_latest_prices(site):
    site.add("SPY", "2025-12-26 15:55:00", "600")
    site.add("SPY", "2025-12-26 15:59:00", "601.25")
    site.add("QQQ", "2025-12-26 15:59:00", "520")
    quotes = provider_for(site).latest(["SPY", "QQQ", "TSLA"])
    assert quotes["SPY"].price == Decimal("601.25")
    assert quotes["SPY"].timestamp == datetime(2025, 12, 26, 20, 59, tzinfo=UTC)
    assert set(quotes) == {"SPY", "QQQ"}


def test_auth_header_is_sent(site):
    site.required_header = ("Authorization", "Bearer wp-secret")
    site.add("SPY", "2025-12-26 15:30:00", "600")
    with pytest.raises(ProviderError, match="401"):
        provider_for(site, auth_header="").fetch_bars("SPY", "5Min", NOW - timedelta(hours=1), NOW)
    bars = provider_for(site, auth_header="Authorization: Bearer wp-secret").fetch_bars(
        "SPY", "5Min", NOW - timedelta(hours=1), NOW
    )
    assert len(bars) == 1


def test_dead_site_is_a_provider_error(site):
    site.status = 500
    with pytest.raises(ProviderError, match="500"):
        provider_for(site).fetch_bars("SPY", "5Min", NOW - timedelta(hours=1), NOW)
    gone = WordPressProvider(base_url="http://127.0.0.1:1/wp-json/x", now=lambda: NOW, timeout=0.5)
    with pytest.raises(ProviderError, match="unreachable"):
        gone.latest(["SPY"])


@pytest.mark.django_db
def test_collection_from_a_wordpress_site_stores_bars_idempotently(site, settings, monkeypatch):
    from marketdata import calendar

    settings.MARKET_CLOCK = "exchange"
    monkeypatch.setattr(calendar, "utcnow", lambda: NOW)
    for minute in range(0, 30):
        site.add("SPY", f"2025-12-26 15:{minute:02d}:00", f"{600 + minute / 10:.2f}", volume=10)
    provider = provider_for(site)
    bars_collect(provider=provider, symbols=["SPY"])
    rows = list(
        Bar.objects.filter(symbol="SPY").values_list("timestamp", "close", "volume", "source")
    )
    assert rows[-1] == (
        datetime(2025, 12, 26, 20, 25, tzinfo=UTC),
        Decimal("602.90"),
        50,
        "wordpress",
    )
    assert len(rows) == 6
    bars_collect(provider=provider, symbols=["SPY"])
    assert (
        list(Bar.objects.filter(symbol="SPY").values_list("timestamp", "close", "volume", "source"))
        == rows
    )
