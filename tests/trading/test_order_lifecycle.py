"""Paper order lifecycle: limit, stop and stop-limit orders rest and fill on later bars; day
orders expire at the close; cancel; slippage and fees."""

from __future__ import annotations

from decimal import Decimal

import pytest

from marketdata import calendar
from marketdata.selectors import last_price, market_now
from tests.helpers import next_bar
from trading import services
from trading.models import Order, OrderStatus, Position, Trade

pytestmark = pytest.mark.django_db


def test_limit_buy_rests_then_fills_when_a_later_bar_crosses_it(ready):
    price = last_price("SPY")
    limit = price - 5
    order = services.order_submit(
        symbol="SPY", side="buy", qty=Decimal("2"), type="limit", limit_price=limit
    ).order
    assert order.status == OrderStatus.ACCEPTED
    assert Trade.objects.count() == 0

    next_bar("SPY", open_=price, high=price + 1, low=price - 1, close=price)  # not low enough
    services.orders_process_bars()
    order.refresh_from_db()
    assert order.status == OrderStatus.ACCEPTED

    next_bar("SPY", open_=price - 1, high=price, low=limit - 2, close=limit - 1)
    services.orders_process_bars()
    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED
    assert order.filled_avg_price == limit  # at the limit, never worse
    assert Position.objects.get(symbol="SPY").qty == Decimal("2")
    # A later run fills nothing twice.
    services.orders_process_bars()
    assert Trade.objects.filter(order=order).count() == 1


def test_limit_sell_gapping_through_fills_at_the_better_open(ready):
    services.order_submit(symbol="QQQ", side="buy", qty=Decimal("3"))
    price = last_price("QQQ")
    order = services.order_submit(
        symbol="QQQ", side="sell", qty=Decimal("3"), type="limit", limit_price=price + 2
    ).order

    next_bar("QQQ", open_=price + 4, high=price + 5, low=price + 3, close=price + 4)
    services.orders_process_bars()

    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED
    assert order.filled_avg_price == price + 4
    assert Position.objects.get(symbol="QQQ").qty == 0


def test_stop_buy_triggers_and_fills_with_slippage(ready, settings):
    settings.PAPER_SLIPPAGE_BPS = Decimal("10")
    price = last_price("NVDA")
    stop = (price + 3).quantize(Decimal("0.01"))
    order = services.order_submit(
        symbol="NVDA", side="buy", qty=Decimal("1"), type="stop", stop_price=stop
    ).order
    next_bar("NVDA", open_=price, high=stop - 1, low=price - 1, close=price)
    services.orders_process_bars()
    order.refresh_from_db()
    assert order.status == OrderStatus.ACCEPTED

    next_bar("NVDA", open_=price + 1, high=stop + 2, low=price, close=stop + 1)
    services.orders_process_bars()
    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED
    expected = (stop * (1 + Decimal("10") / 10000)).quantize(Decimal("0.0001"))
    assert order.filled_avg_price == expected


def test_stop_limit_sell_waits_as_a_limit_after_the_stop_triggers(ready):
    services.order_submit(symbol="TSLA", side="buy", qty=Decimal("2"))
    price = last_price("TSLA")
    stop, limit = price - 2, price - 3
    order = services.order_submit(
        symbol="TSLA",
        side="sell",
        qty=Decimal("2"),
        type="stop_limit",
        stop_price=stop,
        limit_price=limit,
    ).order
    # Gaps below the limit: triggered, but the limit is not reachable in this bar.
    next_bar("TSLA", open_=limit - 2, high=limit - 1, low=limit - 4, close=limit - 3)
    services.orders_process_bars()
    order.refresh_from_db()
    assert (order.status, order.stop_triggered) == (OrderStatus.ACCEPTED, True)
    # Back up to the limit: fills at the limit.
    next_bar("TSLA", open_=limit - 1, high=limit + 1, low=limit - 1, close=limit)
    services.orders_process_bars()
    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED
    assert order.filled_avg_price == limit


def test_fee_is_charged_once_per_order(ready, settings):
    settings.PAPER_FEE_PER_ORDER = Decimal("1.5")
    cash = ready.cash
    price = last_price("SPY")
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("2")).order
    ready.refresh_from_db()
    assert Trade.objects.get(order=order).fee == Decimal("1.5")
    assert ready.cash == cash - 2 * price - Decimal("1.5")


def test_day_order_expires_at_the_close(ready):
    price = last_price("SPY")
    order = services.order_submit(
        symbol="SPY", side="buy", qty=Decimal("1"), type="limit", limit_price=price / 2
    ).order
    close = calendar.next_close(market_now())
    assert order.expires_at == close
    gtc = services.order_submit(
        symbol="SPY",
        side="buy",
        qty=Decimal("1"),
        type="limit",
        limit_price=price / 2,
        time_in_force="gtc",
    ).order
    assert gtc.expires_at is None

    from marketdata.services import bars_collect

    while market_now() < close:
        bars_collect()
        services.orders_process_bars()
        order.refresh_from_db()
        if market_now() < close:
            assert order.status == OrderStatus.ACCEPTED
    order.refresh_from_db()
    gtc.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED
    assert gtc.status == OrderStatus.ACCEPTED
    assert Trade.objects.count() == 0


def test_cancel_via_api_and_a_second_cancel_is_a_409(ready, trader):
    price = last_price("SPY")
    order = services.order_submit(
        symbol="SPY", side="buy", qty=Decimal("1"), type="limit", limit_price=price - 10
    ).order

    response = trader.delete(f"/api/v1/orders/{order.pk}")
    assert response.status_code == 200
    assert response.json()["status"] == "canceled"

    again = trader.delete(f"/api/v1/orders/{order.pk}")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "order_not_cancelable"
    # A canceled order is not filled by a later bar.
    next_bar("SPY", open_=price - 20, high=price, low=price - 30, close=price - 20)
    services.orders_process_bars()
    assert Trade.objects.count() == 0


def test_illegal_transitions_raise_and_change_nothing(ready):
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    for status in (OrderStatus.NEW, OrderStatus.CANCELED, OrderStatus.PENDING_SUBMIT):
        with pytest.raises(services.IllegalTransition):
            services.order_transition(order, status)
    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED


def test_collect_task_matches_resting_orders(ready):
    from marketdata.tasks import collect_bars

    price = last_price("SPY")
    order = services.order_submit(
        symbol="SPY",
        side="buy",
        qty=Decimal("1"),
        type="limit",
        limit_price=price * 2,
        time_in_force="gtc",
    ).order
    collect_bars()
    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED
    assert Order.objects.count() == 1
