"""Cached answers of GET status, stock-data and trades (tradingrobot.api.cache): the same bytes as
computed ones, and never older than the data they show: a fill, a halt, a resume, a new bar or a
renamed strategy shows at the next request, in this process or another."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.cache import cache

from marketdata.services import bars_collect
from strategies.models import StrategyConfig
from tests.conftest import child_database_url
from trading.models import ApiKey, Trade
from trading.services import order_submit, trading_halt, trading_resume
from tradingrobot.api import cache as api_cache

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
WP = "/wp-json/tradingrobotplug/v1"


@pytest.fixture
def fills(session, market):
    for symbol, qty in (("SPY", "1"), ("QQQ", "2"), ("SPY", "3")):
        order_submit(symbol=symbol, side="buy", qty=Decimal(qty))


def _computed(settings, client, path: str) -> bytes:
    """The answer with caching off: what every cached answer must equal."""
    seconds = settings.API_STATUS_CACHE_SECONDS, settings.API_RESPONSE_CACHE_SECONDS
    settings.API_STATUS_CACHE_SECONDS = settings.API_RESPONSE_CACHE_SECONDS = 0
    try:
        return client.get(path).content
    finally:
        settings.API_STATUS_CACHE_SECONDS, settings.API_RESPONSE_CACHE_SECONDS = seconds


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/trades",
        "/api/v1/trades?symbol=spy&ordering=qty",
        "/api/v1/trades?limit=1&offset=1&ordering=-qty",
        "/api/v1/trades?limit=2",
        f"{WP}/trades?limit=1",
        "/api/v1/trades?since=2000-01-01&strategy=none",
        "/api/v1/status",
        "/api/status",
        f"{WP}/status",
    ],
)
def test_a_cached_answer_is_the_computed_answer(settings, reader, fills, path):
    first = reader.get(path)
    hit = reader.get(path)
    assert first.status_code == hit.status_code == 200
    assert hit.content == first.content == _computed(settings, reader, path)
    assert hit["Content-Type"] == first["Content-Type"] == "application/json"


def test_a_cached_read_does_not_touch_the_database(
    reader, fills, django_assert_num_queries, settings
):
    settings.API_STATUS_CACHE_SECONDS = 600  # a loaded machine must not outlast the cache
    paths = ("/api/v1/trades?limit=2", "/api/v1/status", "/api/v1/stock-data")
    for path in paths:
        reader.get(path)
    with django_assert_num_queries(0):
        for path in paths:
            assert reader.get(path).status_code == 200


def test_cached_stock_data_is_the_computed_answer(settings, reader, market):
    def without_ages(body: dict) -> list[dict]:
        return [{k: v for k, v in row.items() if k != "age_seconds"} for row in body["stock_data"]]

    first = reader.get("/api/v1/stock-data").json()
    hit = reader.get("/api/v1/stock-data").json()
    computed = _computed(settings, reader, "/api/v1/stock-data")
    assert hit == first
    # Ages are whole seconds and may tick between the two requests.
    import json

    assert without_ages(hit) == without_ages(json.loads(computed))
    assert [row["symbol"] for row in hit["stock_data"]] == settings.PRIMARY_SYMBOLS


def test_each_query_host_and_scheme_gets_its_own_answer(reader, fills):
    spy = reader.get("/api/v1/trades?symbol=SPY").json()
    qqq = reader.get("/api/v1/trades?symbol=QQQ").json()
    assert {t["symbol"] for t in spy["results"]} == {"SPY"} and spy["count"] == 2
    assert {t["symbol"] for t in qqq["results"]} == {"QQQ"} and qqq["count"] == 1
    page = reader.get("/api/v1/trades?limit=1").json()
    assert page["next"].startswith("http://testserver/")
    other_host = reader.get("/api/v1/trades?limit=1", HTTP_HOST="localhost").json()
    assert other_host["next"].startswith("http://localhost/")  # links carry the asked host
    over_tls = reader.get("/api/v1/trades?limit=1", secure=True).json()
    assert over_tls["next"].startswith("https://testserver/")


def test_a_new_fill_shows_in_trades_at_once(reader, trader, fills):
    for path in ("/api/v1/trades", "/api/v1/trades?symbol=NVDA", "/api/v1/trades?limit=1"):
        reader.get(path)  # cached now
    response = trader.post(
        "/api/v1/orders/submit", {"symbol": "NVDA", "side": "buy", "qty": "4"}, format="json"
    )
    assert response.status_code == 201 and response.json()["status"] == "filled"
    assert reader.get("/api/v1/trades").json()["count"] == 4
    nvda = reader.get("/api/v1/trades?symbol=NVDA").json()["results"]
    assert [(t["symbol"], t["qty"]) for t in nvda] == [("NVDA", "4.000000")]
    assert reader.get("/api/v1/trades?limit=1").json()["results"][0]["symbol"] == "NVDA"
    # The same through the service a strategy or the worker calls.
    order_submit(symbol="QQQ", side="buy", qty=Decimal("5"))
    assert reader.get("/api/v1/trades").json()["count"] == 5


def test_a_renamed_strategy_shows_in_trades_at_once(reader, session, market):
    config = StrategyConfig.objects.create(name="trend", plugin="sma_crossover", symbols=["SPY"])
    order_submit(symbol="SPY", side="buy", qty=Decimal("1"), strategy_config=config)
    assert reader.get("/api/v1/trades").json()["results"][0]["strategy"] == "trend"
    config.name = "trend-v2"
    config.save()
    assert reader.get("/api/v1/trades").json()["results"][0]["strategy"] == "trend-v2"


def test_deleted_fills_leave_trades_at_once(reader, fills):
    assert reader.get("/api/v1/trades").json()["count"] == 3
    Trade.objects.filter(symbol="QQQ").delete()
    assert reader.get("/api/v1/trades").json()["count"] == 2


def test_halt_and_resume_show_in_status_at_once(reader, trader, session, market):
    paths = ("/api/v1/status", "/api/status", f"{WP}/status")
    assert all(reader.get(p).json()["halted"] is False for p in paths)  # cached now
    trading_halt(reason="news", by="ops")
    for path in paths:
        body = reader.get(path).json()
        assert body["halted"] is True and body["kill_switch"]["reason"] == "news", path
        assert body["trading_enabled"] is False
    assert trader.post("/api/v1/resume_trading", {}, format="json").status_code == 200
    assert all(reader.get(p).json()["halted"] is False for p in paths)
    assert trader.post("/api/v1/stop_trading", {"reason": "api"}, format="json").status_code == 200
    assert reader.get("/api/v1/status").json()["kill_switch"]["reason"] == "api"
    trading_resume(by="ops")
    assert reader.get("/api/v1/status").json()["trading_enabled"] is True


def test_a_new_order_and_a_stopped_session_show_in_status_at_once(reader, trader, session, market):
    settings_open_orders = reader.get("/api/v1/status").json()["open_orders"]
    assert settings_open_orders == 0
    response = trader.post(
        "/api/v1/orders/submit",
        {"symbol": "SPY", "side": "buy", "qty": "1", "type": "limit", "limit_price": "1.00"},
        format="json",
    )
    assert response.status_code == 201 and response.json()["status"] in ("new", "accepted")
    assert reader.get("/api/v1/status").json()["open_orders"] == 1
    trader.post(f"/api/v1/sessions/{session.pk}/stop", {}, format="json")
    body = reader.get("/api/v1/status").json()
    assert body["session"]["status"] == "stopped" and body["trading_enabled"] is False
    assert body["open_orders"] == 0  # stopping the session canceled it


def test_new_bars_show_in_stock_data_and_status_at_once(
    reader, session, market, django_capture_on_commit_callbacks
):
    before = reader.get("/api/v1/stock-data").json()["stock_data"]
    status_before = reader.get("/api/v1/status").json()
    with django_capture_on_commit_callbacks(execute=True):
        bars_collect()  # the simulated clock: one more 5-minute bar per symbol
    after = reader.get("/api/v1/stock-data").json()["stock_data"]
    assert [row["timestamp"] for row in after] != [row["timestamp"] for row in before]
    assert all(a["timestamp"] > b["timestamp"] for a, b in zip(after, before, strict=True))
    # Status follows bars within API_STATUS_CACHE_SECONDS (its market clock), not at once.
    time.sleep(1.05)
    assert reader.get("/api/v1/status").json()["market_time"] > status_before["market_time"]


def test_an_invalidation_that_never_came_is_outlived_by_the_interval(settings, reader, fills):
    """A change no signal announces (QuerySet.update, or a stamp write lost to a Redis outage)
    shows once API_RESPONSE_CACHE_SECONDS have passed."""
    settings.API_RESPONSE_CACHE_SECONDS = 1
    assert reader.get("/api/v1/trades?symbol=QQQ").json()["results"][0]["qty"] == "2.000000"
    Trade.objects.filter(symbol="QQQ").update(qty=Decimal("7"))
    time.sleep(1.05)
    assert reader.get("/api/v1/trades?symbol=QQQ").json()["results"][0]["qty"] == "7.000000"


def test_without_redis_answers_are_computed_each_time(settings, reader, fills):
    reader.get("/api/v1/trades")
    settings.CACHES = {
        "default": {
            "BACKEND": "tradingrobot.cache.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    order_submit(symbol="NVDA", side="buy", qty=Decimal("1"))  # its invalidation is lost
    for path in ("/api/v1/trades", "/api/v1/status", "/api/v1/stock-data"):
        assert reader.get(path).status_code == 200, path
    assert reader.get("/api/v1/trades").json()["count"] == 4


def test_cached_reads_are_still_rate_limited(settings, reader, trader, fills):
    settings.API_THROTTLE_RATE = "3/minute"
    codes = [reader.get("/api/v1/trades").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    assert reader.get("/api/v1/status").status_code == 429
    assert trader.get("/api/v1/trades").status_code == 200  # its own budget


def test_cached_reads_still_check_the_key_and_its_scope(reader, anonymous, fills):
    assert reader.get("/api/v1/trades").status_code == 200  # cached now
    assert anonymous.get("/api/v1/trades").status_code == 401
    anonymous.credentials(HTTP_AUTHORIZATION="Bearer not-a-key")
    assert anonymous.get("/api/v1/trades").status_code == 401
    key = ApiKey.objects.get(name="reader")
    key.revoked = True
    key.save()
    assert reader.get("/api/v1/trades").status_code == 401


def test_a_key_revoked_by_another_process_is_refused_within_the_interval(settings, reader):
    """Another process's revocation sends no signal here: the remembered verification runs
    out after API_KEY_CACHE_SECONDS."""
    settings.API_KEY_CACHE_SECONDS = 1
    assert reader.get("/api/v1/positions").status_code == 200
    ApiKey.objects.filter(name="reader").update(revoked=True)
    time.sleep(1.05)
    assert reader.get("/api/v1/positions").status_code == 401


def test_the_rate_limit_survives_a_redis_script_flush(settings, reader, fills):
    """A Redis restart forgets loaded scripts: the counter's script is loaded again."""
    settings.API_THROTTLE_RATE = "100/minute"
    assert reader.get("/api/v1/trades").status_code == 200
    cache._cache.get_client(write=True).script_flush()
    assert reader.get("/api/v1/trades").status_code == 200
    assert reader.get("/api/v1/status").status_code == 200


