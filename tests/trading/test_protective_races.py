"""Protective orders where races matter, on PostgreSQL: two bar-processing runs at once never
fill both exits of a group; legs activate only on the entry's complete fill; a partial exit
fill shrinks its sibling."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from marketdata.selectors import last_price
from tests.helpers import next_bar, run_together
from trading import selectors, services
from trading.brokers.base import Fill
from trading.models import Order, OrderStatus, Position, Trade

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _bracket(price, *, qty="10", **extra):
    return services.order_submit(
        symbol="SPY",
        side="buy",
        qty=Decimal(qty),
        order_class="bracket",
        take_profit={"limit_price": price + 5},
        stop_loss={"stop_price": price - 5},
        **extra,
    ).order


def _filled(order, qty, price):
    """The broker's report that `order` has filled `qty` in all at `price`."""
    state = selectors.broker_order_of(order)
    return replace(
        state,
        status="filled" if qty >= order.qty else "partially_filled",
        filled_qty=qty,
        filled_avg_price=price,
        fills=[
            Fill(
                qty=qty - order.filled_qty,
                price=price,
                fee=Decimal("0"),
                executed_at=datetime.now(UTC),
            )
        ],
    )


def test_two_bar_runs_at_once_fill_exactly_one_exit(session, market):
    for _ in range(3):
        price = last_price("SPY")
        entry = _bracket(price)
        assert set(entry.legs.values_list("status", flat=True)) == {"accepted"}
        next_bar("SPY", open_=price, high=price + 8, low=price - 8, close=price)
        errors = run_together([services.orders_process_bars, services.orders_process_bars])
        assert errors == []
        statuses = sorted(entry.legs.values_list("status", flat=True))
        assert statuses == ["canceled", "filled"]
        assert Trade.objects.filter(order__parent=entry).count() == 1
        assert Position.objects.get(symbol="SPY").qty == 0


def test_conflicting_reports_of_both_exits_at_once_record_only_one(session, market):
    for _ in range(5):
        price = last_price("SPY")
        entry = _bracket(price)
        take_profit = entry.legs.get(leg_role="take_profit")
        stop = entry.legs.get(leg_role="stop_loss")
        reports = [
            (take_profit, _filled(take_profit, take_profit.qty, price + 5)),
            (stop, _filled(stop, stop.qty, price - 5)),
        ]
        errors = run_together(
            [
                (lambda o=o, s=s: services.order_record_broker_state(order_id=o.pk, state=s))
                for o, s in reports
            ]
        )
        assert errors == []
        statuses = sorted(entry.legs.values_list("status", flat=True))
        assert statuses == ["canceled", "filled"]
        assert Trade.objects.filter(order__parent=entry).count() == 1
        assert Position.objects.get(symbol="SPY").qty == 0


def test_legs_activate_only_on_the_complete_entry_fill(session, market):
    price = last_price("SPY")
    entry = _bracket(price - 2, type="limit", limit_price=price - 2)
    assert set(entry.legs.values_list("status", flat=True)) == {"held"}
    services.order_record_broker_state(order_id=entry.pk, state=_filled(entry, Decimal("4"), price))
    entry.refresh_from_db()
    assert entry.status == OrderStatus.PARTIALLY_FILLED
    assert set(entry.legs.values_list("status", flat=True)) == {"held"}
    # Held exits never fill, whatever the bars do (this one stays above the entry's limit).
    next_bar("SPY", open_=price, high=price + 10, low=price - 1, close=price)
    services.orders_process_bars()
    assert set(entry.legs.values_list("status", flat=True)) == {"held"}
    services.order_record_broker_state(
        order_id=entry.pk, state=_filled(entry, Decimal("10"), price)
    )
    assert set(entry.legs.values_list("status", flat=True)) == {"accepted"}
    assert set(entry.legs.values_list("qty", flat=True)) == {Decimal("10")}


def test_an_entry_canceled_after_a_partial_fill_takes_its_legs(session, market):
    price = last_price("SPY")
    entry = _bracket(price - 2, type="limit", limit_price=price - 2)
    services.order_record_broker_state(order_id=entry.pk, state=_filled(entry, Decimal("4"), price))
    services.order_cancel(order=Order.objects.get(pk=entry.pk))
    assert set(entry.legs.values_list("status", flat=True)) == {"canceled"}


def test_a_partial_take_profit_fill_shrinks_the_stop(session, market):
    price = last_price("SPY")
    entry = _bracket(price)
    take_profit = entry.legs.get(leg_role="take_profit")
    services.order_record_broker_state(
        order_id=take_profit.pk, state=_filled(take_profit, Decimal("3"), price + 5)
    )
    stop = entry.legs.get(leg_role="stop_loss")
    assert stop.status == OrderStatus.ACCEPTED and stop.qty == Decimal("7")
    # The stop now closes what is left, and only that.
    next_bar("SPY", open_=price, high=price, low=price - 6, close=price - 6)
    services.orders_process_bars()
    stop.refresh_from_db()
    take_profit.refresh_from_db()
    assert stop.status == OrderStatus.FILLED and stop.filled_qty == Decimal("7")
    assert take_profit.status == OrderStatus.CANCELED
    assert Position.objects.get(symbol="SPY").qty == 0
