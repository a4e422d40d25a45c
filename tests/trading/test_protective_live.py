"""Protective orders on the paper broker react to live prices (issue 18 with issue 15): the
stream's market feed hands each symbol's latest price to the broker's open orders, and legs and
trailing stops follow it with the same rules as bars (core.protective)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from marketdata.selectors import last_price
from realtime.feed import MarketFeed, orders_react
from tests.helpers import submit
from tests.trading.test_protective_orders import bracket, legs_by_role
from trading.models import Order, OrderStatus, Position

pytestmark = pytest.mark.django_db

# After any order's market time (the simulated clock runs ahead of the wall clock).
LATER = timezone.now() + timedelta(days=3650)


def ticks(*prices: Decimal, symbol: str = "SPY") -> MarketFeed:
    """Run the feed's writer once per price, as the stream process does between ticks."""
    feed = MarketFeed(events_per_second=1000, on_prices=orders_react)
    for i, price in enumerate(prices):
        feed.trade(symbol, price, 100, LATER + timedelta(seconds=i))
        feed._on_prices_at = float("-inf")  # each tick its own write (no rate limit here)
        fresh, due, _ = feed.take_due(0)
        feed._write(fresh, due)
    return feed


def test_a_live_price_through_the_take_profit_fills_it_and_cancels_the_stop(ready, trader):
    price = last_price("SPY")
    body = bracket(trader, price).json()
    ticks(price + 1, price + 2)  # inside both exits: nothing happens
    legs = legs_by_role(trader.get(f"/api/v1/orders/{body['id']}").json())
    assert {leg["status"] for leg in legs.values()} == {"accepted"}

    ticks(price + 5)
    legs = legs_by_role(trader.get(f"/api/v1/orders/{body['id']}").json())
    assert legs["take_profit"]["status"] == "filled"
    assert Decimal(legs["take_profit"]["filled_avg_price"]) == price + 5
    assert legs["stop_loss"]["status"] == "canceled"
    assert Position.objects.get(symbol="SPY").qty == 0


def test_a_trailing_stop_follows_live_prices_and_fills_on_the_way_back(ready, trader):
    price = last_price("SPY")
    assert submit(trader, qty="5").status_code == 201
    body = submit(
        trader, side="sell", qty="5", type="trailing_stop", trail_price="2", time_in_force="gtc"
    ).json()
    ticks(price + 3, price + 6, price + 5)
    shown = trader.get(f"/api/v1/orders/{body['id']}").json()
    assert shown["status"] == "accepted"
    assert Decimal(shown["hwm"]) == price + 6 and Decimal(shown["stop_price"]) == price + 4

    ticks(price + 3)  # through the stop at price + 4
    order = Order.objects.get(pk=body["id"])
    assert order.status == OrderStatus.FILLED
    assert Position.objects.get(symbol="SPY").qty == 0


def test_other_symbols_prices_leave_the_exits_alone(ready, trader):
    price = last_price("SPY")
    body = bracket(trader, price).json()
    ticks(price + 50, symbol="QQQ")
    legs = legs_by_role(trader.get(f"/api/v1/orders/{body['id']}").json())
    assert {leg["status"] for leg in legs.values()} == {"accepted"}
