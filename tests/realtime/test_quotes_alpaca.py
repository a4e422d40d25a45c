"""The Alpaca market-data source through alpaca-py's StockDataStream against the local fake of
Alpaca's stream (tests/fakes/alpaca_data_stream.py): subscribe, trades and quotes recorded,
Alpaca's error codes end the connection with a logged reason, hostile frames never do."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from decimal import Decimal

import msgpack
import pytest

from realtime.prices import price_get
from realtime.sources.alpaca_data import AlpacaDataSource, StreamRefused
from tests.fakes.alpaca_data_stream import API_KEY, SECRET_KEY, FakeAlpacaDataStream
from tests.realtime.quotes_support import (  # noqa: F401 - fixture
    RecordingLink,
    listening,
    live_prices_forgotten,
)

pytestmark = pytest.mark.usefixtures("live_prices_forgotten")


@pytest.fixture
def fake():
    with FakeAlpacaDataStream() as server:
        yield server


def _source(fake, **kwargs) -> AlpacaDataSource:
    options = {"api_key": API_KEY, "secret_key": SECRET_KEY, "url": fake.url}
    return AlpacaDataSource(**{**options, "symbols": ["SPY", "QQQ"], **kwargs})


async def _until(predicate, timeout: float = 5.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


async def _started(source, link) -> asyncio.Task:
    task = asyncio.create_task(source.run(link))
    await _until(lambda: link.live.is_set() or task.done())
    return task


async def _stopped(source, task) -> None:
    await source.close()
    await asyncio.wait_for(task, 5)


def test_subscribes_and_records_trades_and_quotes(fake):
    link = RecordingLink()
    source = _source(fake, events_per_second=50)

    async def main():
        task = await _started(source, link)
        assert link.ready_calls == 1 and not task.done()
        assert fake.subscribed("trades") == {"SPY", "QQQ"} == fake.subscribed("quotes")
        assert fake.received[0] == {"action": "auth", "key": API_KEY, "secret": SECRET_KEY}
        stamp = datetime(2026, 3, 2, 15, 1, 2, 345678, tzinfo=UTC)
        await asyncio.to_thread(fake.send_trade, "SPY", 501.25, 30, stamp)
        await asyncio.to_thread(fake.send_quote, "QQQ", 400.1, 400.2, 3, 5, stamp)
        await asyncio.to_thread(fake.send_quote, "SPY", 501.2, 501.3, 1, 1, stamp)
        await _until(lambda: (p := price_get("SPY")) is not None and p.ask is not None)
        await _until(lambda: price_get("QQQ") is not None)
        await _stopped(source, task)

    with listening() as listener:
        asyncio.run(main())
        listener.collect(0.3)
    spy, qqq = price_get("SPY"), price_get("QQQ")
    assert (spy.price, spy.size, spy.bid, spy.ask) == (Decimal("501.25"), 30, Decimal("501.2"),
                                                       Decimal("501.3"))  # fmt: skip
    assert spy.timestamp == datetime(2026, 3, 2, 15, 1, 2, 345678, tzinfo=UTC)  # msgpack ext time
    assert (qqq.price, qqq.bid, qqq.ask) == (Decimal("400.15"), Decimal("400.1"), Decimal("400.2"))
    assert listener.payloads("quote", "SPY")[-1]["price"] == "501.25"
    assert listener.payloads("bar_forming", "SPY")[-1]["timestamp"] == "2026-03-02T15:00:00Z"
    assert link.received_count >= 4  # the subscription answer and three data frames
    assert fake.authenticated == 0  # closed on close()


def test_wrong_keys_end_the_run_with_402_and_a_logged_reason(fake, caplog):
    link = RecordingLink()
    with pytest.raises(StreamRefused) as refused:
        asyncio.run(_source(fake, secret_key="wrong").run(link))
    assert refused.value.code == 402
    assert "auth failed" in caplog.text and "ALPACA_SECRET_KEY" in caplog.text
    assert not link.live.is_set()


def test_a_second_connection_gets_406_and_the_first_keeps_streaming(fake, caplog):
    first_link, second_link = RecordingLink(), RecordingLink()
    first = _source(fake, events_per_second=50)

    async def main():
        task = await _started(first, first_link)
        with pytest.raises(StreamRefused) as refused:
            await _source(fake).run(second_link)
        assert refused.value.code == 406
        await asyncio.to_thread(fake.send_trade, "SPY", 502.5, 1)
        await _until(lambda: price_get("SPY") is not None)
        assert not task.done()
        await _stopped(first, task)

    asyncio.run(main())
    assert "connection limit exceeded" in caplog.text and "406" in caplog.text
    assert not second_link.live.is_set()
    assert price_get("SPY").price == Decimal("502.5")


def test_too_many_symbols_ends_the_run_with_405():
    with FakeAlpacaDataStream(max_symbols=1) as fake, pytest.raises(StreamRefused) as refused:
        asyncio.run(_source(fake).run(RecordingLink()))
    assert refused.value.code == 405
    assert fake.authenticated == 0


def test_hostile_frames_are_skipped_and_the_stream_stays_up(fake, caplog):
    link = RecordingLink()
    source = _source(fake, events_per_second=50)
    now = msgpack.Timestamp.from_datetime(datetime.now(UTC))

    def trade(**fields):
        return msgpack.packb([{"T": "t", "S": "SPY", "p": 500.0, "s": 1, "t": now, **fields}])

    hostile = [
        b"\xc1\xc1\xc1 not msgpack",
        msgpack.packb(42),
        msgpack.packb([1, "two", None]),
        msgpack.packb([{"T": "t"}]),  # no symbol
        msgpack.packb([{"T": "t", "S": ["SPY"], "p": 1}]),  # unhashable symbol
        trade(p=-5.0),
        trade(p=math.nan),
        trade(p=math.inf),
        trade(p="abc"),
        trade(p=1e300),
        trade(t="not a time"),
        trade(t=None),
        trade(s=-3),  # a negative size counts as unknown
        msgpack.packb([{"T": "t", "S": "AAPL", "p": 1.0, "s": 1, "t": now}]),  # not subscribed
        msgpack.packb([{"T": "q", "S": "QQQ", "bp": -1, "ap": 0, "t": now}]),
        msgpack.packb([{"T": "zzz", "S": "SPY"}]),
        '[{"T": "t", "S": "SPY", "p": 499.5, "s": 2, "t": "garbage"}]',
        b"",
    ]

    async def main():
        task = await _started(source, link)
        for frame in hostile:
            await asyncio.to_thread(fake.send_raw, frame)
        await asyncio.to_thread(fake.send_trade, "SPY", 503.75, 7)
        await _until(lambda: (p := price_get("SPY")) is not None and p.price == Decimal("503.75"))
        assert not task.done()
        await _stopped(source, task)

    asyncio.run(main())
    assert price_get("AAPL") is None and price_get("QQQ") is None
    assert "malformed msgpack frame" in caplog.text
    assert "without a sane price/time" in caplog.text


def test_a_dropped_connection_ends_the_run_so_the_runner_can_reconnect(fake, caplog):
    link = RecordingLink()
    source = _source(fake)

    async def main():
        task = await _started(source, link)
        await asyncio.to_thread(fake.drop_connections)
        await asyncio.wait_for(task, 5)  # returns: the runner owns reconnecting

    asyncio.run(main())
    assert "closed" in caplog.text
    assert fake.connects == 1  # alpaca-py's own reconnect loop never ran


def test_an_error_mid_stream_ends_the_run(fake):
    source = _source(fake)

    async def main():
        task = await _started(source, RecordingLink())
        await asyncio.to_thread(fake.send_error, 407, "slow client")
        with pytest.raises(StreamRefused) as refused:
            await asyncio.wait_for(task, 5)
        assert refused.value.code == 407

    asyncio.run(main())


def test_the_alpaca_provider_names_this_source(settings):
    from realtime.sources import sources_configured

    settings.MARKETDATA_PROVIDER = "alpaca"
    settings.ALPACA_API_KEY, settings.ALPACA_SECRET_KEY = API_KEY, SECRET_KEY
    settings.ALPACA_DATA_FEED = "sip"
    (source,) = [s for s in sources_configured() if s.name == "market_data"]
    assert isinstance(source, AlpacaDataSource) and source.feed == "sip"
    assert source.symbols == settings.PRIMARY_SYMBOLS


def test_the_fake_speaks_what_alpaca_py_itself_parses(fake):
    """alpaca-py's own loop and models (raw_data=False) read the fake's frames: the fake's
    messages and MessagePack timestamps are what the library accepts from Alpaca."""
    from alpaca.data.live.stock import StockDataStream
    from alpaca.data.models import Quote, Trade

    got = []
    stream = StockDataStream(API_KEY, SECRET_KEY, url_override=fake.url)

    async def handler(item):
        got.append(item)

    stream.subscribe_trades(handler, "SPY")
    stream.subscribe_quotes(handler, "SPY")
    stamp = datetime(2026, 3, 2, 15, 1, 2, 345678, tzinfo=UTC)

    async def main():
        task = asyncio.create_task(stream._run_forever())
        await _until(lambda: fake.subscribed("quotes") == {"SPY"})
        await asyncio.to_thread(fake.send_trade, "SPY", 501.25, 30, stamp)
        await asyncio.to_thread(fake.send_quote, "SPY", 501.2, 501.3, 4, 6, stamp)
        await _until(lambda: len(got) == 2)
        await stream.stop_ws()
        await asyncio.wait_for(task, 10)

    asyncio.run(main())
    trade, quote = got
    assert isinstance(trade, Trade) and isinstance(quote, Quote)
    assert (trade.symbol, trade.price, trade.size) == ("SPY", 501.25, 30)
    assert trade.timestamp == stamp == quote.timestamp
    sides = (quote.bid_price, quote.ask_price, quote.bid_size, quote.ask_size)
    assert sides == (501.2, 501.3, 4, 6)


def test_a_streamed_trade_prices_the_next_paper_fill(fake, ready, trader):
    """From Alpaca's wire to a fill: the stream's last SPY trade is what a market order pays."""
    from marketdata.selectors import last_price
    from tests.helpers import submit
    from trading.models import Order

    live = last_price("SPY") + Decimal("2.35")
    source = _source(fake)

    async def main():
        task = await _started(source, RecordingLink())
        await asyncio.to_thread(fake.send_trade, "SPY", float(live), 100)
        await _until(lambda: (p := price_get("SPY")) is not None and p.price == live)
        await _stopped(source, task)

    asyncio.run(main())
    response = submit(trader, qty="1")
    assert response.status_code == 201, response.content
    assert Order.objects.get(pk=response.json()["id"]).filled_avg_price == live


def test_with_redis_down_the_source_keeps_streaming(fake, settings, caplog):
    from streaming import redis as stream_redis

    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    stream_redis.client.cache_clear()
    stream_redis._publish_script.cache_clear()
    source = _source(fake, events_per_second=50)

    async def main():
        task = await _started(source, RecordingLink())
        for price in (501.0, 502.0, 503.5):
            await asyncio.to_thread(fake.send_trade, "SPY", price, 1)
        await _until(lambda: (p := source.feed_state.live("SPY")) and p.price == Decimal("503.5"))
        await asyncio.sleep(0.2)
        assert not task.done()  # stored and published nothing, and carried on
        await _stopped(source, task)

    try:
        asyncio.run(main())
    finally:
        stream_redis.client.cache_clear()
        stream_redis._publish_script.cache_clear()
    assert source.feed_state.events_sent == 0
    assert "Redis unavailable" in caplog.text
