"""The trading endpoints: submit (201/200), validation (400, nothing changes), lists, detail,
sessions, account and portfolio, on both URL prefixes."""

from __future__ import annotations

from decimal import Decimal
from functools import partial

import pytest

from tests import helpers
from trading.models import Order, OrderStatus, Trade, TradingSession

pytestmark = pytest.mark.django_db
# This file's orders are for 2 shares unless a test says otherwise.
submit = partial(helpers.submit, qty="2")


def test_submit_creates_201_then_same_client_order_id_returns_200(ready, trader):
    first = submit(trader, client_order_id="wp-123")
    assert first.status_code == 201
    body = first.json()
    assert body["status"] == "filled" and body["client_order_id"] == "wp-123"
    assert body["qty"] == "2.000000"

    again = submit(trader, client_order_id="wp-123")
    assert again.status_code == 200
    assert again.json()["id"] == body["id"]
    assert Order.objects.count() == 1 and Trade.objects.count() == 1


def test_submit_answers_in_the_documented_order_shape(ready, trader, reader):
    """The submit route answers with the event payload; it must stay the schema's Order shape,
    the same as GET orders/{id} for every kind of order."""
    from trading.api.serializers import OrderSerializer

    market = submit(trader, client_order_id="shape-market")
    limit = submit(
        trader, client_order_id="shape-limit", type="limit", limit_price="1.5", time_in_force="gtc"
    )
    for response in (market, limit):
        assert response.status_code == 201
        order = Order.objects.get(pk=response.json()["id"])
        assert response.json() == OrderSerializer(order).data
        assert reader.get(f"/api/v1/orders/{order.pk}").json() == response.json()


def test_submit_without_client_order_id_generates_one(ready, trader):
    body = submit(trader).json()
    assert body["client_order_id"].startswith("trp-")
    assert len(body["client_order_id"]) <= 128


@pytest.mark.parametrize(
    "body",
    [
        {"qty": "0"},
        {"qty": "-1"},
        {"qty": "abc"},
        {"qty": "NaN"},
        {"qty": "1e400"},
        {"qty": "0.0000001"},
        {"side": "hold"},
        {"type": "trailing"},
        {"type": "limit"},
        {"type": "stop"},
        {"type": "stop_limit", "limit_price": "10"},
        {"limit_price": "-5", "type": "limit"},
        {"time_in_force": "ioc"},
        {"symbol": ""},
        {"symbol": "../etc"},
        {"symbol": "A" * 40},
        {"client_order_id": "x" * 129},
        {"client_order_id": "has space"},
        {"symbol": None},
    ],
)
def test_bad_input_is_a_400_and_changes_nothing(ready, trader, body):
    response = submit(trader, **body)
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == "invalid_request"
    assert Order.objects.count() == 0


