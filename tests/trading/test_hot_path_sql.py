"""The order hot path's hand-written SQL (core.sql) reads and writes exactly what the
ORM would, on SQLite and PostgreSQL: same rows, same types and decimal places, same signals,
and the same row locks."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models.signals import post_save

from core import sql
from marketdata import calendar
from marketdata.models import Bar
from marketdata.selectors import (
    _read_price_and_clock,
    last_price,
    latest_bar_time,
    market_clock,
)
from trading import risk, selectors, services
from trading.models import OPEN_STATUSES, Order, Position, TradingSession

pytestmark = pytest.mark.django_db


def field_values(instance) -> dict:
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def assert_same_row(ours, orm) -> None:
    """Equal values of equal types; decimals with the same places (str shows them)."""
    a, b = field_values(ours), field_values(orm)
    assert a == b
    assert {k: (type(v), str(v)) for k, v in a.items()} == {
        k: (type(v), str(v)) for k, v in b.items()
    }


def test_the_market_reading_is_the_symbols_last_close_and_the_newest_bar_of_any_symbol(market):
    spy_time = latest_bar_time("SPY")
    # A newer bar of another symbol moves the clock; a newer bar of another timeframe, and a
    # bar of SPY's own in another timeframe, move nothing.
    later = spy_time + calendar.BAR
    values = dict(open=1, high=1, low=1, volume=1)
    Bar.objects.create(
        symbol="QQQ", timeframe="5Min", timestamp=later, close=Decimal("7.5"), **values
    )
    Bar.objects.create(
        symbol="SPY", timeframe="1Day", timestamp=later + timedelta(days=1), close=9, **values
    )
    price, clock = _read_price_and_clock("SPY")
    assert (price, clock) == (last_price("SPY"), market_clock())
    assert str(price) == str(last_price("SPY"))  # six places, as the ORM gives them
    assert clock["market_time"] == later + calendar.BAR
    assert _read_price_and_clock("AAPL")[0] is None


def test_the_trading_gate_reads_the_running_session_as_the_orm_does(session, market):
    TradingSession.objects.filter(pk=session.pk).update(
        risk_limits={"max_open_orders": 3, "symbol_allowlist": ["SPY"]}
    )
    gate = selectors.trading_gate()
    assert_same_row(gate.session, TradingSession.objects.get(pk=session.pk))
    assert gate.session.risk_limits == {"max_open_orders": 3, "symbol_allowlist": ["SPY"]}
    assert (gate.halted, gate.halt_reason, gate.existing) == (False, "", None)

    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    assert selectors.trading_gate(order.client_order_id).existing == order
    assert selectors.trading_gate("never-used").existing is None

    services.trading_halt(reason="broker outage")
    gate = selectors.trading_gate(order.client_order_id)
    assert (gate.halted, gate.halt_reason, gate.existing) == (True, "broker outage", order)

    services.session_stop(session=session)
    gate = selectors.trading_gate(order.client_order_id)
    assert (gate.session, gate.halted, gate.existing) == (None, True, order)


def test_the_fill_reads_its_order_and_position_rows_as_the_orm_does(session, market):
    order = services.order_submit(
        symbol="SPY", side="buy", qty=Decimal("2.5"), time_in_force="gtc"
    ).order
    with transaction.atomic():
        assert_same_row(selectors.order_lock(order.pk), Order.objects.get(pk=order.pk))
        assert_same_row(selectors.order_lock(str(order.pk)), Order.objects.get(pk=order.pk))
        position = Position.objects.get(session=session, symbol="SPY")
        assert_same_row(selectors.position_lock(session.pk, "SPY"), position)
        assert selectors.position_lock(session.pk, "NVDA") is None
    with pytest.raises(Order.DoesNotExist):
        selectors.order_lock("8d3e0f64-1a52-4d2e-9a57-5a8f0b1c2d3e")


def test_the_risk_checks_read_open_orders_and_the_held_quantity_as_the_orm_does(session, market):
    services.order_submit(symbol="SPY", side="buy", qty=Decimal("3"))
    price = last_price("QQQ")
    for qty, limit in ((Decimal("1.25"), price - 5), (Decimal("2"), price - 6)):
        services.order_submit(symbol="QQQ", side="buy", qty=qty, type="limit", limit_price=limit)
    orm = Order.objects.filter(session=session, status__in=OPEN_STATUSES).values_list(
        "symbol", "side", "qty", "filled_qty", "limit_price"
    )
    ours = risk._open_orders(session.pk)
    assert len(ours) == 2
    assert sorted(map(str, ours)) == sorted(map(str, orm))
    assert str(risk._held(session.pk, "SPY")) == str(
        Position.objects.get(session=session, symbol="SPY").qty
    )
    assert risk._held(session.pk, "TSLA") == 0


def test_save_existing_writes_every_field_stamps_updated_at_and_sends_the_save_signals(
    session, market
):
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    before = Order.objects.get(pk=order.pk).updated_at
    seen = []

    def receiver(sender, instance, created, **kwargs):
        seen.append((sender, instance.pk, created))

    post_save.connect(receiver, sender=Order, dispatch_uid="test-save-existing")
    try:
        order.reject_reason = "note"
        order.filled_avg_price = Decimal("12.3456789")  # more places than the column keeps
        sql.save_existing(order)
    finally:
        post_save.disconnect(dispatch_uid="test-save-existing", sender=Order)
    stored = Order.objects.get(pk=order.pk)
    assert stored.reject_reason == "note"
    assert stored.filled_avg_price == Decimal("12.345679")
    assert stored.updated_at > before
    assert seen == [(Order, order.pk, False)]


def test_save_existing_refuses_a_row_that_is_gone_instead_of_inserting_it(session):
    position = Position.objects.create(session=session, symbol="SPY")
    Position.objects.filter(pk=position.pk).delete()
    position.qty = Decimal("5")
    with pytest.raises(DatabaseError), transaction.atomic():
        sql.save_existing(position)
    assert not Position.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_fill_holds_row_locks_on_its_order_and_position():
    from marketdata.services import bars_collect

    session = services.session_ensure_running()
    bars_collect()
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    locked_out = []

    def try_lock(model, **lookup):
        try:
            with transaction.atomic():
                model.objects.select_for_update(nowait=True).get(**lookup)
            locked_out.append(False)
        except OperationalError:
            locked_out.append(True)
        finally:
            connection.close()

    with transaction.atomic():
        selectors.order_lock(order.pk)
        selectors.position_lock(session.pk, "SPY")
        for model, lookup in ((Order, {"pk": order.pk}), (Position, {"symbol": "SPY"})):
            thread = threading.Thread(target=try_lock, args=(model,), kwargs=lookup)
            thread.start()
            thread.join()
    assert locked_out == [True, True]
