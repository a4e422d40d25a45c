"""The order service with BROKER=robinhood against the fake Robinhood on 127.0.0.1: the same
risk checks, idempotency and kill switch as with every broker."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from tests.fakes.robinhood_fixtures import fake_robinhood, robinhood_settings  # noqa: F401
from tests.helpers import submit
from trading import services
from trading.brokers.robinhood_orders import ref_id_for
from trading.models import Order, OrderStatus, Position, Trade

pytestmark = pytest.mark.django_db


@pytest.fixture
def robinhood(robinhood_settings, market):  # noqa: F811
    session = services.session_start()
    assert session.broker == "robinhood"
    return robinhood_settings


def test_submit_through_the_api_reaches_robinhood_with_our_ref_id(robinhood, trader):
    response = submit(trader, qty="2", client_order_id="api-1")

    assert response.status_code in (200, 201), response.content
    order = Order.objects.get(client_order_id="api-1")
    assert order.status == OrderStatus.ACCEPTED
    placed = robinhood.order_by_ref(ref_id_for("api-1"))
    assert placed is not None and order.broker_order_id == placed["id"]
    assert robinhood.violations == []


def test_lost_response_then_retry_finds_the_order_and_never_sends_twice(robinhood):
    robinhood.lose_response_next("POST", "/orders/")

    order = services.order_submit(
        symbol="SPY", side="buy", qty=Decimal("2"), client_order_id="lost-1"
    ).order
    assert order.status == OrderStatus.PENDING_SUBMIT and order.broker_order_id == ""
    assert len(robinhood.orders) == 1  # it did arrive

    order = services.order_resubmit(order_id=order.pk)

    assert order.status == OrderStatus.ACCEPTED
    assert order.broker_order_id == robinhood.order_by_ref(ref_id_for("lost-1"))["id"]
    assert len(robinhood.orders) == 1
    assert len(robinhood.requests_to("POST", "/orders/")) == 1  # never resent

    # The fill arrives; the next collection's refresh records exactly one trade.
    robinhood.set_state(order.broker_order_id, "filled", fill_price="100.50")
    services.orders_process_bars()
    services.orders_process_bars()
    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED
    assert Trade.objects.get(order=order).price == Decimal("100.5")
    assert Position.objects.get(symbol="SPY").qty == Decimal("2")


def test_resend_after_a_timeout_carries_the_same_ref_id(robinhood):
    robinhood.fail_next("POST", "/orders/", status=503)
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    assert order.status == OrderStatus.PENDING_SUBMIT and robinhood.orders == {}

    order = services.order_resubmit(order_id=order.pk)
    services.order_resubmit(order_id=order.pk)

    assert order.status == OrderStatus.ACCEPTED and len(robinhood.orders) == 1
    posts = robinhood.requests_to("POST", "/orders/")
    assert [p.status for p in posts] == [503, 201]
    assert {p.body["ref_id"] for p in posts} == {ref_id_for(order.client_order_id)}
    uuid.UUID(posts[0].body["ref_id"])


def test_insufficient_buying_power_is_a_422_and_the_order_rejected(robinhood, trader):
    response = submit(trader, qty="500")  # 500 x 100.00 > 10000: Robinhood refuses
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "insufficient_buying_power"
    assert Order.objects.get().status == OrderStatus.REJECTED
    assert robinhood.orders == {}


def test_risk_checks_apply_before_robinhood_is_called(robinhood, trader, settings):
    settings.RISK_MAX_ORDER_NOTIONAL = Decimal("1")
    response = submit(trader, qty="6")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "max_order_notional"
    assert robinhood.requests_to("POST", "/orders/") == []


def test_cancel_through_the_api(robinhood, trader):
    order = services.order_submit(
        symbol="SPY", side="buy", qty=Decimal("1"), type="limit", limit_price=Decimal("90")
    ).order
    response = trader.delete(f"/api/v1/orders/{order.pk}")
    assert response.status_code == 200 and response.json()["status"] == "canceled"
    assert robinhood.orders[order.broker_order_id]["state"] == "cancelled"


def test_kill_switch_cancels_open_robinhood_orders_and_refuses_new_ones(robinhood, trader):
    order = services.order_submit(
        symbol="SPY", side="buy", qty=Decimal("1"), type="limit", limit_price=Decimal("90")
    ).order
    trader.post("/api/v1/stop_trading", {}, format="json")

    assert robinhood.orders[order.broker_order_id]["state"] == "cancelled"
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELED
    posts = len(robinhood.requests_to("POST", "/orders/"))
    assert submit(trader).status_code == 409
    assert len(robinhood.requests_to("POST", "/orders/")) == posts


def test_account_info_and_reconciled_positions_come_from_robinhood(robinhood, reader):
    robinhood.add_position("AAPL", "3", "150")
    body = reader.get("/api/v1/account/info").json()
    assert (body["broker"], body["buying_power"]) == ("robinhood", "10000.000000")

    services.reconcile()

    assert Position.objects.get(symbol="AAPL").qty == Decimal("3")


def test_approval_needed_leaves_orders_pending_not_rejected(robinhood, trader):
    robinhood.require_approval = True

    response = submit(trader, client_order_id="wait-1")

    assert Order.objects.get(client_order_id="wait-1").status == OrderStatus.PENDING_SUBMIT
    assert response.status_code in (200, 201, 202, 503), response.content
    assert robinhood.orders == {}
    status = trader.get("/api/v1/status").json()
    assert status["broker_state"]["state"] == "approval_needed"


def test_open_orders_are_refreshed_with_one_listing_per_collection(robinhood):
    orders = [
        services.order_submit(
            symbol="SPY", side="buy", qty=Decimal("1"), type="limit", limit_price=Decimal("90")
        ).order
        for _ in range(3)
    ]
    robinhood.set_state(orders[0].broker_order_id, "filled", fill_price="89.50")
    robinhood.set_state(orders[1].broker_order_id, "confirmed")
    before = len(robinhood.requests)

    services.orders_process_bars()

    calls = [(r.method, r.path) for r in robinhood.requests[before:]]
    assert calls == [("GET", "/orders/")]  # not one call per open order
    statuses = [Order.objects.get(pk=o.pk).status for o in orders]
    assert statuses == [OrderStatus.FILLED, OrderStatus.NEW, OrderStatus.ACCEPTED]
    assert Trade.objects.get(order=orders[0]).price == Decimal("89.5")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {
                "order_class": "bracket",
                "take_profit": {"limit_price": "150"},
                "stop_loss": {"stop_price": "50"},
            },
            "order_class",
        ),
        ({"type": "trailing_stop", "trail_percent": "5"}, "type"),
    ],
)
def test_protective_orders_are_refused_before_anything_is_recorded(robinhood, trader, body, field):
    # The adapter runs no legs or trailing stops: a 400 naming the field, not a silent bracket
    # whose exits never work.
    response = submit(trader, client_order_id="protect-1", **body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["details"]["field"] == field
    assert "robinhood broker does not support" in response.json()["error"]["message"]
    assert not Order.objects.exists()
    assert robinhood.requests_to("POST", "/orders/") == []
