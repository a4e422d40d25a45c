"""MarketFeed: ticks become the live price, the forming bar and `market_data` events of kind
"quote" and "bar_forming", at most QUOTE_EVENTS_PER_SECOND per symbol, the latest value winning;
a Redis outage drops them without stopping the feed."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from realtime.feed import MarketFeed, clean_price, clean_size
from realtime.prices import price_get
from streaming import redis as stream_redis
from tests.realtime.quotes_support import listening, live_prices_forgotten  # noqa: F401

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("live_prices_forgotten")]

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # a bar start (10:00 New York)


async def _drive(feed: MarketFeed, ticks, *, spread: float, settle: float = 0.6) -> None:
    """Run the feed's writer while `ticks` (callables) are fed over `spread` seconds."""
    writer = asyncio.create_task(feed.run())
    pause = spread / max(len(ticks), 1)
    for tick in ticks:
        tick()
        await asyncio.sleep(pause)
    await asyncio.sleep(settle)
    feed.stop()
    await asyncio.wait_for(writer, 5)


def test_a_burst_of_100_ticks_in_100_ms_is_a_few_events_and_the_last_price_wins():
    feed = MarketFeed(events_per_second=4)
    prices = [Decimal("500") + Decimal(i) / 100 for i in range(100)]
    ticks = [
        (lambda p=p, i=i: feed.trade("SPY", p, 10, T0 + timedelta(milliseconds=i)))
        for i, p in enumerate(prices)
    ]
    with listening() as listener:
        started = time.monotonic()
        asyncio.run(_drive(feed, ticks, spread=0.1))
        elapsed = time.monotonic() - started
        listener.collect(0.5)
    quotes = listener.payloads("quote", "SPY")
    # 4 per second: the first at once, then one per 250 ms; the burst plus settling ~0.7 s.
    assert 2 <= len(quotes) <= 1 + int(elapsed * 4) + 1, [q["price"] for q in quotes]
    assert quotes[-1]["price"] == "500.99"
    assert Decimal(quotes[0]["price"]) == 500  # the first goes out at once
    bars = listener.payloads("bar_forming", "SPY")
    assert 2 <= len(bars) <= 1 + int(elapsed * 4) + 1
    assert price_get("SPY").price == Decimal("500.99")


def test_all_symbols_go_out_together_at_the_rate():
    """Every symbol that changed goes out in the same publish (one message per client socket),
    at most `events_per_second` times a second, each with its own per-symbol seq stream."""
    feed = MarketFeed(events_per_second=2)
    ticks = []
    for i in range(20):
        for symbol in ("SPY", "QQQ"):
            ticks.append(
                lambda s=symbol, i=i: feed.trade(s, Decimal(100 + i), 1, T0 + timedelta(seconds=i))
            )
    with listening() as listener:
        asyncio.run(_drive(feed, ticks, spread=1.0, settle=0.6))
        listener.collect(0.5)
    for symbol in ("SPY", "QQQ"):
        quotes = listener.payloads("quote", symbol)
        # 1.6 s at 2 per second: at most 4 (first, +0.5, +1.0, +1.5), whatever the tick count.
        assert 2 <= len(quotes) <= 4, (symbol, len(quotes))
        assert quotes[-1]["price"] == "119"
    seqs = [e["seq"] for e in listener.events if e["payload"]["symbol"] == "SPY"]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # one seq stream per symbol
    # One publish per writer tick, not one per symbol and kind: at most 4 at 2 per second, plus
    # the last one when the feed stops; each has at most one event per (kind, symbol), and
    # those that came while both symbols moved carry both.
    assert len(listener.batches) <= 5
    for batch in listener.batches:
        keys = [(e["payload"]["kind"], e["payload"]["symbol"]) for e in batch]
        assert len(keys) == len(set(keys))
    assert any(
        {e["payload"]["symbol"] for e in batch} == {"SPY", "QQQ"} for batch in listener.batches
    )


