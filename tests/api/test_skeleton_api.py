from __future__ import annotations

from decimal import Decimal

import pytest

from trading.services import order_submit

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["status", "trades", "positions", "stock-data"])
def test_reads_need_an_api_key(anonymous, path):
    response = anonymous.get(f"/api/v1/{path}")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_wrong_key_is_refused(anonymous):
    anonymous.credentials(HTTP_AUTHORIZATION="Bearer nope.nope")
    response = anonymous.get("/api/v1/status")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "authentication_failed"


def test_status_reports_session_clock_and_kill_switch(reader, session, market):
    body = reader.get("/api/v1/status").json()
    assert body["session"]["status"] == "running"
    assert body["clock"] == "simulated"
    assert body["halted"] is False
    assert body["market_time"].endswith("Z")


def test_stock_data_shape(reader, market, settings):
    body = reader.get("/api/v1/stock-data").json()
    rows = {row["symbol"]: row for row in body["stock_data"]}
    assert sorted(rows) == sorted(settings.PRIMARY_SYMBOLS)
    spy = rows["SPY"]
    assert Decimal(spy["price"]) > 0
    assert spy["timestamp"].endswith("Z")
    assert spy["stale"] is False
    assert {"change", "change_pct", "volume", "age_seconds"} <= set(spy)


def test_trades_and_positions_after_a_fill(reader, session, market):
    order = order_submit(symbol="NVDA", side="buy", qty=Decimal("3")).order
    trades = reader.get("/api/v1/trades").json()
    assert trades["count"] == 1
    assert trades["results"][0]["order_id"] == str(order.pk)
    assert trades["results"][0]["qty"] == "3.000000"
    positions = reader.get("/api/v1/positions").json()
    assert [(p["symbol"], p["qty"]) for p in positions["results"]] == [("NVDA", "3.000000")]


def test_same_routes_under_the_wordpress_prefix(reader, session, market):
    def without_age(body):
        return [{k: v for k, v in row.items() if k != "age_seconds"} for row in body["stock_data"]]

    v1 = reader.get("/api/v1/stock-data").json()
    wp = reader.get("/wp-json/tradingrobotplug/v1/stock-data").json()
    # age_seconds grows between the two calls; everything else must be identical.
    assert without_age(v1) == without_age(wp)


def test_health_is_public_and_reports_parts_to_a_key(anonymous, reader, market):
    response = anonymous.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}  # details need a key (issue 14, finding 10)
    response = reader.get("/api/v1/health")
    assert response.status_code == 200
    body = response.json()
    assert body["database"]["ok"] and body["redis"]["ok"]
    assert body["market_data"]["stale"] is False
    assert body["market_data"]["last_bar_age_seconds"] >= 0


def test_websocket_token(reader):
    response = reader.post("/api/v1/websocket/token", {"user_id": "wp-7"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["token"] and body["expires_at"].endswith("Z")
    from streaming.tokens import token_verify

    claims = token_verify(body["token"])
    assert claims is not None and claims.subject == "wp-7"


def test_unknown_route_is_json_404(reader):
    response = reader.get("/api/v1/nope")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
