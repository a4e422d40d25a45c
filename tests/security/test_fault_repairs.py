"""Found under faults (issue 14): a halt reports orders that filled meanwhile as filled, and a
periodic reconcile (beat) settles orders a crashed web worker left pending_submit."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from marketdata.selectors import last_price
from trading import services
from trading.brokers.base import BrokerError, Fill
from trading.brokers.paper import PaperBroker
from trading.models import Order, OrderStatus, Trade

pytestmark = pytest.mark.django_db


class FillsBeforeTheCancel(PaperBroker):
    """The order fills at the broker between the halt's listing and its cancel."""

    async def cancel_order(self, broker_order_id):
        raise BrokerError("order is already filled", permanent=True)

    def _get_order_by_client_id(self, client_order_id):
        state = super()._get_order_by_client_id(client_order_id)
        if state is None or state.status == OrderStatus.FILLED:
            return state
        price = state.limit_price
        return dataclasses.replace(
            state,
            status=OrderStatus.FILLED,
            filled_qty=state.qty,
            filled_avg_price=price,
            fills=[Fill(qty=state.qty, price=price, fee=Decimal("0"), executed_at=timezone.now())],
        )


def test_the_halt_reports_an_order_that_filled_meanwhile_as_filled(
    settings, trader, session, market
):
    price = last_price("SPY")
    resting = services.order_submit(
        symbol="SPY", side="buy", qty=Decimal("1"), type="limit", limit_price=price - 5
    ).order
    assert resting.status in (OrderStatus.NEW, OrderStatus.ACCEPTED)
    settings.BROKER = f"{__name__}.FillsBeforeTheCancel"
    response = trader.post("/api/v1/stop_trading", {"reason": "news"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["filled_orders"] == [str(resting.pk)]
    assert body["cancel_failed"] == []
    assert body["canceled_orders"] == []
    resting.refresh_from_db()
    assert resting.status == OrderStatus.FILLED
    assert Trade.objects.filter(order=resting).count() == 1


def test_beat_reconciles_periodically(settings):
    from tradingrobot.schedules import schedules_ensure

    settings.RECONCILE_INTERVAL_SECONDS = 60
    schedules_ensure()
    job = PeriodicTask.objects.get(task="trading.reconcile")
    assert job.enabled and job.interval.every == 60 and job.interval.period == "seconds"


def test_the_beat_task_settles_an_order_a_crashed_worker_left_pending(settings, session, market):
    """A web worker committed the order, claimed its send lease and died: once the lease is
    over, the next periodic run settles it (here: too old to send, so rejected, never resent);
    an order whose lease still runs is left to its sender."""
    from trading.tasks import reconcile

    settings.ORDER_SUBMIT_MAX_AGE_SECONDS = 60
    now = timezone.now()
    crashed = Order.objects.create(
        session=session,
        client_order_id="crashed-1",
        symbol="SPY",
        side="buy",
        qty=1,
        status=OrderStatus.PENDING_SUBMIT,
        submit_attempts=1,
        send_lease_until=now - timedelta(seconds=1),
    )
    Order.objects.filter(pk=crashed.pk).update(created_at=now - timedelta(seconds=120))
    in_flight = Order.objects.create(
        session=session,
        client_order_id="inflight-1",
        symbol="SPY",
        side="buy",
        qty=1,
        status=OrderStatus.PENDING_SUBMIT,
        submit_attempts=1,
        send_lease_until=now + timedelta(seconds=60),
    )
    reconcile()
    crashed.refresh_from_db()
    in_flight.refresh_from_db()
    assert crashed.status == OrderStatus.REJECTED
    assert "submit_unconfirmed" in crashed.reject_reason
    assert in_flight.status == OrderStatus.PENDING_SUBMIT
