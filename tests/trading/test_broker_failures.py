"""The broker failing mid-submit: the order stays pending_submit (committed, never forgotten)
and a later retry completes it exactly once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trading import services
from trading.brokers.base import BrokerError
from trading.brokers.paper import PaperBroker
from trading.models import Order, OrderStatus, Trade

pytestmark = pytest.mark.django_db


class FlakyBroker(PaperBroker):
    """Fault injector: the next `failures` submits die before reaching the broker."""

    failures = 0
    calls: list[str] = []

    async def submit_order(self, request):
        FlakyBroker.calls.append(request.client_order_id)
        if FlakyBroker.failures:
            FlakyBroker.failures -= 1
            raise BrokerError("connection reset", permanent=False, code="broker_unavailable")
        return await super().submit_order(request)


@pytest.fixture
def flaky(settings, session, market):
    settings.BROKER = f"{__name__}.FlakyBroker"
    FlakyBroker.failures = 1
    FlakyBroker.calls = []
    return FlakyBroker


def test_failed_submit_is_kept_pending_and_the_retry_fills_it_once(flaky, trader):
    response = trader.post(
        "/api/v1/orders/submit",
        {"symbol": "SPY", "side": "buy", "qty": "3", "client_order_id": "retry-me"},
        format="json",
    )
    assert response.status_code == 201
    assert response.json()["status"] == "pending_submit"
    order = Order.objects.get(client_order_id="retry-me")
    assert Trade.objects.count() == 0

    from trading.tasks import order_resubmit

    assert order_resubmit(str(order.pk)) == OrderStatus.FILLED
    assert order_resubmit(str(order.pk)) == OrderStatus.FILLED  # a duplicate task: no-op
    # The same request from the client again: the same order back, nothing sent.
    again = trader.post(
        "/api/v1/orders/submit",
        {"symbol": "SPY", "side": "buy", "qty": "3", "client_order_id": "retry-me"},
        format="json",
    )
    assert again.status_code == 200 and again.json()["status"] == "filled"
    assert flaky.calls == ["retry-me", "retry-me"]
    assert Trade.objects.count() == 1
    order.refresh_from_db()
    assert order.submit_attempts == 2


def test_a_stale_attempt_count_cannot_send_twice(flaky):
    flaky.failures = 0
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    stale = Order.objects.get(pk=order.pk)
    stale.status = OrderStatus.PENDING_SUBMIT
    stale.submit_attempts = 0  # what a second sender read before the first one claimed it
    services.order_send(order=stale)
    assert flaky.calls == [order.client_order_id]
    assert Trade.objects.count() == 1


def test_pending_order_is_canceled_not_sent_when_halted_before_the_retry(flaky):
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    assert order.status == OrderStatus.PENDING_SUBMIT
    services.trading_halt(reason="test")
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELED
    assert services.order_resubmit(order_id=order.pk).status == OrderStatus.CANCELED
    assert flaky.calls == [order.client_order_id]
    assert Trade.objects.count() == 0


def test_permanent_failure_is_rejected_with_the_brokers_reason(flaky, trader, settings):
    class Refusing(PaperBroker):
        async def submit_order(self, request):
            raise BrokerError("symbol is halted", permanent=True, code="broker_validation_error")

    globals()["Refusing"] = Refusing
    settings.BROKER = f"{__name__}.Refusing"
    response = trader.post(
        "/api/v1/orders/submit", {"symbol": "SPY", "side": "buy", "qty": "1"}, format="json"
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "broker_validation_error"
    assert response.json()["error"]["message"] == "symbol is halted"
    assert Order.objects.get().status == OrderStatus.REJECTED


def test_the_retry_task_backs_off_and_tries_again_until_the_broker_answers(flaky):
    """The retry policy is the task's: the service raises BrokerUnavailable, the task retries
    (eagerly here) and the order is filled once the broker is back."""
    from trading.tasks import order_resubmit

    flaky.failures = 3  # the submit and the next two sends die
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    assert order.status == OrderStatus.PENDING_SUBMIT

    with pytest.raises(services.BrokerUnavailable):
        services.order_resubmit(order_id=order.pk)  # the service itself never schedules
    assert order_resubmit.apply(args=[str(order.pk)]).get() == OrderStatus.FILLED
    assert flaky.calls == [order.client_order_id] * 4
    assert Trade.objects.count() == 1
