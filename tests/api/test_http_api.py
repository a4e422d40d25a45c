"""The REST API as the WordPress plugin and scripts see it: every route's 2xx/401/403/404/400,
the WordPress prefix and the Trading Robot API aliases, filters, throttling, CORS, headers."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from trading.models import KillSwitch, Order, OrderSource
from trading.services import order_submit, trading_halt

pytestmark = pytest.mark.django_db

WP = "/wp-json/tradingrobotplug/v1"
READ_ROUTES = [
    ("get", "/api/v1/status"),
    ("get", "/api/v1/trades"),
    ("get", "/api/v1/positions"),
    ("get", "/api/v1/stock-data"),
    ("get", "/api/v1/dashboard/overview"),
    ("post", "/api/v1/websocket/token"),
    ("get", f"{WP}/status"),
    ("get", f"{WP}/dashboard/overview"),
    ("get", "/api/status"),
    ("get", "/api/portfolio"),
    ("get", "/api/market_data/SPY"),
]
TRADE_ROUTES = [
    ("post", "/api/trade/SPY/buy", {"quantity": 1}),
    ("post", "/api/stop_trading", {}),
]


def _call(client, method, path, body=None):
    if method == "post":
        return client.post(path, body or {}, format="json")
    return client.get(path)


def _error(response) -> dict:
    body = response.json()
    assert set(body["error"]) == {"code", "message", "details"}, body
    return body["error"]


# --- auth on every route -------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), READ_ROUTES)
def test_every_read_route_answers_a_read_key_and_refuses_anonymous(
    method, path, anonymous, reader, session, market
):
    assert _call(reader, method, path).status_code in (200, 201)
    response = _call(anonymous, method, path)
    assert response.status_code == 401
    assert _error(response)["code"] == "not_authenticated"
    assert response["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize(("method", "path", "body"), TRADE_ROUTES)
def test_trading_routes_need_the_trade_scope(
    method, path, body, anonymous, reader, session, market
):
    assert _call(anonymous, method, path, body).status_code == 401
    response = _call(reader, method, path, body)
    assert response.status_code == 403
    assert _error(response)["code"] == "permission_denied"
    assert Order.objects.count() == 0
    assert not KillSwitch.objects.filter(engaged=True).exists()


def test_a_revoked_key_is_refused(read_key, anonymous):
    from trading.models import ApiKey

    ApiKey.objects.filter(name="reader").update(revoked=True)
    anonymous.credentials(HTTP_AUTHORIZATION=f"Bearer {read_key}")
    response = anonymous.get("/api/v1/status")
    assert response.status_code == 401
    assert _error(response)["code"] == "authentication_failed"


def test_revoking_a_key_in_admin_takes_effect_at_once(reader):
    from trading.models import ApiKey

    assert reader.get("/api/v1/positions").status_code == 200  # now remembered as verified
    key = ApiKey.objects.get(name="reader")
    key.revoked = True
    key.save()
    assert reader.get("/api/v1/positions").status_code == 401


def test_dashboard_session_reads_but_a_post_without_csrf_is_refused(
    django_user_model, session, market
):
    user = django_user_model.objects.create_user("ops", password="pw-1234567")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get("/api/v1/dashboard/overview").status_code == 200
    response = client.post("/api/v1/websocket/token", {}, format="json")
    assert response.status_code == 403
    assert _error(response)["code"] == "permission_denied"
    # Not staff: a logged-in user may read, not trade.
    client = APIClient()
    client.force_login(user)
    assert client.post("/api/trade/SPY/buy", {"quantity": 1}, format="json").status_code == 403


def test_create_api_key_prints_a_working_trade_key_once(capsys, session, market):
    call_command("create_api_key", "wp-site", "--scope", "trade")
    raw = capsys.readouterr().out.strip()
    assert "\n" not in raw and len(raw) > 20
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = client.post("/api/trade/SPY/buy", {"quantity": 2}, format="json")
    assert response.status_code == 201
    from trading.models import ApiKey

    assert ApiKey.objects.get(name="wp-site").hashed_key != raw  # only a hash is stored


# --- errors: one shape, 404 and 405 --------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/api/v1/nope", f"{WP}/nope", "/api/v1/status/extra", "/api/nope"]
)
def test_unknown_routes_are_json_404s(reader, path):
    response = reader.get(path)
    assert response.status_code == 404
    assert _error(response)["code"] == "not_found"


def test_wrong_method_is_a_json_405(trader):
    response = trader.get("/api/trade/SPY/buy")
    assert response.status_code == 405
    assert _error(response)["code"] == "method_not_allowed"


def test_malformed_json_is_a_400(trader, session, market):
    response = trader.post("/api/trade/SPY/buy", data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["status"] == "error"
    assert response.json()["error"]["code"] == "malformed_request"
    assert Order.objects.count() == 0


# --- the Trading Robot API aliases ---------------------------------------------------------------


def test_alias_trade_places_a_wordpress_order(trader, session, market):
    response = trader.post("/api/trade/nvda/buy", {"quantity": 3}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "ok"
    order = Order.objects.get()
    assert body["order"]["id"] == str(order.pk)
    assert (order.symbol, order.side, order.qty, order.source) == (
        "NVDA",
        "buy",
        Decimal("3"),
        OrderSource.WORDPRESS,
    )
    assert body["order"]["status"] == "filled"
    positions = trader.get("/api/v1/positions").json()["results"]
    assert [(p["symbol"], p["qty"]) for p in positions] == [("NVDA", "3.000000")]


def test_alias_trade_is_idempotent_by_client_order_id(trader, session, market):
    body = {"quantity": 1, "client_order_id": "wp-42"}
    first = trader.post("/api/trade/SPY/buy", body, format="json")
    again = trader.post("/api/trade/SPY/buy", body, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["order"]["id"] == again.json()["order"]["id"]
    assert Order.objects.count() == 1


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/trade/SPY/buy", {"quantity": 0}, "quantity"),
        ("/api/trade/SPY/buy", {"quantity": -5}, "quantity"),
        ("/api/trade/SPY/buy", {"quantity": "lots"}, "quantity"),
        ("/api/trade/SPY/buy", {}, "quantity"),
        ("/api/trade/SPY/hold", {"quantity": 1}, "side"),
        ("/api/trade/SPY/buy", {"quantity": 1, "type": "limit"}, None),
        ("/api/trade/" + "X" * 17 + "/buy", {"quantity": 1}, "symbol"),
    ],
)
def test_alias_trade_bad_input_is_a_400_and_changes_nothing(
    trader, session, market, path, body, field
):
    response = trader.post(path, body, format="json")
    assert response.status_code == 400
    data = response.json()
    assert data["status"] == "error" and data["message"] == data["error"]["message"]
    if field:
        assert field in data["error"]["details"]
    assert Order.objects.count() == 0


def test_alias_trade_unknown_symbol_is_a_404(trader, session, market):
    response = trader.post("/api/trade/ZZZZ/buy", {"quantity": 1}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_symbol"
    assert Order.objects.count() == 0


def test_alias_stop_trading_halts_every_path(trader, session, market):
    assert trader.get("/api/status").json()["halted"] is False  # now cached
    response = trader.post("/api/stop_trading", {"reason": "news"}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "ok" and response.json()["halted"] is True
    # The cached status is cleared by the halt, on every prefix.
    for path in ("/api/status", "/api/v1/status", f"{WP}/status"):
        assert trader.get(path).json()["kill_switch"]["reason"] == "news"
    refused = trader.post("/api/trade/SPY/buy", {"quantity": 1}, format="json")
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "trading_halted"
    assert Order.objects.count() == 0


def test_alias_stop_trading_rejects_a_bad_body(trader, session):
    response = trader.post("/api/stop_trading", {"flatten": "maybe"}, format="json")
    assert response.status_code == 400
    assert "flatten" in response.json()["error"]["details"]
    assert not KillSwitch.objects.filter(engaged=True).exists()


def test_aliases_return_the_same_data_as_v1(reader, session, market):
    order_submit(symbol="SPY", side="buy", qty=Decimal("2"))
    assert reader.get("/api/status").json() == reader.get("/api/v1/status").json()
    assert reader.get(f"{WP}/status").json() == reader.get("/api/v1/status").json()
    overview = reader.get("/api/v1/dashboard/overview").json()
    wp_overview = reader.get(f"{WP}/dashboard/overview").json()
    for body in (overview, wp_overview):
        del body["data_freshness"]["age_seconds"]  # moves between the two requests
    assert overview == wp_overview
    assert "E" not in overview["unrealized_pnl"] and "E" not in overview["day_pnl"]
    portfolio = reader.get("/api/portfolio").json()
    assert portfolio["equity"] == overview["equity"]
    assert portfolio["positions"] == overview["open_positions"]
    assert [p["symbol"] for p in portfolio["positions"]] == ["SPY"]


def test_alias_market_data_returns_ohlcv_rows(reader, market):
    body = reader.get("/api/market_data/spy?limit=5").json()
    assert body["symbol"] == "SPY" and body["timeframe"] == "5Min"
    rows = body["data"]
    assert len(rows) == 5
    assert set(rows[0]) == {"timestamp", "open", "high", "low", "close", "volume"}
    assert rows[0]["timestamp"].endswith("Z") and rows[0]["timestamp"] < rows[-1]["timestamp"]
    assert Decimal(rows[-1]["low"]) <= Decimal(rows[-1]["close"]) <= Decimal(rows[-1]["high"])
    last = reader.get("/api/v1/stock-data").json()["stock_data"]
    assert Decimal(rows[-1]["close"]) == Decimal(
        next(q for q in last if q["symbol"] == "SPY")["price"]
    )


@pytest.mark.parametrize(
    ("query", "status"), [("?timeframe=7Min", 400), ("?limit=0", 400), ("?limit=x", 400)]
)
def test_alias_market_data_bad_query(reader, market, query, status):
    response = reader.get(f"/api/market_data/SPY{query}")
    assert response.status_code == status
    assert response.json()["status"] == "error"


def test_alias_market_data_unknown_symbol_is_a_404(reader, market):
    response = reader.get("/api/market_data/NOPE")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_symbol"


# --- dashboard overview --------------------------------------------------------------------------


def test_dashboard_overview(reader, session, market):
    from strategies.models import StrategyConfig

    StrategyConfig.objects.create(
        name="sma-spy", plugin="sma_crossover", symbols=["SPY"], enabled=True
    )
    StrategyConfig.objects.create(name="off", plugin="sma_crossover", symbols=["QQQ"])
    order_submit(symbol="TSLA", side="buy", qty=Decimal("4"))
    body = reader.get("/api/v1/dashboard/overview").json()
    assert body["session"]["status"] == "running"
    assert Decimal(body["equity"]) == Decimal(body["cash"]) + sum(
        Decimal(p["market_value"]) for p in body["open_positions"]
    )
    assert [p["symbol"] for p in body["open_positions"]] == ["TSLA"]
    assert body["trades_today"]["count"] == 1
    assert [s["name"] for s in body["active_strategies"]] == ["sma-spy"]
    assert body["halted"] is False
    assert body["data_freshness"]["stale"] is False
    assert isinstance(body["market"]["open"], bool)
    assert Decimal(body["day_pnl"]) == Decimal(body["equity"]) - session.starting_equity

    trading_halt(reason="maintenance")
    body = reader.get("/api/v1/dashboard/overview").json()
    assert body["halted"] is True and body["halt_reason"] == "maintenance"


def test_dashboard_overview_without_any_session(reader):
    body = reader.get("/api/v1/dashboard/overview").json()
    assert body["session"] is None and body["open_positions"] == []
    assert body["data_freshness"] == {
        "last_collection_at": None,
        "age_seconds": None,
        "stale": True,
    }


# --- lists: pagination, filters, ordering --------------------------------------------------------


@pytest.fixture
def fills(session, market):
    for symbol, qty in (("SPY", "1"), ("QQQ", "2"), ("SPY", "3")):
        order_submit(symbol=symbol, side="buy", qty=Decimal(qty))


def test_trades_filter_order_and_paginate(reader, fills):
    body = reader.get("/api/v1/trades?symbol=spy&ordering=qty").json()
    assert body["count"] == 2
    assert [t["qty"] for t in body["results"]] == ["1.000000", "3.000000"]
    page = reader.get("/api/v1/trades?limit=1&offset=1&ordering=-qty").json()
    assert page["count"] == 3 and [t["qty"] for t in page["results"]] == ["2.000000"]
    assert page["next"] and page["previous"]
    assert reader.get("/api/v1/trades?since=2000-01-01").json()["count"] == 3
    assert reader.get("/api/v1/trades?until=2000-01-01").json()["count"] == 0
    assert reader.get("/api/v1/trades?strategy=none").json()["count"] == 0
    # Not an id, though str.isdigit() says so (was a 500); an id beyond any column's range.
    for strategy in ("%C2%B3", "99999999999999999999999"):
        response = reader.get(f"/api/v1/trades?strategy={strategy}")
        assert response.status_code == 200 and response.json()["count"] == 0
    # An odd (but valid) offset is converted to UTC, not handed to the database (was a 500).
    assert reader.get("/api/v1/trades?since=0156-05-23T18:28:04.0-18:18").json()["count"] == 3


@pytest.mark.parametrize(
    "query",
    [
        "ordering=nope",
        "ordering=--qty",
        "since=yesterday",
        "until=2024-13-40",
        "limit=abc",
        "limit=-1",
        "offset=-3",
        "symbol=" + "A" * 40,
    ],
)
def test_bad_list_queries_are_400s(reader, fills, query):
    for path in ("/api/v1/trades", "/api/v1/positions"):
        response = reader.get(f"{path}?{query}")
        assert response.status_code == 400, (path, query)
        assert _error(response)["code"] == "invalid_request"


# --- throttling ----------------------------------------------------------------------------------


def test_throttling_per_key_with_retry_after(settings, reader, trader, session):
    settings.API_THROTTLE_RATE = "3/minute"
    codes = [reader.get("/api/v1/positions").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    response = reader.get("/api/v1/positions")
    assert response.status_code == 429
    assert _error(response)["code"] == "rate_limited"
    assert 1 <= int(response["Retry-After"]) <= 60
    assert response.json()["error"]["details"]["retry_after"] == int(response["Retry-After"])
    # Another key has its own budget.
    assert trader.get("/api/v1/positions").status_code == 200


def test_a_cache_outage_never_causes_a_500(settings, reader, session, market):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    for path in ("/api/v1/status", "/api/status", "/api/v1/positions", "/api/v1/stock-data"):
        assert reader.get(path).status_code == 200, path


# --- CORS and security headers -------------------------------------------------------------------


def test_cors_preflight_from_a_configured_wordpress_origin(settings, anonymous):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example.com"]
    response = anonymous.options(
        "/wp-json/tradingrobotplug/v1/status",
        HTTP_ORIGIN="https://shop.example.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "https://shop.example.com"
    assert "authorization" in response["Access-Control-Allow-Headers"].lower()


def test_cors_refuses_another_origin(settings, anonymous, reader):
    settings.CORS_ALLOWED_ORIGINS = ["https://shop.example.com"]
    preflight = anonymous.options(
        "/api/v1/status",
        HTTP_ORIGIN="https://evil.example.net",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
    )
    assert "Access-Control-Allow-Origin" not in preflight
    response = reader.get("/api/v1/health", HTTP_ORIGIN="https://evil.example.net")
    assert "Access-Control-Allow-Origin" not in response


def test_security_headers(anonymous):
    response = anonymous.get("/api/v1/health")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Referrer-Policy"] == "same-origin"


def test_check_deploy_is_clean_under_production_settings():
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(60),
        "ALLOWED_HOSTS": "robot.example.com",
    }
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


# --- OpenAPI schema and docs ---------------------------------------------------------------------


def test_schema_documents_every_route_with_errors_and_bearer_auth(anonymous):
    from django.urls import get_resolver

    response = anonymous.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    paths = schema["paths"]
    # Every URL pattern under /api/ (the WordPress prefix duplicates them) is documented.
    from django.urls import URLPattern, URLResolver

    def routes(patterns, prefix=""):
        for p in patterns:
            if isinstance(p, URLResolver):
                yield from routes(p.url_patterns, prefix + str(p.pattern))
            elif isinstance(p, URLPattern):
                yield prefix + str(p.pattern)

    api_routes = {
        r for r in routes(get_resolver().url_patterns) if r.startswith(("api/", "^api/", "api/^"))
    }
    assert len(paths) >= len(api_routes) - 2  # minus the schema and docs pages
    for path, operations in paths.items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert {"400", "404"} <= set(responses), (method, path)
            # Public operations (security includes {}: health takes a key optionally) aside.
            if {} not in operation.get("security", []):
                assert {"401", "403", "429"} <= set(responses), (method, path)
                assert {"ApiKey": []} in operation["security"]
            error = responses["400"]["content"]["application/json"]["schema"]["$ref"]
            assert error.rsplit("/", 1)[1] in ("Error", "AliasError")
            assert any(c in responses for c in ("200", "201")), (method, path)
    assert "/api/trade/{symbol}/{side}" in paths
    assert not any(p.startswith("/wp-json/") for p in paths)


def test_docs_page_is_served_without_a_cdn(anonymous):
    response = anonymous.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html.lower()
    assert "cdn" not in html and "unpkg" not in html
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
