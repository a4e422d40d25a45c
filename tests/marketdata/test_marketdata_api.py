"""The market-data API as the WordPress site and the dashboard see it."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache as django_cache

from marketdata.models import Bar, SymbolFeed
from marketdata.services import bars_collect

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _clean_cache():
    django_cache.clear()
    yield
    django_cache.clear()


def test_stock_data_history_of_one_symbol(reader, market):
    body = reader.get("/api/v1/stock-data/spy?days=1").json()
    assert body["symbol"] == "SPY" and body["days"] == 1
    rows = body["stock_data"]
    assert rows and rows == sorted(rows, key=lambda r: r["timestamp"])
    newest = Bar.objects.filter(symbol="SPY").latest("timestamp")
    assert rows[-1]["price"] == str(newest.close)
    assert rows[-1]["timestamp"] == (newest.timestamp + timedelta(minutes=5)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    assert body["stale"] is False and body["age_seconds"] >= 0
    two_days = reader.get("/api/v1/stock-data/SPY?days=2").json()["stock_data"]
    assert len(two_days) > len(rows)


@pytest.mark.parametrize("prefix", ["/api/v1", "/wp-json/tradingrobotplug/v1"])
def test_market_data_rows_are_ohlcv_with_utc_z_timestamps(reader, market, prefix):
    body = reader.get(f"{prefix}/market-data?symbol=NVDA&timeframe=15Min&limit=4").json()
    assert body["symbol"] == "NVDA" and body["timeframe"] == "15Min" and body["count"] == 4
    for row in body["data"]:
        assert set(row) == {"timestamp", "open", "high", "low", "close", "volume"}
        assert row["timestamp"].endswith("Z")
        assert Decimal(row["low"]) <= Decimal(row["open"]) <= Decimal(row["high"])
    path_form = reader.get(f"{prefix}/market_data/NVDA?timeframe=15Min&limit=4").json()
    assert path_form["data"] == body["data"]


def test_chart_data_candles(reader, market):
    body = reader.get("/api/v1/chart-data?symbol=TSLA&timeframe=1Hour&days=2").json()
    assert body["timeframe"] == "1Hour" and body["candles"]
    times = [c["time"] for c in body["candles"]]
    assert times == sorted(times) and all(t % 3600 == 0 for t in times)


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("stock-data/SPY?days=0", "days"),
        ("stock-data/SPY?days=abc", "days"),
        ("stock-data/SPY?days=9999", "days"),
        ("market-data?timeframe=5Min", "symbol"),
        ("market-data?symbol=SPY&timeframe=2Min", "timeframe"),
        ("market-data?symbol=SPY&limit=-1", "limit"),
        ("market-data?symbol=SP%20Y", "symbol"),
        ("chart-data?symbol=SPY&days=1.5", "days"),
        ("market_data/%24%24%24", "symbol"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(reader, market, path, parameter):
    before = Bar.objects.count()
    response = reader.get(f"/api/v1/{path}")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert error["details"]["parameter"] == parameter and parameter in error["message"]
    assert Bar.objects.count() == before


@pytest.mark.parametrize(
    "path",
    ["stock-data/ZZZZ", "market-data?symbol=ZZZZ", "market_data/ZZZZ", "chart-data?symbol=ZZZZ"],
)
def test_unknown_symbol_is_404(reader, market, path):
    response = reader.get(f"/api/v1/{path}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_symbol"


def test_market_data_needs_a_key(anonymous, market):
    assert anonymous.get("/api/v1/market-data?symbol=SPY").status_code == 401


def _rows(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "age_seconds"}


def test_a_new_bar_invalidates_cached_answers(reader, market, django_capture_on_commit_callbacks):
    url = "/api/v1/market-data?symbol=SPY&limit=3"
    first = reader.get(url).json()
    assert reader.get(url).json()["data"] == first["data"]  # served from the cache
    with django_capture_on_commit_callbacks(execute=True):
        bars_collect()  # the simulated market moves one bar
    after = reader.get(url).json()
    assert after["data"][:2] == first["data"][1:]
    assert after["data"][-1]["timestamp"] > first["data"][-1]["timestamp"]
    latest = reader.get("/api/v1/stock-data").json()["stock_data"]
    spy = next(r for r in latest if r["symbol"] == "SPY")
    assert spy["price"] == after["data"][-1]["close"]


def test_cached_answers_do_not_query_bars(reader, market, django_assert_max_num_queries):
    url = "/api/v1/chart-data?symbol=QQQ&timeframe=15Min&days=2"
    body = reader.get(url).json()
    # Authentication, the symbol check, the clock and staleness: no bar scan or aggregation.
    with django_assert_max_num_queries(5) as captured:
        assert _rows(reader.get(url).json()) == _rows(body)
    assert not any("GROUP BY" in q["sql"] for q in captured.captured_queries)


def test_redis_down_answers_from_the_database(reader, market, settings):
    expected = reader.get("/api/v1/market-data?symbol=SPY&limit=5").json()
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    # (pytest-django's settings fixture resets Django's cache handlers on CACHES changes.)
    for path in (
        "market-data?symbol=SPY&limit=5",
        "stock-data",
        "stock-data/SPY",
        "chart-data?symbol=SPY",
    ):
        response = reader.get(f"/api/v1/{path}")
        assert response.status_code == 200, path
    assert _rows(reader.get("/api/v1/market-data?symbol=SPY&limit=5").json()) == _rows(expected)


def test_stale_flag_when_the_provider_stopped_answering(reader, market, settings):
    SymbolFeed.objects.filter(symbol="SPY").update(
        last_success_at=SymbolFeed.objects.get(symbol="SPY").last_success_at
        - timedelta(seconds=settings.STALE_AFTER_SECONDS + 5)
    )
    rows = {r["symbol"]: r for r in reader.get("/api/v1/stock-data").json()["stock_data"]}
    assert (
        rows["SPY"]["stale"] is True and rows["SPY"]["age_seconds"] > settings.STALE_AFTER_SECONDS
    )
    assert rows["QQQ"]["stale"] is False
    assert reader.get("/api/v1/stock-data/SPY").json()["stale"] is True
