"""Reconciliation repairs planted mismatches with the broker (the fake Alpaca) and never
resends an order."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.utils import timezone

from trading import services
from trading.models import Order, OrderSource, OrderStatus, Position, Trade

pytestmark = pytest.mark.django_db


def posts(fake) -> int:
    return len(fake.requests_to("POST", "/v2/orders"))


def test_pending_order_the_broker_has_is_adopted(alpaca):
    alpaca.lose_response_next("POST", "/v2/orders", status=None)
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    assert order.status == OrderStatus.PENDING_SUBMIT

    report = services.reconcile()

    order.refresh_from_db()
    assert order.status == OrderStatus.ACCEPTED and order.broker_order_id
    assert any("adopted" in r for r in report.repairs)
    assert posts(alpaca) == 1


def test_old_pending_order_unknown_to_the_broker_is_rejected_not_resent(alpaca):
    alpaca.fail_next("POST", "/v2/orders", status=503)
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(hours=3))

    services.reconcile()

    order.refresh_from_db()
    assert order.status == OrderStatus.REJECTED
    assert "never reached the broker" in order.reject_reason
    assert posts(alpaca) == 1 and alpaca.orders == {}


def test_young_pending_order_unknown_to_the_broker_is_left_for_the_retry(alpaca):
    alpaca.fail_next("POST", "/v2/orders", status=503)
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    report = services.reconcile()
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_SUBMIT
    assert any("retry scheduled" in r for r in report.repairs)
    assert posts(alpaca) == 1


def test_fill_missed_while_down_is_recorded(alpaca):
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("4")).order
    alpaca.set_order_status(order.client_order_id, "filled", filled_avg_price="101")

    services.reconcile()

    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED
    assert Trade.objects.get(order=order).qty == Decimal("4")
    services.reconcile()
    assert Trade.objects.count() == 1


def test_order_the_broker_forgot_is_closed_locally(alpaca):
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    alpaca.orders.clear()
    services.reconcile()
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELED
    assert "unknown to the broker" in order.reject_reason


def test_broker_order_unknown_here_is_adopted(alpaca):
    import asyncio

    from trading.brokers.alpaca import AlpacaBroker
    from trading.brokers.base import OrderRequest

    asyncio.run(
        AlpacaBroker().submit_order(
            OrderRequest(
                client_order_id="placed-on-the-website",
                symbol="QQQ",
                side="buy",
                type="limit",
                qty=Decimal("3"),
                limit_price=Decimal("10"),
            )
        )
    )
    services.reconcile()
    order = Order.objects.get(client_order_id="placed-on-the-website")
    assert (order.source, order.status, order.qty) == (
        OrderSource.RECONCILE,
        OrderStatus.ACCEPTED,
        Decimal("3"),
    )
    assert posts(alpaca) == 1


def test_position_mismatch_is_repaired_to_the_brokers(alpaca):
    alpaca.set_position("NVDA", qty="5", avg_entry_price="100", current_price="110")
    services.reconcile()
    position = Position.objects.get(symbol="NVDA")
    assert (position.qty, position.avg_entry_price) == (Decimal("5"), Decimal("100"))


def test_pending_order_the_halt_could_not_check_is_adopted_then_canceled_at_the_broker(alpaca):
    alpaca.lose_response_next("POST", "/v2/orders", status=None)
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    alpaca.fail_next("GET", "/v2/orders:by_client_order_id", status=503)  # lookup during halt
    result = services.trading_halt(reason="test")
    assert result.cancel_failed  # could not tell whether the broker had it: not marked canceled
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_SUBMIT

    services.reconcile()

    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELED
    assert alpaca.order_by_client_id(order.client_order_id)["status"] == "canceled"
    assert posts(alpaca) == 1


def test_manage_py_reconcile_and_worker_start(alpaca, capsys):
    alpaca.set_position("TSLA", qty="2", avg_entry_price="200")
    call_command("reconcile")
    assert "position TSLA" in capsys.readouterr().out

    from celery.signals import worker_ready

    alpaca.set_position("TSLA", qty="3", avg_entry_price="200")
    worker_ready.send(sender=None)
    assert Position.objects.get(symbol="TSLA").qty == Decimal("3")


def test_paper_reconcile_is_a_no_op(session, market):
    services.order_submit(symbol="SPY", side="buy", qty=Decimal("1"))
    report = services.reconcile()
    assert report.repairs == [] and report.errors == []
