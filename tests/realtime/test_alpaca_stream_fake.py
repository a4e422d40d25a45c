"""The fake trading stream is what alpaca-py accepts: its own client authenticates, listens and
parses every trade update into its `TradeUpdate` model (raw_data=False), frames are binary as on
paper, and bad credentials are refused as Alpaca refuses them."""

from __future__ import annotations

import asyncio
import json

import pytest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import TradeEvent
from alpaca.trading.requests import MarketOrderRequest
from alpaca.trading.stream import TradingStream
from websockets.asyncio.client import connect

from tests.fakes.alpaca_server import API_KEY, SECRET_KEY


def test_alpaca_py_parses_every_update_the_fake_sends(rest, alpaca_stream):
    client = TradingClient(API_KEY, SECRET_KEY, raw_data=True, url_override=rest.trading_url)
    client.submit_order(
        MarketOrderRequest(
            symbol="SPY", qty=5, side="buy", time_in_force="day", client_order_id="parse-1"
        )
    )
    got = []

    async def main() -> None:
        stream = TradingStream(API_KEY, SECRET_KEY, raw_data=False, url_override=alpaca_stream.url)

        async def handler(update) -> None:
            got.append(update)

        stream.subscribe_trade_updates(handler)
        task = asyncio.create_task(stream._run_forever())
        await asyncio.to_thread(alpaca_stream.wait_listening)
        order = rest.order_by_client_id("parse-1")
        await asyncio.to_thread(alpaca_stream.push, alpaca_stream.order_event(order, "new"))
        await asyncio.to_thread(alpaca_stream.fill, rest, "parse-1", qty=2, price="100.5")
        await asyncio.to_thread(alpaca_stream.fill, rest, "parse-1", qty=3, price="101")
        canceled = rest.set_order_status("parse-1", "canceled")
        await asyncio.to_thread(alpaca_stream.push, alpaca_stream.order_event(canceled, "canceled"))
        for _ in range(100):
            if len(got) == 4:
                break
            await asyncio.sleep(0.05)
        await stream.stop_ws()
        await asyncio.wait_for(task, 10)

    asyncio.run(main())
    assert [u.event for u in got] == [
        TradeEvent.NEW,
        TradeEvent.PARTIAL_FILL,
        TradeEvent.FILL,
        TradeEvent.CANCELED,
    ]
    assert got[1].price == 100.5 and got[1].qty == 2 and got[1].execution_id is not None
    assert got[2].order.client_order_id == "parse-1" and float(got[2].order.filled_qty) == 5
    assert alpaca_stream.received[:2] == [
        {"action": "authenticate", "data": {"key_id": API_KEY, "secret_key": SECRET_KEY}},
        {"action": "listen", "data": {"streams": ["trade_updates"]}},
    ]
    assert rest.violations == []


def test_frames_are_binary_and_bad_keys_are_refused(alpaca_stream):
    async def main() -> tuple:
        async with connect(alpaca_stream.url) as ws:
            await ws.send(
                json.dumps(
                    {
                        "action": "authenticate",
                        "data": {"key_id": API_KEY, "secret_key": SECRET_KEY},
                    }
                )
            )
            good = await ws.recv()
        async with connect(alpaca_stream.url) as ws:
            await ws.send(
                json.dumps({"action": "authenticate", "data": {"key_id": "x", "secret_key": "y"}})
            )
            bad = await ws.recv()
            await ws.wait_closed()
        return good, bad

    good, bad = asyncio.run(main())
    assert isinstance(good, bytes)
    assert json.loads(good)["data"] == {"status": "authorized", "action": "authenticate"}
    assert json.loads(bad)["data"]["status"] == "unauthorized"

    stream = TradingStream("x", "y", url_override=alpaca_stream.url)

    async def refused() -> None:
        await stream._start_ws()

    with pytest.raises(ValueError, match="failed to authenticate"):
        asyncio.run(refused())
