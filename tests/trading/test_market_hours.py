"""Market hours from the NYSE calendar on the exchange clock: holidays, early closes, queueing
until the open."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from marketdata import calendar
from tests.helpers import submit
from trading import services
from trading.models import Order, OrderStatus, Trade

pytestmark = pytest.mark.django_db


@pytest.fixture
def at(settings, monkeypatch, session, market):
    """Put the exchange clock at a given UTC time."""
    settings.MARKET_CLOCK = "exchange"

    def set_time(*args):
        moment = datetime(*args, tzinfo=UTC)
        monkeypatch.setattr(calendar, "utcnow", lambda: moment)
        return moment

    return set_time


def test_independence_day_is_closed(at, trader):
    at(2024, 7, 4, 16, 0)  # noon in New York, a Thursday, a holiday
    response = submit(trader)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "market_closed"
    assert error["details"]["next_open"] == "2024-07-05T13:30:00Z"
    assert Order.objects.count() == 0


def test_weekend_and_night_are_closed_regular_hours_are_open(at, trader):
    at(2024, 7, 6, 16, 0)  # Saturday
    assert submit(trader).json()["error"]["code"] == "market_closed"
    at(2024, 7, 8, 2, 0)  # Monday night
    assert submit(trader).json()["error"]["code"] == "market_closed"
    at(2024, 7, 8, 15, 0)  # Monday 11:00 in New York
    assert submit(trader).status_code == 201


def test_early_close_day_after_thanksgiving(at, trader):
    at(2024, 11, 29, 17, 30)  # 12:30 ET: still open on the 13:00 early close
    response = submit(trader, type="limit", limit_price="1")
    assert response.status_code == 201
    order = Order.objects.get()
    assert order.expires_at == datetime(2024, 11, 29, 18, 0, tzinfo=UTC)  # 13:00 ET

    at(2024, 11, 29, 18, 30)  # 13:30 ET: closed early
    assert submit(trader).json()["error"]["code"] == "market_closed"

    services.orders_process_bars()  # the day order expires at the early close
    order.refresh_from_db()
    assert order.status == OrderStatus.EXPIRED


def test_queue_until_open_instead_of_rejecting(at, trader, settings):
    settings.RISK_QUEUE_WHEN_CLOSED = True
    at(2024, 7, 4, 16, 0)
    response = submit(trader, client_order_id="queued-1")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "pending_submit"
    order = Order.objects.get()
    assert order.submit_after == datetime(2024, 7, 5, 13, 30, tzinfo=UTC)

    services.orders_process_bars()  # still closed: nothing is sent
    services.reconcile()  # reconciliation leaves a queued order alone
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_SUBMIT and order.submit_attempts == 0

    at(2024, 7, 5, 13, 35)
    services.orders_process_bars()
    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED
    assert Trade.objects.count() == 1
    services.orders_process_bars()
    assert Trade.objects.count() == 1


def test_kill_switch_cancels_queued_orders(at, trader, settings):
    settings.RISK_QUEUE_WHEN_CLOSED = True
    at(2024, 7, 4, 16, 0)
    submit(trader)
    services.trading_halt(reason="test")
    at(2024, 7, 5, 13, 35)
    services.orders_process_bars()
    assert Order.objects.get().status == OrderStatus.CANCELED
    assert Trade.objects.count() == 0


def test_paper_broker_itself_refuses_market_orders_when_closed(at, session):
    from asgiref.sync import async_to_sync

    from trading.brokers.base import BrokerError, OrderRequest
    from trading.brokers.paper import PaperBroker

    at(2024, 12, 25, 16, 0)
    request = OrderRequest(
        client_order_id="x",
        symbol="SPY",
        side="buy",
        type="market",
        qty=Decimal("1"),
        session_id=session.pk,
    )
    with pytest.raises(BrokerError) as info:
        async_to_sync(PaperBroker().submit_order)(request)
    assert info.value.code == "market_closed" and info.value.permanent
