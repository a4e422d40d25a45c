"""A NUL character anywhere in a request (path, query, JSON or form body) is a clear 400 that
changes nothing. PostgreSQL cannot hold a NUL in text or JSON: before, `?strategy=%00` reached
the database and answered 500 (found by a longer schemathesis run)."""

from __future__ import annotations

import pytest

from trading.models import Order, TradingSession

pytestmark = pytest.mark.django_db


def assert_refused(response, field: str | None = None) -> None:
    assert response.status_code == 400, response.content
    error = response.json()["error"]
    assert error["code"] in ("invalid_request", "malformed_request")
    assert "NUL" in error["message"]
    if field:
        assert field in error["details"]


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/trades?strategy=o%00x",
        "/api/v1/trades?symbol=%00",
        "/api/v1/orders?symbol=SPY&status=new%00",
        "/wp-json/tradingrobotplug/v1/trades?strategy=%00",
    ],
)
def test_a_nul_in_a_query_parameter_is_a_400_naming_it(reader, session, url):
    name = url.split("?")[1].split("%00")[0].rsplit("&", 1)[-1].split("=")[0]
    assert_refused(reader.get(url), name)


def test_a_nul_in_the_path_is_a_400(reader, session):
    assert_refused(reader.get("/api/v1/orders/abc%00def"))


def test_a_nul_in_a_json_body_is_a_400_and_changes_nothing(trader, session, market):
    response = trader.post(
        "/api/v1/orders/submit",
        {"symbol": "SPY", "side": "buy", "qty": "1", "client_order_id": "a\x00b"},
        format="json",
    )
    assert response.status_code == 400
    response = trader.post(
        "/api/v1/sessions/start", {"risk_limits": {"note\x00": "x"}}, format="json"
    )
    assert_refused(response)
    assert not Order.objects.exists()
    assert TradingSession.objects.count() == 1


def test_a_nul_in_a_form_body_is_a_400_and_changes_nothing(trader, session, market):
    response = trader.post(
        "/api/trade/SPY/buy",
        "quantity=1&client_order_id=x%00y",
        content_type="application/x-www-form-urlencoded",
    )
    assert_refused(response)
    assert not Order.objects.exists()


def test_admin_search_with_a_nul_is_a_400(admin_client):
    assert admin_client.get("/admin/trading/order/?q=%00").status_code == 400


def test_ordinary_requests_pass(reader, session, market):
    assert reader.get("/api/v1/trades?symbol=SPY").status_code == 200
    assert reader.get("/api/v1/orders").status_code == 200
