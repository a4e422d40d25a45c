"""Orders the WordPress plugin sends are recorded with source "wordpress"; one fill by id."""

from __future__ import annotations

import pytest

from trading.models import Order, OrderSource

pytestmark = pytest.mark.django_db


@pytest.fixture
def ready(session, market):
    return session


def _submit(client, **headers):
    return client.post(
        "/api/v1/orders/submit",
        {"symbol": "SPY", "side": "buy", "qty": "1"},
        format="json",
        **headers,
    )


def test_plugin_header_records_source_wordpress(ready, trader):
    response = _submit(trader, HTTP_X_TRP_SOURCE="wordpress")
    assert response.status_code == 201
    assert Order.objects.get().source == OrderSource.WORDPRESS


@pytest.mark.parametrize("headers", [{}, {"HTTP_X_TRP_SOURCE": "strategy"}])
def test_other_callers_stay_api(ready, trader, headers):
    assert _submit(trader, **headers).status_code == 201
    assert Order.objects.get().source == OrderSource.API


def test_legacy_trade_alias_is_wordpress(ready, trader):
    response = trader.post("/api/trade/SPY/buy", {"quantity": 2}, format="json")
    assert response.status_code == 201
    assert Order.objects.get().source == OrderSource.WORDPRESS


def test_trade_detail_by_id_and_404(ready, trader, reader):
    assert _submit(trader).status_code == 201
    listed = reader.get("/api/v1/trades").json()["results"][0]
    one = reader.get(f"/api/v1/trades/{listed['id']}")
    assert one.status_code == 200
    assert one.json() == listed
    missing = reader.get("/api/v1/trades/999999")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"
    assert reader.get("/api/v1/trades/abc").status_code == 404
