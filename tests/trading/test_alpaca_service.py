"""The order service with BROKER=alpaca against the spec-driven fake Alpaca on 127.0.0.1."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trading import services
from trading.models import Order, OrderStatus, Position, Trade

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("lose", [{"status": 504}, {"status": None}])
def test_lost_response_stays_pending_then_retry_finds_it_by_client_order_id(alpaca, lose):
    alpaca.lose_response_next("POST", "/v2/orders", **lose)

    order = services.order_submit(
        symbol="SPY", side="buy", qty=Decimal("2"), client_order_id="lost-1"
    ).order
    assert order.status == OrderStatus.PENDING_SUBMIT
    assert order.broker_order_id == ""
    assert len(alpaca.orders) == 1  # it did arrive

    order = services.order_resubmit(order_id=order.pk)

    assert order.status == OrderStatus.ACCEPTED
    assert order.broker_order_id == alpaca.order_by_client_id("lost-1")["id"]
    assert len(alpaca.orders) == 1
    assert len(alpaca.requests_to("POST", "/v2/orders")) == 1  # never resent
    assert alpaca.violations == []

    # The exchange fills it; the next collection's refresh records exactly one fill.
    alpaca.set_order_status("lost-1", "filled", filled_avg_price="100.5")
    services.orders_process_bars()
    services.orders_process_bars()
    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED
    assert Trade.objects.get(order=order).price == Decimal("100.5")
    assert Position.objects.get(symbol="SPY").qty == Decimal("2")


def test_timeout_then_nothing_at_the_broker_is_sent_exactly_once(alpaca):
    alpaca.fail_next("POST", "/v2/orders", status=503)
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    assert order.status == OrderStatus.PENDING_SUBMIT and alpaca.orders == {}

    order = services.order_resubmit(order_id=order.pk)
    services.order_resubmit(order_id=order.pk)

    assert order.status == OrderStatus.ACCEPTED
    assert len(alpaca.orders) == 1
    assert [r.status for r in alpaca.requests_to("POST", "/v2/orders")] == [503, 200]


def test_buying_power_403_is_a_422_through_the_api(alpaca, trader):
    alpaca.fail_next("POST", "/v2/orders", status=403)
    response = trader.post(
        "/api/v1/orders/submit", {"symbol": "SPY", "side": "buy", "qty": "1"}, format="json"
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "insufficient_buying_power"
    assert Order.objects.get().status == OrderStatus.REJECTED


def test_alpaca_validation_422_passes_its_message(alpaca, trader):
    alpaca.fail_next(
        "POST", "/v2/orders", status=422, body={"code": 40010001, "message": "asset not tradable"}
    )
    response = trader.post(
        "/api/v1/orders/submit", {"symbol": "SPY", "side": "buy", "qty": "1"}, format="json"
    )
    assert response.status_code == 422
    assert response.json()["error"]["message"] == "asset not tradable"


def test_cancel_goes_to_alpaca_and_a_filled_order_keeps_its_fill(alpaca, trader):
    first = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    response = trader.delete(f"/api/v1/orders/{first.pk}")
    assert response.status_code == 200 and response.json()["status"] == "canceled"
    assert alpaca.orders[first.broker_order_id]["status"] == "canceled"

    second = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    alpaca.set_order_status(second.client_order_id, "filled", filled_avg_price="99")
    refused = trader.delete(f"/api/v1/orders/{second.pk}")
    assert refused.status_code == 409
    second.refresh_from_db()
    assert second.status == OrderStatus.FILLED
    assert Trade.objects.get(order=second).price == Decimal("99")


def test_account_info_comes_from_alpaca(alpaca, reader):
    alpaca.set_account(cash="1234.5", buying_power="2469", equity="5000")
    body = reader.get("/api/v1/account/info").json()
    assert (body["broker"], body["cash"], body["buying_power"]) == (
        "alpaca",
        "1234.500000",
        "2469.000000",
    )


def test_account_info_when_alpaca_is_down_is_a_503(alpaca, reader):
    alpaca.fail_next("GET", "/v2/account", status=500)
    response = reader.get("/api/v1/account/info")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "broker_unavailable"


def test_halt_cancels_open_alpaca_orders(alpaca, trader):
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    trader.post("/api/v1/stop_trading", {}, format="json")
    assert alpaca.orders[order.broker_order_id]["status"] == "canceled"
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELED
