"""The synthetic tick source walks through the bar the collector stores next: its forming bar
ends exactly at the stored bar (open, high, low, close, volume), every tick stays inside it, and
the demo's ticks reach the price store and the stream."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from marketdata import calendar
from marketdata.providers.synthetic import SyntheticProvider
from realtime.feed import MarketFeed
from realtime.prices import price_get
from realtime.sources.synthetic_ticks import (
    Plan,
    SyntheticTickSource,
    path_points,
    tick_price,
)
from tests.realtime.quotes_support import (  # noqa: F401 - fixture
    RecordingLink,
    listening,
    live_prices_forgotten,
)

pytestmark = pytest.mark.usefixtures("live_prices_forgotten")

SESSION = datetime(2025, 3, 4, 14, 30, tzinfo=UTC)  # a Tuesday's open (9:30 New York)


class RecordingFeed(MarketFeed):
    def __init__(self) -> None:
        super().__init__(events_per_second=1000)
        self.trades: list[tuple[str, Decimal, int, datetime]] = []

    def trade(self, symbol, price, size, at) -> None:
        self.trades.append((symbol, price, size, at))
        super().trade(symbol, price, size, at)


def _ohlcv(bar) -> tuple:
    return (bar.open, bar.high, bar.low, bar.close, bar.volume)


def test_the_forming_bar_ends_at_the_bar_the_provider_makes():
    provider = SyntheticProvider()
    symbols = ["SPY", "TSLA", "NVDA"]
    source = SyntheticTickSource(symbols=symbols)
    rng = random.Random(7)
    starts = calendar.bar_starts(SESSION, SESSION + timedelta(hours=6, minutes=30))
    for start in rng.sample(starts, 25):
        feed = RecordingFeed()
        progress = 0.0
        while progress < 1.0:  # irregular steps, like a loop that wakes late
            progress = min(progress + rng.uniform(0.001, 0.3), 1.0)
            source.emit(feed, Plan(start, progress))
        for symbol in symbols:
            (stored,) = provider.fetch_bars(symbol, "5Min", start, start + calendar.BAR)
            forming = feed.forming_bar(symbol)
            assert forming.start == int(start.timestamp())
            assert _ohlcv(forming) == _ohlcv(stored), (symbol, start)
            ticks = [t for t in feed.trades if t[0] == symbol]
            assert all(stored.low <= price <= stored.high for _s, price, _n, _t in ticks)
            assert all(price == price.quantize(Decimal("0.01")) for _s, price, _n, _t in ticks)
            assert all(start <= at < start + calendar.BAR for _s, _p, _n, at in ticks)
            assert [at for *_x, at in ticks] == sorted(at for *_x, at in ticks)


def test_ticks_move_between_waypoints_and_repeat_nothing_at_the_end():
    (bar,) = SyntheticProvider().fetch_bars("QQQ", "5Min", SESSION, SESSION + calendar.BAR)
    prices = {tick_price(bar, f / 100) for f in range(101)}
    assert len(prices) > 10  # it moves
    assert tick_price(bar, 0) == bar.open and tick_price(bar, 1) == bar.close
    assert {tick_price(bar, 1 / 3), tick_price(bar, 2 / 3)} == {bar.low, bar.high}
    assert path_points(None, 0.5) == [0.0, 1 / 3, 0.5]
    assert path_points(0.5, 1.0) == [2 / 3, 1.0]
    assert path_points(1.0, 1.0) == []


def test_a_bar_collected_early_is_finished_before_the_next_begins():
    source = SyntheticTickSource(symbols=["SPY"])
    feed = RecordingFeed()
    first, second = SESSION, SESSION + calendar.BAR
    source.emit(feed, Plan(first, 0.4))
    source.emit(feed, Plan(second, 0.1))
    (stored,) = SyntheticProvider().fetch_bars("SPY", "5Min", first, second)
    first_ticks = [t for t in feed.trades if t[3] < second]
    assert first_ticks[-1][1] == stored.close
    assert sum(n for _s, _p, n, _t in first_ticks) == stored.volume
    assert feed.forming_bar("SPY").start == int(second.timestamp())


def test_exchange_clock_forms_the_current_bar_only_while_the_nyse_is_open(settings):
    settings.MARKET_CLOCK = "exchange"
    source = SyntheticTickSource(symbols=["SPY"])
    plan = source.plan(SESSION + timedelta(minutes=7, seconds=30))
    assert plan == Plan(SESSION + timedelta(minutes=5), 0.5)
    assert source.plan(datetime(2025, 3, 8, 15, 0, tzinfo=UTC)) is None  # a Saturday
    assert source.silence_limit() is None or calendar.is_open(calendar.utcnow())


@pytest.mark.django_db(transaction=True)
def test_demo_ticks_reach_the_price_store_and_the_stream_and_end_at_the_collected_bar(settings):
    from marketdata.selectors import latest_bar_time
    from marketdata.services import bars_collect

    settings.COLLECT_INTERVAL_SECONDS = 2  # the simulated bar takes 2 s of wall time
    settings.PRIMARY_SYMBOLS = ["SPY", "QQQ"]
    bars_collect()
    forming_start = calendar.next_bar_start(latest_bar_time())
    source = SyntheticTickSource(ticks_per_second=20, events_per_second=20)
    link = RecordingLink()
    assert source.silence_limit() == settings.STREAM_SILENCE_SECONDS

    async def main():
        task = asyncio.create_task(source.run(link))
        await asyncio.sleep(2.8)  # past the simulated bar's 2 s
        await source.close()
        await asyncio.wait_for(task, 5)

    with listening() as listener:
        asyncio.run(main())
        listener.collect(0.3)
    assert link.ready_calls == 1 and link.received_count >= 20
    quotes = listener.payloads("quote", "SPY")
    assert len({q["price"] for q in quotes}) >= 5  # the price ticks
    assert len(quotes) <= 2.8 * 20 + 2
    forming = listener.payloads("bar_forming", "SPY")[-1]
    assert forming["timestamp"] == forming_start.isoformat().replace("+00:00", "Z")

    result = bars_collect()  # the collector stores the bar the ticks formed
    stored = result.new_bars["SPY"]
    assert stored.timestamp == forming_start
    assert (forming["open"], forming["high"], forming["low"], forming["close"]) == tuple(
        str(v) for v in (stored.open, stored.high, stored.low, stored.close)
    )
    assert forming["volume"] == stored.volume
    assert price_get("SPY").price == stored.close