def test_forming_bar_follows_the_trades_of_its_5_minute_bucket():
    feed = MarketFeed(events_per_second=50)
    trades = [("101.5", 10, 0), ("103.25", 5, 40), ("99.75", 7, 90), ("100.5", 3, 299)]
    ticks = [
        (lambda p=p, n=n, s=s: feed.trade("QQQ", Decimal(p), n, T0 + timedelta(seconds=s)))
        for p, n, s in trades
    ]
    with listening() as listener:
        asyncio.run(_drive(feed, ticks, spread=0.2, settle=0.3))
        listener.collect(0.4)
    last = listener.payloads("bar_forming", "QQQ")[-1]
    assert last == {
        "kind": "bar_forming",
        "symbol": "QQQ",
        "timeframe": "5Min",
        "timestamp": "2026-03-02T15:00:00Z",
        "open": "101.5",
        "high": "103.25",
        "low": "99.75",
        "close": "100.5",
        "volume": 25,
    }
    # The next bucket starts a new bar at its first trade; a late trade of the old one is left out
    # of both (the collector's stored bar is the final word on it).
    feed2 = MarketFeed(events_per_second=50)
    feed2.trade("QQQ", Decimal("100"), 1, T0 + timedelta(seconds=299))
    feed2.trade("QQQ", Decimal("104"), 2, T0 + timedelta(seconds=300))
    feed2.trade("QQQ", Decimal("90"), 9, T0 + timedelta(seconds=200))
    bar = feed2.forming_bar("QQQ")
    assert (bar.start, bar.open, bar.low, bar.volume) == (int(T0.timestamp()) + 300, 104, 104, 2)
    assert feed2.live("QQQ").price == Decimal("104")  # the late trade did not move the price


def test_quotes_set_bid_ask_and_the_midpoint_only_before_any_trade():
    feed = MarketFeed(events_per_second=50)
    ticks = [
        lambda: feed.quote("NVDA", Decimal("130.10"), Decimal("130.20"), T0),
        lambda: feed.trade("NVDA", Decimal("130.18"), 50, T0 + timedelta(seconds=1)),
        lambda: feed.quote("NVDA", Decimal("130.11"), Decimal("130.25"), T0 + timedelta(seconds=2)),
    ]
    with listening() as listener:
        asyncio.run(_drive(feed, ticks, spread=0.2, settle=0.3))
        listener.collect(0.4)
    quotes = listener.payloads("quote", "NVDA")
    assert quotes[0]["price"] == "130.15" and quotes[0]["size"] is None
    assert quotes[-1] == {
        "kind": "quote",
        "symbol": "NVDA",
        "price": "130.18",
        "bid": "130.11",
        "ask": "130.25",
        "size": 50,
        "timestamp": "2026-03-02T15:00:01Z",  # the price's: the trade's time
    }
    # A trade stamped before the newest quote but after the last trade still moves the price.
    feed.trade("NVDA", Decimal("130.30"), 5, T0 + timedelta(seconds=1.5))
    assert feed.live("NVDA").price == Decimal("130.30")
    assert (feed.live("NVDA").bid, feed.live("NVDA").ask) == (Decimal("130.11"), Decimal("130.25"))
    feed.trade("NVDA", Decimal("129"), 5, T0 + timedelta(seconds=1.2))  # older than the last
    assert feed.live("NVDA").price == Decimal("130.30")
    for envelope in listener.events:  # every payload survives a JSON round trip
        assert json.loads(json.dumps(envelope)) == envelope
        assert envelope["type"] == "market_data"


def test_collected_bars_are_published_with_kind_bar(django_capture_on_commit_callbacks):
    from marketdata.services import bars_collect

    with listening() as listener:
        with django_capture_on_commit_callbacks(execute=True):
            bars_collect(symbols=["SPY"])
        listener.collect(0.5)
    (bar,) = listener.payloads("bar", "SPY")
    assert set(bar) == {
        "kind", "symbol", "timeframe", "timestamp", "open", "high", "low", "close", "volume",
    }  # fmt: skip


def test_redis_down_drops_prices_and_events_but_the_feed_keeps_running(settings, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    stream_redis.client.cache_clear()
    stream_redis._publish_script.cache_clear()
    try:
        feed = MarketFeed(events_per_second=20)
        ticks = [
            (lambda i=i: feed.trade("SPY", Decimal(500 + i), 1, T0 + timedelta(seconds=i)))
            for i in range(30)
        ]
        asyncio.run(_drive(feed, ticks, spread=0.3, settle=0.2))
        assert feed.events_sent == 0 and feed.writes >= 2  # it kept trying, and never raised
        assert feed.live("SPY").price == Decimal("529")
    finally:
        stream_redis.client.cache_clear()
        stream_redis._publish_script.cache_clear()
    assert "Redis unavailable" in caplog.text


@pytest.mark.parametrize(
    "value", [-1, 0, "abc", float("nan"), float("inf"), None, True, [1], {"p": 1}, "1e400", 10**9]
)
def test_impossible_prices_are_refused(value):
    assert clean_price(value) is None


def test_sizes():
    assert [clean_size(v) for v in (0, 5, 2.0, -1, "3", None, float("nan"))] == [
        0, 5, 2, None, None, None, None,
    ]  # fmt: skip
