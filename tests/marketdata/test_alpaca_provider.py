"""AlpacaProvider against the spec-driven fake Alpaca on 127.0.0.1 (alpaca-py is not mocked)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from marketdata.providers.alpaca import AlpacaProvider
from marketdata.providers.base import ProviderError
from tests.fakes.alpaca_fixtures import fake_alpaca  # noqa: F401
from tests.fakes.alpaca_server import API_KEY, SECRET_KEY, FakeAlpaca

T0 = datetime(2024, 1, 2, 14, 30, tzinfo=UTC)


def make_provider(fake: FakeAlpaca, **kwargs) -> AlpacaProvider:
    return AlpacaProvider(
        api_key=API_KEY, secret_key=SECRET_KEY, url_override=fake.data_url, **kwargs
    )


@pytest.fixture
def provider(fake_alpaca: FakeAlpaca) -> AlpacaProvider:  # noqa: F811
    return make_provider(fake_alpaca)


def test_bars_follow_pages_and_come_back_in_order_as_decimals(fake_alpaca, provider):  # noqa: F811
    fake_alpaca.bars_page_size = 40
    rows = fake_alpaca.seed_bars("SPY", start=T0, count=130, base_price="470.00")
    fake_alpaca.seed_bars("QQQ", start=T0, count=10)  # another symbol must not leak in

    bars = provider.fetch_bars("SPY", "5Min", T0, T0 + timedelta(days=1))

    pages = fake_alpaca.requests_to("GET", "/v2/stocks/bars")
    assert len(pages) == 4  # 40 + 40 + 40 + 10
    assert "page_token" not in pages[0].query
    assert all(p.query.get("page_token") for p in pages[1:])
    assert {p.query["timeframe"] for p in pages} == {"5Min"}
    assert {p.query["symbols"] for p in pages} == {"SPY"}

    assert len(bars) == 130
    assert [b.timestamp for b in bars] == [T0 + timedelta(minutes=5 * i) for i in range(130)]
    first, last = bars[0], bars[-1]
    assert (first.open, first.high, first.low, first.close) == (
        Decimal("470"),
        Decimal("470.13"),
        Decimal("469.9"),
        Decimal("470.03"),
    )
    assert first.volume == 1000
    assert last.open == Decimal("470.00") + Decimal("0.05") * 129
    assert all(isinstance(b.close, Decimal) for b in bars)
    assert all(
        b.timestamp.tzinfo is not None and b.timestamp.utcoffset() == timedelta(0) for b in bars
    )
    assert {b.symbol for b in bars} == {"SPY"}
    assert {b.timeframe for b in bars} == {"5Min"}
    assert len(rows) == 130
    assert fake_alpaca.violations == []


def test_bars_end_is_exclusive(fake_alpaca, provider):  # noqa: F811
    fake_alpaca.seed_bars("SPY", start=T0, count=10)

    bars = provider.fetch_bars("SPY", "5Min", T0, T0 + timedelta(minutes=25))

    # Alpaca's end is inclusive (the bar at +25 min comes back); ours is not.
    assert [b.timestamp for b in bars] == [T0 + timedelta(minutes=5 * i) for i in range(5)]


def test_no_bars_is_an_empty_list(fake_alpaca, provider):  # noqa: F811
    assert provider.fetch_bars("SPY", "5Min", T0, T0 + timedelta(hours=1)) == []
    assert fake_alpaca.violations == []


def test_naive_datetimes_are_taken_as_utc(fake_alpaca, provider):  # noqa: F811
    fake_alpaca.seed_bars("SPY", start=T0, count=3)

    bars = provider.fetch_bars("SPY", "5Min", T0.replace(tzinfo=None), datetime(2024, 1, 3))

    assert len(bars) == 3


def test_malformed_bars_are_logged_and_skipped(fake_alpaca, provider, caplog):  # noqa: F811
    fake_alpaca.seed_bars("SPY", start=T0, count=3)
    bad = [
        # low above high
        {
            "t": "2024-01-02T14:45:00Z",
            "o": 10.0,
            "h": 9.0,
            "l": 11.0,
            "c": 10.0,
            "v": 5,
            "n": 1,
            "vw": 10.0,
        },
        # close missing
        {"t": "2024-01-02T14:50:00Z", "o": 10.0, "h": 11.0, "l": 9.0, "v": 5, "n": 1, "vw": 10.0},
        # negative price
        {
            "t": "2024-01-02T14:55:00Z",
            "o": -1.0,
            "h": 11.0,
            "l": 9.0,
            "c": 10.0,
            "v": 5,
            "n": 1,
            "vw": 10.0,
        },
        # no timestamp
        {"o": 10.0, "h": 11.0, "l": 9.0, "c": 10.0, "v": 5, "n": 1, "vw": 10.0},
    ]
    fake_alpaca.add_bars("SPY", bad, malformed=True)

    with caplog.at_level(logging.WARNING, logger="marketdata.providers.alpaca"):
        bars = provider.fetch_bars("SPY", "5Min", T0, T0 + timedelta(hours=1))

    assert [b.timestamp for b in bars] == [T0 + timedelta(minutes=5 * i) for i in range(3)]
    assert len([r for r in caplog.records if "Skipping malformed" in r.message]) == 4
    # The fake flags only the rows the test broke on purpose (the missing close, not the
    # prices: the schema cannot say low <= high).
    assert fake_alpaca.violations == []


def test_upstream_error_is_provider_error(fake_alpaca, provider):  # noqa: F811
    fake_alpaca.fail_next(
        "GET", "/v2/stocks/bars", status=403, body={"message": "subscription does not permit"}
    )

    with pytest.raises(ProviderError, match="403"):
        provider.fetch_bars("SPY", "5Min", T0, T0 + timedelta(hours=1))


def test_error_on_a_later_page_is_provider_error(fake_alpaca, provider):  # noqa: F811
    fake_alpaca.bars_page_size = 5
    fake_alpaca.seed_bars("SPY", start=T0, count=20)
    fake_alpaca.fail_next("GET", "/v2/stocks/bars", status=500, skip=1)

    with pytest.raises(ProviderError):
        provider.fetch_bars("SPY", "5Min", T0, T0 + timedelta(hours=2))

    # No partial answer: the collection task retries the whole window.
    assert [r.status for r in fake_alpaca.requests_to("GET", "/v2/stocks/bars")] == [200, 500]


def test_timeout_is_provider_error(fake_alpaca):  # noqa: F811
    provider = make_provider(fake_alpaca, timeout=0.3)
    fake_alpaca.delay_next("GET", "/v2/stocks/bars", 2.0)

    with pytest.raises(ProviderError):
        provider.fetch_bars("SPY", "5Min", T0, T0 + timedelta(hours=1))


def test_rate_limit_is_provider_error_without_sdk_sleeping(fake_alpaca, provider):  # noqa: F811
    fake_alpaca.fail_next("GET", "/v2/stocks/trades/latest", status=429)

    with pytest.raises(ProviderError, match="429"):
        provider.latest(["SPY"])

    assert len(fake_alpaca.requests_to("GET", "/v2/stocks/trades/latest")) == 1


def test_bad_timeframe_is_provider_error(provider):
    with pytest.raises(ProviderError, match="timeframe"):
        provider.fetch_bars("SPY", "5 minutes", T0, T0 + timedelta(hours=1))


def test_feed_is_sent_when_configured(fake_alpaca):  # noqa: F811
    provider = make_provider(fake_alpaca, feed="iex")

    provider.fetch_bars("SPY", "5Min", T0, T0 + timedelta(hours=1))

    (request,) = fake_alpaca.requests_to("GET", "/v2/stocks/bars")
    assert request.query["feed"] == "iex"
    assert fake_alpaca.violations == []


def test_latest_uses_trades_then_quote_midpoint(fake_alpaca, provider):  # noqa: F811
    fake_alpaca.set_latest_trade("SPY", "471.37", t="2024-01-02T20:59:59.123456Z")
    fake_alpaca.set_latest_quote("NVDA", bid="495.10", ask="495.20", t="2024-01-02T20:59:58Z")

    quotes = provider.latest(["SPY", "NVDA", "NOPE"])

    assert set(quotes) == {"SPY", "NVDA"}
    assert quotes["SPY"].price == Decimal("471.37")
    assert quotes["SPY"].timestamp == datetime(2024, 1, 2, 20, 59, 59, 123456, tzinfo=UTC)
    assert quotes["NVDA"].price == Decimal("495.15")
    assert quotes["NVDA"].timestamp == datetime(2024, 1, 2, 20, 59, 58, tzinfo=UTC)
    (trades,) = fake_alpaca.requests_to("GET", "/v2/stocks/trades/latest")
    assert trades.query["symbols"] == "SPY,NVDA,NOPE"
    (quotes_req,) = fake_alpaca.requests_to("GET", "/v2/stocks/quotes/latest")
    assert quotes_req.query["symbols"] == "NVDA,NOPE"
    assert fake_alpaca.violations == []


def test_latest_of_nothing_asks_nothing(fake_alpaca, provider):  # noqa: F811
    assert provider.latest([]) == {}
    assert fake_alpaca.requests == []


def test_latest_error_is_provider_error(fake_alpaca, provider):  # noqa: F811
    fake_alpaca.fail_next("GET", "/v2/stocks/trades/latest", status=500)

    with pytest.raises(ProviderError):
        provider.latest(["SPY"])


def test_defaults_come_from_settings(fake_alpaca, settings):  # noqa: F811
    settings.ALPACA_API_KEY = API_KEY
    settings.ALPACA_SECRET_KEY = SECRET_KEY
    settings.ALPACA_DATA_URL_OVERRIDE = fake_alpaca.data_url
    fake_alpaca.set_latest_trade("SPY", "470")

    assert AlpacaProvider().latest(["SPY"])["SPY"].price == Decimal("470")


def test_missing_keys_fail_at_start_up_naming_the_setting(settings):
    from django.core.exceptions import ImproperlyConfigured

    settings.ALPACA_API_KEY = ""

    with pytest.raises(ImproperlyConfigured, match="ALPACA_API_KEY"):
        AlpacaProvider()


def test_fake_flags_a_malformed_bar_nobody_asked_for(fake_alpaca, provider):  # noqa: F811
    fake_alpaca.add_bars("SPY", [{"t": "2024-01-02T14:30:00Z", "o": 1.0}])

    assert provider.fetch_bars("SPY", "5Min", T0, T0 + timedelta(hours=1)) == []
    assert any("'h' is a required property" in v for v in fake_alpaca.violations)
