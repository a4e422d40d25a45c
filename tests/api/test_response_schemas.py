"""The market-data and dashboard reads build their JSON by hand: each real answer, with every
list in it filled, conforms to the response schema /api/v1/schema/ documents for it (what the
WordPress plugin and any generated client rely on)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from schemathesis.specs.openapi.checks import response_schema_conformance

from marketdata.selectors import last_price
from strategies.models import StrategyConfig
from trading import services

pytestmark = pytest.mark.django_db


@pytest.fixture
def api_schema():
    # The real WSGI app inside the test's transaction (see test_api_fuzz.wsgi_app).
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def trading_day(session, market):
    """A position, a fill, a resting order, an equity point and a strategy: no empty lists."""
    services.order_submit(symbol="SPY", side="buy", qty=Decimal("2"))
    services.order_submit(
        symbol="QQQ", side="buy", qty=Decimal("1"), type="limit", limit_price=last_price("QQQ") - 5
    )
    services.session_mark_to_market()
    StrategyConfig.objects.create(
        name="sma-spy", plugin="sma_crossover", symbols=["SPY"], params={}, enabled=True
    )


@pytest.mark.parametrize(
    ("path", "query", "lists"),
    [
        ("/api/v1/stock-data/{symbol}", {"days": 2}, ["stock_data"]),
        ("/api/v1/market-data", {"symbol": "SPY", "timeframe": "15Min", "limit": 5}, ["data"]),
        ("/api/v1/market_data/{symbol}", {"timeframe": "1Day"}, ["data"]),
        ("/api/v1/chart-data", {"symbol": "SPY", "days": 1}, ["candles"]),
        (
            "/api/v1/dashboard/snapshot",
            {},
            ["positions", "open_orders", "trades", "equity_curve", "strategies"],
        ),
    ],
)
def test_each_read_answers_in_its_documented_shape(
    api_schema, trading_day, trade_key, path, query, lists
):
    operation = api_schema[path]["GET"]
    case = operation.Case(
        path_parameters={"symbol": "SPY"} if "{symbol}" in path else {}, query=query
    )
    response = case.call(headers={"Authorization": f"Bearer {trade_key}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert all(body[name] for name in lists), {name: body[name] for name in lists}
    case.validate_response(response, checks=[response_schema_conformance])


def test_a_documented_shape_catches_an_answer_that_breaks_it(
    api_schema, trading_day, trade_key, monkeypatch
):
    """The check above can fail: a chart answer with prices as strings is refused."""
    from marketdata.api import views

    real = views._dumps

    def prices_as_strings(value):
        if isinstance(value, list) and value and isinstance(value[0], dict) and "time" in value[0]:
            value = [{**row, "close": str(row["close"])} for row in value]
        return real(value)

    monkeypatch.setattr(views, "_dumps", prices_as_strings)
    case = api_schema["/api/v1/chart-data"]["GET"].Case(query={"symbol": "TSLA", "days": 1})
    response = case.call(headers={"Authorization": f"Bearer {trade_key}"})
    assert response.status_code == 200
    assert isinstance(response.json()["candles"][0]["close"], str)
    with pytest.raises(BaseExceptionGroup) as caught:
        case.validate_response(response, checks=[response_schema_conformance])
    assert any('is not of type "number"' in str(e) for e in caught.value.exceptions)
