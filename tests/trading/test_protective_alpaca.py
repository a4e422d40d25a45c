"""Protective orders with BROKER=alpaca against the spec-driven fake: sent natively (order_class,
take_profit, stop_loss, trailing_stop), every request valid by Alpaca's OpenAPI spec, legs read
back with nested=true and their statuses mapped one by one."""

from __future__ import annotations

from decimal import Decimal

import pytest

from marketdata.selectors import last_price
from trading import services
from trading.models import Order, OrderStatus, Position, Trade

pytestmark = pytest.mark.django_db


def _bracket(price, **extra):
    return services.order_submit(
        symbol="SPY",
        side="buy",
        qty=Decimal("10"),
        order_class="bracket",
        take_profit={"limit_price": price + 5},
        stop_loss={"stop_price": price - 5, "limit_price": price - 6},
        client_order_id="bracket-1",
        **extra,
    ).order


def _legs(order):
    return {leg.leg_role: leg for leg in Order.objects.filter(parent=order)}


def test_a_bracket_is_sent_natively_and_its_legs_follow_alpaca(alpaca):
    price = last_price("SPY")
    order = _bracket(price)
    body = alpaca.requests_to("POST", "/v2/orders")[0].json
    assert body["order_class"] == "bracket"
    assert Decimal(str(body["take_profit"]["limit_price"])) == price + 5
    assert Decimal(str(body["stop_loss"]["stop_price"])) == price - 5
    assert Decimal(str(body["stop_loss"]["limit_price"])) == price - 6
    assert alpaca.violations == []
    # Alpaca's answer carries the legs: ours take their Alpaca ids and the `held` status.
    legs = _legs(order)
    alpaca_legs = {
        o["group_role"]: o for o in alpaca.orders.values() if o["id"] != order.broker_order_id
    }
    assert legs["take_profit"].broker_order_id == alpaca_legs["take_profit"]["id"]
    assert legs["stop_loss"].broker_order_id == alpaca_legs["stop_loss"]["id"]
    assert {leg.status for leg in legs.values()} == {OrderStatus.HELD}

    alpaca.set_order_status("bracket-1", "filled", filled_avg_price=str(price))
    services.orders_process_bars()
    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED
    assert {leg.status for leg in _legs(order).values()} == {OrderStatus.NEW}
    # The legs were read nested in their parent (the lookup by client id has no `nested`).
    nested = [
        r
        for r in alpaca.requests_to("GET", f"/v2/orders/{order.broker_order_id}")
        if r.query.get("nested", "").lower() == "true"
    ]
    assert nested

    # Alpaca fills the take-profit and cancels the stop: we record both.
    alpaca.set_order_status(
        alpaca_legs["take_profit"]["id"], "filled", filled_avg_price=str(price + 5)
    )
    services.orders_process_bars()
    legs = _legs(order)
    assert legs["take_profit"].status == OrderStatus.FILLED
    assert legs["stop_loss"].status == OrderStatus.CANCELED
    assert Trade.objects.filter(order__parent=order).count() == 1
    assert Position.objects.get(symbol="SPY").qty == 0
    assert alpaca.violations == []


def test_canceling_a_bracket_cancels_its_legs_at_alpaca_and_here(alpaca):
    price = last_price("SPY")
    order = _bracket(price - 2, type="limit", limit_price=price - 2)
    services.order_cancel(order=order)
    assert {o["status"] for o in alpaca.orders.values()} == {"canceled"}
    assert {leg.status for leg in _legs(order).values()} == {OrderStatus.CANCELED}
    assert alpaca.violations == []


def test_trailing_stop_is_sent_with_its_trail_and_reports_alpacas_hwm(alpaca):
    Position.objects.create(
        session=services.session_ensure_running(), symbol="SPY", qty=Decimal("5")
    )
    order = services.order_submit(
        symbol="SPY",
        side="sell",
        qty=Decimal("5"),
        type="trailing_stop",
        trail_percent=Decimal("2.5"),
        time_in_force="gtc",
        client_order_id="trail-1",
    ).order
    body = alpaca.requests_to("POST", "/v2/orders")[0].json
    assert body["type"] == "trailing_stop" and Decimal(str(body["trail_percent"])) == Decimal("2.5")
    assert "trail_price" not in body and "stop_price" not in body
    raw = alpaca.order_by_client_id("trail-1")
    raw.update({"hwm": "110.5", "stop_price": "107.7375", "status": "new"})
    services.orders_process_bars()
    order.refresh_from_db()
    assert order.hwm == Decimal("110.5") and order.stop_price == Decimal("107.7375")
    assert alpaca.violations == []


def test_an_oco_exit_is_sent_natively(alpaca):
    price = last_price("SPY")
    Position.objects.create(
        session=services.session_ensure_running(), symbol="SPY", qty=Decimal("5")
    )
    order = services.order_submit(
        symbol="SPY",
        side="sell",
        qty=Decimal("5"),
        type="limit",
        order_class="oco",
        take_profit={"limit_price": price + 3},
        stop_loss={"stop_price": price - 3},
    ).order
    body = alpaca.requests_to("POST", "/v2/orders")[0].json
    assert body["order_class"] == "oco" and body["type"] == "limit"
    assert Decimal(str(body["take_profit"]["limit_price"])) == price + 3
    assert alpaca.violations == []
    stop = Order.objects.get(parent=order)
    assert stop.leg_role == "stop_loss" and stop.broker_order_id
    assert stop.status == OrderStatus.NEW


def test_reconciliation_keeps_working_legs_and_reads_them_through_their_parent(alpaca):
    price = last_price("SPY")
    order = _bracket(price)
    alpaca.set_order_status("bracket-1", "filled", filled_avg_price=str(price))
    services.orders_process_bars()
    services.reconcile()
    assert {leg.status for leg in _legs(order).values()} == {OrderStatus.NEW}
    stop_id = _legs(order)["stop_loss"].broker_order_id
    alpaca.set_order_status(stop_id, "filled", filled_avg_price=str(price - 5))
    services.reconcile()
    legs = _legs(order)
    assert legs["stop_loss"].status == OrderStatus.FILLED
    assert legs["take_profit"].status == OrderStatus.CANCELED
    assert Position.objects.get(symbol="SPY").qty == 0
    assert alpaca.violations == []