def test_stamps_are_never_reused_after_redis_forgets_them(reader, fills):
    """A flushed Redis must not bring back a stamp some process holds answers for."""
    reader.get("/api/v1/trades")
    key = api_cache.stamp_key(api_cache.TRADES)
    before = cache.get(key)
    cache.clear()
    reader.get("/api/v1/trades")
    assert cache.get(key) not in (None, before)


@pytest.mark.django_db(transaction=True)
def test_a_halt_in_another_process_shows_here_at_once(settings, reader, session, market):
    """The worker or an admin halts: this process's cached status must not say otherwise."""
    settings.API_STATUS_CACHE_SECONDS = 600  # only the invalidation can make it show
    assert reader.get("/api/v1/status").json()["halted"] is False  # cached now
    env = {
        **os.environ,
        "DATABASE_URL": child_database_url(),
        "CACHE_PREFIX": cache.key_prefix,
        "DJANGO_SETTINGS_MODULE": "tradingrobot.settings",
    }
    from django.conf import settings as django_settings

    env["REDIS_URL"] = django_settings.CACHES["default"]["LOCATION"]
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c"]
        + ["from trading.services import trading_halt; trading_halt(reason='from the worker')"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    body = reader.get("/api/v1/status").json()
    assert body["halted"] is True and body["kill_switch"]["reason"] == "from the worker"


@pytest.mark.django_db(transaction=True)
def test_a_read_during_the_halting_transaction_does_not_outlive_its_commit(
    settings, reader, session, market
):
    """A request served while the halt is not yet committed sees (and may cache) the old state;
    the halt must still show once it commits."""
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connection, transaction

    settings.API_STATUS_CACHE_SECONDS = 600  # only the invalidation can make it show

    def concurrent_request() -> dict:
        try:  # another thread: another database connection, outside our transaction
            return reader.get("/api/v1/status").json()
        finally:
            connection.close()

    with transaction.atomic():
        trading_halt(reason="close call")
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(concurrent_request).result()["halted"] is False
    assert reader.get("/api/v1/status").json()["halted"] is True