def test_malformed_json_is_a_400(ready, trader):
    response = trader.post(
        "/api/v1/orders/submit", data="{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_request"


def test_unknown_symbol_is_a_404(ready, trader):
    response = submit(trader, symbol="ZZZZ")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_symbol"


def test_read_key_cannot_trade_and_anonymous_cannot_read(ready, reader, anonymous):
    assert submit(reader).status_code == 403
    assert reader.post("/api/v1/stop_trading", {}, format="json").status_code == 403
    assert reader.post("/api/v1/sessions/start", {}, format="json").status_code == 403
    assert anonymous.get("/api/v1/orders").status_code == 401
    assert Order.objects.count() == 0


def test_orders_list_filters_and_paginates(ready, trader, reader):
    submit(trader, symbol="SPY")
    submit(trader, symbol="QQQ")
    submit(trader, symbol="QQQ", type="limit", limit_price="1")

    everything = reader.get("/api/v1/orders").json()
    assert everything["count"] == 3
    assert reader.get("/api/v1/orders?symbol=qqq").json()["count"] == 2
    assert reader.get("/api/v1/orders?status=filled").json()["count"] == 2
    assert reader.get("/api/v1/orders?status=accepted,filled").json()["count"] == 3
    page = reader.get("/api/v1/orders?limit=1").json()
    assert len(page["results"]) == 1 and page["next"]
    assert reader.get("/api/v1/orders?start=2000-01-01&end=2000-01-02").json()["count"] == 0
    assert reader.get("/api/v1/orders?start=2000-01-01").json()["count"] == 3


@pytest.mark.parametrize(
    "query", ["status=bogus", "start=yesterday", "start=2024-02-02&end=2024-01-01", "symbol=$$"]
)
def test_bad_filters_are_400(ready, reader, query):
    response = reader.get(f"/api/v1/orders?{query}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_order_detail_by_id_or_client_order_id_and_unknown_is_404_json(ready, trader, reader):
    order_id = submit(trader, client_order_id="mine-1").json()["id"]
    assert reader.get(f"/api/v1/orders/{order_id}").json()["client_order_id"] == "mine-1"
    assert reader.get("/api/v1/orders/mine-1").json()["id"] == order_id
    missing = reader.get("/api/v1/orders/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    bad = reader.get("/api/v1/orders/a.b")
    assert bad.status_code == 404 and bad.json()["error"]["code"] == "not_found"
    assert reader.delete(f"/api/v1/orders/{order_id}").status_code == 403


def test_account_and_portfolio_follow_fills(ready, trader, reader):
    before = reader.get("/api/v1/account/info").json()
    assert Decimal(before["cash"]) == ready.starting_cash
    assert before["broker"] == "paper" and before["halted"] is False
    submit(trader, qty="10")
    account = reader.get("/api/v1/account/info").json()
    portfolio = reader.get("/api/v1/portfolio").json()
    assert Decimal(account["cash"]) < ready.starting_cash
    assert Decimal(portfolio["cash"]) == Decimal(account["cash"])
    assert [p["symbol"] for p in portfolio["positions"]] == ["SPY"]
    assert Decimal(portfolio["equity"]) == Decimal(account["equity"])


def test_sessions_start_stop_and_list(ready, trader, reader):
    limit = submit(trader, type="limit", limit_price="1").json()
    running = trader.post("/api/v1/sessions/start", {}, format="json")
    assert running.status_code == 409
    assert running.json()["error"]["code"] == "session_running"

    stopped = trader.post(f"/api/v1/sessions/{ready.pk}/stop", {"reason": "done"}, format="json")
    assert stopped.status_code == 200
    assert stopped.json()["status"] == "stopped"
    assert Order.objects.get(pk=limit["id"]).status == OrderStatus.CANCELED
    assert submit(trader).json()["error"]["code"] == "no_running_session"

    started = trader.post(
        "/api/v1/sessions/start",
        {"starting_cash": "5000", "risk_limits": {"max_open_orders": 3}},
        format="json",
    )
    assert started.status_code == 201
    assert started.json()["risk_limits"] == {"max_open_orders": 3}
    listing = reader.get("/api/v1/sessions").json()
    assert [s["status"] for s in listing["results"]] == ["running", "stopped"]
    assert trader.post("/api/v1/sessions/999999/stop", {}, format="json").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"mode": "casino"},
        {"starting_cash": "-1"},
        {"risk_limits": {"nonsense": 1}},
        {"risk_limits": {"max_order_notional": "lots"}},
        {"risk_limits": [1, 2]},
        {"risk_limits": {"symbol_allowlist": ["SPY QQQ"]}},
        {"risk_limits": {"symbol_allowlist": [""]}},
    ],
)
def test_bad_session_start_is_400_and_changes_nothing(trader, body, db):
    response = trader.post("/api/v1/sessions/start", body, format="json")
    assert response.status_code == 400, response.content
    assert TradingSession.objects.count() == 0


def test_wordpress_prefix_serves_the_same_trading_routes(ready, trader):
    response = trader.post(
        "/wp-json/tradingrobotplug/v1/orders/submit",
        {"symbol": "SPY", "side": "buy", "qty": 1, "client_order_id": "wp-1"},
        format="json",
    )
    assert response.status_code == 201
    assert trader.get("/wp-json/tradingrobotplug/v1/orders/wp-1").json()["status"] == "filled"
