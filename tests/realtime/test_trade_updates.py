"""Alpaca's trade_updates through the real alpaca-py client and the stream runner, against the
fake trading stream and the spec-driven REST fake: fills are booked once, a fill during a gap
comes back through the REST refresh, unknown orders follow the reconciliation rules, hostile
messages never end the stream."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from tests.realtime.conftest import wait_until
from trading import services
from trading.models import Order, OrderSource, OrderStatus, Position, Trade

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres]


def _buy(client_order_id: str, qty: str = "4") -> Order:
    order = services.order_submit(
        symbol="SPY", side="buy", qty=Decimal(qty), client_order_id=client_order_id
    ).order
    assert order.status == OrderStatus.ACCEPTED and order.broker_order_id
    return order


def _live(runner, fake) -> None:
    wait_until(runner.live, what="the trade stream live")
    fake.wait_listening()


def test_the_same_fill_sent_twice_books_one_trade(alpaca, alpaca_stream, start_runner):
    order = _buy("dup-1")
    runner = start_runner()
    _live(runner, alpaca_stream)

    data = alpaca_stream.fill(alpaca, "dup-1", qty=4, price="101.25")
    alpaca_stream.push(data)  # the very same execution again
    wait_until(lambda: Order.objects.get(pk=order.pk).status == OrderStatus.FILLED)
    time.sleep(0.5)  # time for the second copy to be handled too

    trade = Trade.objects.get(order=order)
    assert (trade.qty, trade.price) == (Decimal("4"), Decimal("101.25"))
    assert trade.broker_trade_id == data["execution_id"]
    assert Position.objects.get(symbol="SPY").qty == Decimal("4")
    assert runner.supervisor().reconnects == 0
    assert alpaca.violations == []


def test_partial_fills_then_fill_each_booked_once_at_its_price(alpaca, alpaca_stream, start_runner):
    order = _buy("part-1", qty="10")
    runner = start_runner()
    _live(runner, alpaca_stream)

    first = alpaca_stream.fill(alpaca, "part-1", qty=3, price="100")
    wait_until(lambda: Trade.objects.filter(order=order).count() == 1)
    alpaca_stream.fill(alpaca, "part-1", qty=7, price="102")
    alpaca_stream.push(first)  # a late duplicate of the first partial fill
    wait_until(lambda: Order.objects.get(pk=order.pk).status == OrderStatus.FILLED)
    time.sleep(0.3)

    prices = sorted(Trade.objects.filter(order=order).values_list("qty", "price"))
    assert prices == [(Decimal("3"), Decimal("100")), (Decimal("7"), Decimal("102"))]
    order.refresh_from_db()
    assert order.filled_qty == Decimal("10")
    assert order.filled_avg_price == Decimal("101.4")


def test_a_fill_during_a_dropped_connection_comes_back_through_the_rest_refresh(
    alpaca, alpaca_stream, start_runner
):
    order = _buy("gap-1")
    runner = start_runner()
    _live(runner, alpaca_stream)
    alpaca_stream.refuse_next(429, times=2)  # and Alpaca is busy when we come back

    alpaca_stream.drop()
    # The exchange fills it while nobody listens: no event will ever carry this fill.
    alpaca_stream.fill(alpaca, "gap-1", qty=4, price="99.5", send=False)

    wait_until(lambda: Order.objects.get(pk=order.pk).status == OrderStatus.FILLED, timeout=20)
    wait_until(runner.live, what="live again")
    assert Trade.objects.get(order=order).price == Decimal("99.5")
    assert alpaca_stream.refused == [429, 429]
    assert runner.supervisor().reconnects >= 1
    # The refresh asked REST before the stream resumed, through the documented endpoints.
    assert alpaca.requests_to("GET", "/v2/orders")
    assert alpaca.violations == []
    assert alpaca_stream.max_active == 1


def test_an_open_order_we_never_placed_is_adopted_as_reconciliation_does(
    alpaca, alpaca_stream, start_runner
):
    runner = start_runner()
    _live(runner, alpaca_stream)
    foreign = _foreign_order(alpaca, "placed-elsewhere-1", status="new")

    alpaca_stream.push(alpaca_stream.order_event(foreign, "new"))

    wait_until(lambda: Order.objects.filter(client_order_id="placed-elsewhere-1").exists())
    adopted = Order.objects.get(client_order_id="placed-elsewhere-1")
    assert adopted.source == OrderSource.RECONCILE
    assert adopted.status == OrderStatus.NEW
    assert adopted.broker_order_id == foreign["id"]


def test_a_fill_of_an_order_we_never_placed_is_not_adopted_but_the_position_is_repaired(
    alpaca, alpaca_stream, start_runner
):
    runner = start_runner()
    _live(runner, alpaca_stream)
    foreign = _foreign_order(alpaca, "placed-elsewhere-2", status="filled")
    alpaca.set_position("QQQ", qty="5", avg_entry_price="400")

    alpaca_stream.push(
        alpaca_stream.order_event(foreign, "fill", qty="5", price="400", position_qty="5")
    )

    wait_until(lambda: Position.objects.filter(symbol="QQQ", qty=Decimal("5")).exists())
    assert not Order.objects.filter(client_order_id="placed-elsewhere-2").exists()


def _foreign_order(rest, client_order_id: str, *, status: str) -> dict:
    """An order placed at the broker by someone else (through the REST fake's own API)."""
    from alpaca.trading.client import TradingClient
    from alpaca.trading.requests import MarketOrderRequest

    from tests.fakes.alpaca_server import API_KEY, SECRET_KEY

    client = TradingClient(API_KEY, SECRET_KEY, raw_data=True, url_override=rest.trading_url)
    client.submit_order(
        MarketOrderRequest(
            symbol="QQQ", qty=5, side="buy", time_in_force="day", client_order_id=client_order_id
        )
    )
    if status == "filled":
        return rest.set_order_status(client_order_id, "filled", filled_avg_price="400")
    return rest.set_order_status(client_order_id, status)


def test_hostile_messages_never_end_the_stream(alpaca, alpaca_stream, start_runner):
    order = _buy("after-garbage", qty="1")
    runner = start_runner()
    _live(runner, alpaca_stream)
    good = alpaca_stream.fill(alpaca, "after-garbage", qty=1, price="100", send=False)

    def bad(**changes):
        return {**good, "order": {**good["order"], **changes}}

    for frame in [b"\x00\xffnot json", "[1, 2, 3]", "null", '{"stream": "trade_updates"}']:
        alpaca_stream.push_raw(frame)
    for data in [
        "a string",
        {"event": "fill"},  # no order
        bad(qty="-4", filled_qty="-4"),  # negative quantities
        bad(filled_qty="5", qty="1"),  # more filled than ordered
        bad(filled_qty="1e999999"),
        bad(filled_avg_price="NaN"),
        bad(side="sideways"),
        bad(client_order_id=None),
        bad(client_order_id="x" * 500),
        {**good, "timestamp": "yesterday"},
        {**good, "price": {"$gt": 0}, "qty": [1]},
    ]:
        alpaca_stream.push(data)
    alpaca_stream.push(good)

    wait_until(lambda: Order.objects.get(pk=order.pk).status == OrderStatus.FILLED)
    assert Trade.objects.get(order=order).qty == Decimal("1")
    assert runner.live() and runner.supervisor().reconnects == 0
    assert alpaca_stream.total == 1
    assert not Order.objects.exclude(pk=order.pk).exists()
