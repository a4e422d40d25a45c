"""The live price store (realtime.prices) and who reads it: the paper broker fills a market
order at a fresh live price, the risk checks use the same price, and an old one is ignored."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from marketdata.selectors import last_price
from realtime.prices import LivePrice, price_fresh, price_get, prices_get, prices_record
from streaming import redis as stream_redis
from tests.helpers import submit
from tests.realtime.quotes_support import live_prices_forgotten  # noqa: F401 - fixture
from trading.models import Order

pytestmark = pytest.mark.usefixtures("live_prices_forgotten")


def _live(symbol: str, price: str, *, age: float = 0.0, **extra) -> LivePrice:
    return LivePrice(
        symbol=symbol,
        price=Decimal(price),
        timestamp=datetime.now(UTC),
        received_at=time.time() - age,
        **extra,
    )


def test_recorded_prices_read_back_with_their_time_bid_and_ask(db):
    stamp = datetime(2026, 3, 2, 15, 0, 1, 250000, tzinfo=UTC)
    assert prices_record(
        [
            LivePrice("SPY", Decimal("501.25"), stamp, time.time(), Decimal("501.2"), None, 300),
            _live("QQQ", "400.10"),
        ]
    )
    got = prices_get(["spy", "QQQ", "TSLA"])
    assert set(got) == {"SPY", "QQQ"}  # TSLA has none
    spy = got["SPY"]
    assert (spy.price, spy.timestamp, spy.bid, spy.ask, spy.size) == (
        Decimal("501.25"),
        stamp,
        Decimal("501.2"),
        None,
        300,
    )
    assert 0 <= spy.age() < 5


def test_a_price_older_than_the_setting_is_not_fresh(db, settings):
    settings.LIVE_PRICE_MAX_AGE_SECONDS = 10
    prices_record([_live("SPY", "500", age=11), _live("QQQ", "400", age=2)])
    assert price_get("SPY") is not None
    assert price_fresh("SPY") is None
    assert price_fresh("QQQ").price == Decimal("400")
    settings.LIVE_PRICE_MAX_AGE_SECONDS = 0  # 0 turns live pricing off
    assert price_fresh("QQQ") is None


def test_paper_market_order_fills_at_the_fresh_live_price(ready, trader, settings):
    settings.PAPER_SLIPPAGE_BPS = Decimal("10")
    close = last_price("SPY")
    live = close + Decimal("1.37")
    prices_record([_live("SPY", str(live))])

    response = submit(trader, qty="2")
    assert response.status_code == 201, response.content
    order = Order.objects.get(pk=response.json()["id"])
    assert order.status == "filled"
    # The live price plus 10 bps of slippage, not the last bar's close.
    assert order.filled_avg_price == (live * Decimal("1.001")).quantize(Decimal("0.0001"))


def test_paper_fill_falls_back_to_the_last_bar_when_the_live_price_is_old(ready, trader, settings):
    settings.LIVE_PRICE_MAX_AGE_SECONDS = 5
    close = last_price("SPY")
    prices_record([_live("SPY", str(close + 50), age=6)])

    response = submit(trader, side="buy", qty="1")
    assert response.status_code == 201, response.content
    assert Order.objects.get(pk=response.json()["id"]).filled_avg_price == close


def test_risk_check_prices_the_order_at_the_live_price(ready, trader, settings):
    close = last_price("SPY")
    # 10 shares: allowed at the close, over the limit at a live price 20% higher.
    settings.RISK_MAX_ORDER_NOTIONAL = close * 10 + 1
    prices_record([_live("SPY", str((close * Decimal("1.2")).quantize(Decimal("0.01"))))])
    refused = submit(trader, qty="10")
    assert refused.status_code == 422, refused.content
    assert refused.json()["error"]["code"] == "max_order_notional"
    assert Order.objects.count() == 0

    prices_record([_live("SPY", str(close), age=0)])
    assert submit(trader, qty="10").status_code == 201


def test_redis_down_means_no_live_price_and_fills_at_the_bar(ready, trader, settings):
    close = last_price("SPY")
    prices_record([_live("SPY", str(close + 3))])
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    stream_redis.client.cache_clear()
    try:
        assert prices_record([_live("SPY", "1")]) is False  # dropped, no exception
        assert prices_get(["SPY"]) == {}
        assert price_fresh("SPY") is None
        response = submit(trader)
        assert response.status_code == 201, response.content
        assert Order.objects.get(pk=response.json()["id"]).filled_avg_price == close
    finally:
        stream_redis.client.cache_clear()
