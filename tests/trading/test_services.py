from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from marketdata.selectors import last_price
from trading import services
from trading.exceptions import InsufficientBuyingPower, InvalidOrder, TradingHalted, UnknownSymbol
from trading.models import Order, OrderStatus, Position, Trade


def test_market_buy_fills_at_last_close_and_books_cash_position_trade(ready):
    price = last_price("SPY")
    result = services.order_submit(symbol="spy", side="buy", qty=Decimal("10"))

    order = result.order
    assert result.created
    assert order.status == OrderStatus.FILLED
    assert order.filled_qty == Decimal("10")
    assert order.filled_avg_price == price
    trade = Trade.objects.get(order=order)
    assert (trade.symbol, trade.qty, trade.price) == ("SPY", Decimal("10"), price)
    position = Position.objects.get(session=ready, symbol="SPY")
    assert position.qty == Decimal("10") and position.avg_entry_price == price
    ready.refresh_from_db()
    assert ready.cash == ready.starting_cash - 10 * price


def test_selling_realizes_pnl_against_average_entry(ready):
    services.order_submit(symbol="SPY", side="buy", qty=Decimal("4"))
    entry = Position.objects.get(symbol="SPY").avg_entry_price
    # Move the market: a higher close for the next bar.
    from marketdata.models import Bar

    bar = Bar.objects.filter(symbol="SPY").order_by("-timestamp").first()
    bar.close = entry + Decimal("5")
    bar.save()

    services.order_submit(symbol="SPY", side="sell", qty=Decimal("3"))

    sell = Trade.objects.get(side="sell")
    assert sell.realized_pnl == Decimal("15")
    position = Position.objects.get(symbol="SPY")
    assert position.qty == Decimal("1")
    assert position.avg_entry_price == entry
    assert position.realized_pnl == Decimal("15")


def test_same_client_order_id_returns_the_existing_order_without_a_second_fill(ready):
    first = services.order_submit(
        symbol="QQQ", side="buy", qty=Decimal("1"), client_order_id="abc-1"
    )
    again = services.order_submit(
        symbol="QQQ", side="buy", qty=Decimal("1"), client_order_id="abc-1"
    )

    assert first.created and not again.created
    assert again.order.pk == first.order.pk
    assert Order.objects.count() == 1
    assert Trade.objects.count() == 1


def test_kill_switch_refuses_new_orders_until_resumed(ready):
    services.trading_halt(reason="test")
    with pytest.raises(TradingHalted):
        services.order_submit(symbol="SPY", side="buy", qty=Decimal("1"))
    assert Order.objects.count() == 0

    services.trading_resume()
    assert (
        services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order.status == "filled"
    )


def test_unaffordable_order_is_refused_before_anything_is_committed(ready):
    with pytest.raises(InsufficientBuyingPower):
        services.order_submit(symbol="SPY", side="buy", qty=Decimal("100000"))
    assert Order.objects.count() == 0
    assert Trade.objects.count() == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"qty": Decimal("0")},
        {"qty": Decimal("-1")},
        {"side": "hold"},
        {"type": "limit"},
        {"client_order_id": "x" * 129},
    ],
)
def test_invalid_orders_change_nothing(ready, kwargs):
    params = {"symbol": "SPY", "side": "buy", "qty": Decimal("1"), **kwargs}
    with pytest.raises(InvalidOrder):
        services.order_submit(**params)
    assert Order.objects.count() == 0


def test_unknown_symbol(ready):
    with pytest.raises(UnknownSymbol):
        services.order_submit(symbol="ZZZZ", side="buy", qty=Decimal("1"))


def test_illegal_transition_raises(ready):
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    with pytest.raises(services.IllegalTransition):
        services.order_transition(order, OrderStatus.NEW)


def test_one_order_is_checked_and_filled_against_one_market_reading(ready, monkeypatch):
    """A bar landing between the risk check and the broker's fill does not move the fill away
    from the price the risk check approved."""
    from marketdata.models import Bar
    from trading import risk

    price = last_price("SPY")
    checks = risk.check_order

    def check_then_new_bar(**kwargs):
        checks(**kwargs)
        newest = Bar.objects.filter(symbol="SPY", timeframe="5Min").latest("timestamp")
        newest.pk = None
        newest.timestamp += timedelta(minutes=5)
        newest.open = newest.high = newest.low = newest.close = price * 2
        newest.save()

    monkeypatch.setattr(risk, "check_order", check_then_new_bar)
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order

    assert order.status == OrderStatus.FILLED
    assert order.filled_avg_price == price
    assert last_price("SPY") == price * 2  # the bar did land
