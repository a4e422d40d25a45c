"""Keys of inactive owners, trade permission, risk limits that only tighten, failed-auth
throttling and forwarded addresses (issue 14, findings 1, 3, 4, 11)."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from rest_framework.test import APIClient

from trading.models import ApiKey, ApiScope, KillSwitch, Order, TradingSession

pytestmark = pytest.mark.django_db

STATUS = "/api/v1/status"


def _bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _owned_key(username="owner", scope=ApiScope.TRADE):
    user = get_user_model().objects.create_user(username=username, password="x-unused-x")
    _key, raw = ApiKey.objects.create_key(name=f"{username}-key", scope=scope, owner=user)
    return user, raw


# --- finding 1: inactive or deleted owners ------------------------------------------------------


def test_a_deactivated_owners_key_is_401_at_once_in_this_process(session):
    user, raw = _owned_key()
    client = _bearer(raw)
    assert client.get(STATUS).status_code == 200  # verified and cached
    user.is_active = False
    user.save()
    assert client.get(STATUS).status_code == 401
    response = client.post(
        "/api/v1/orders/submit", {"symbol": "SPY", "side": "buy", "qty": "1"}, format="json"
    )
    assert response.status_code == 401
    assert client.post("/api/v1/websocket/token", {}, format="json").status_code == 401
    assert not Order.objects.exists()


def test_a_deleted_owners_key_is_401(session):
    user, raw = _owned_key()
    client = _bearer(raw)
    assert client.get(STATUS).status_code == 200
    user.delete()
    assert client.get(STATUS).status_code == 401


def test_an_inactive_owners_key_never_acts_as_a_key_only_user(session):
    user, raw = _owned_key()
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    assert _bearer(raw).get(STATUS).status_code == 401


def test_revocation_and_deactivation_through_update_end_within_the_cache_interval(
    settings, session
):
    """QuerySet.update() sends no signal: the per-process cache holds at most its interval."""
    settings.API_KEY_CACHE_SECONDS = 1
    user, raw = _owned_key()
    _other, raw2 = _owned_key("second")
    a, b = _bearer(raw), _bearer(raw2)
    assert a.get(STATUS).status_code == 200 and b.get(STATUS).status_code == 200
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    ApiKey.objects.filter(name="second-key").update(revoked=True)
    time.sleep(1.1)
    assert a.get(STATUS).status_code == 401
    assert b.get(STATUS).status_code == 401


# --- finding 4: trading needs an explicit permission ---------------------------------------------


def _staff(username="staffer", *perms: str):
    user = get_user_model().objects.create_user(
        username=username, password="x-unused-x", is_staff=True
    )
    for codename in perms:
        user.user_permissions.add(Permission.objects.get(codename=codename))
    return get_user_model().objects.get(pk=user.pk)


def test_staff_alone_may_view_but_not_trade(session, market):
    client = APIClient()
    client.force_login(_staff())
    assert client.get("/api/v1/orders").status_code == 200
    response = client.post(
        "/api/v1/orders/submit", {"symbol": "SPY", "side": "buy", "qty": "1"}, format="json"
    )
    assert response.status_code == 403
    assert client.post("/api/v1/stop_trading", {}, format="json").status_code == 403
    assert not Order.objects.exists()
    assert not KillSwitch.objects.filter(engaged=True).exists()


def test_the_dashboard_disables_the_kill_switch_for_viewers(session):
    client = APIClient()
    client.force_login(_staff())
    page = client.get("/").content.decode()
    assert 'id="stop-trading" class="danger-button" disabled' in page
    client.force_login(get_user_model().objects.create_superuser("su", "", "a-long-unusual-pw-93"))
    page = client.get("/").content.decode()
    assert 'id="stop-trading" class="danger-button">' in page


def test_the_trade_permission_through_a_group_lets_a_session_user_trade(session, market):
    user = get_user_model().objects.create_user(username="trader1", password="x-unused-x")
    traders = Group.objects.create(name="Traders")
    traders.permissions.add(Permission.objects.get(codename="trade"))
    user.groups.add(traders)
    client = APIClient()
    client.force_login(user)
    response = client.post(
        "/api/v1/orders/submit", {"symbol": "SPY", "side": "buy", "qty": "1"}, format="json"
    )
    assert response.status_code == 201, response.content


ADMIN_ACTIONS = [
    ("/admin/trading/killswitch/", "halt"),
    ("/admin/trading/killswitch/", "halt_and_flatten"),
    ("/admin/trading/killswitch/", "resume"),
    ("/admin/trading/killswitch/", "reconcile"),
    ("/admin/trading/tradingsession/", "stop_sessions"),
    ("/admin/trading/order/", "cancel_orders"),
    ("/admin/strategies/strategyconfig/", "run_now"),
    ("/admin/strategies/strategyconfig/", "enable"),
    ("/admin/strategies/strategyconfig/", "disable"),
    ("/admin/strategies/strategyconfig/", "backtest"),
]


@pytest.mark.parametrize(("url", "action"), ADMIN_ACTIONS)
def test_admin_trading_actions_need_the_trade_permission(session, url, action):
    from strategies.models import StrategyConfig

    # An action only shows on a list that has rows.
    StrategyConfig.objects.create(
        name="c", plugin="sma_crossover", symbols=["SPY"], params={}, enabled=False
    )
    Order.objects.create(
        session=session, client_order_id="o1", symbol="SPY", side="buy", qty=1, status="canceled"
    )
    KillSwitch.objects.get_or_create(pk=1)
    viewer = _staff(
        "viewer",
        "view_killswitch",
        "view_tradingsession",
        "view_order",
        "view_strategyconfig",
        "change_killswitch",
        "change_tradingsession",
        "change_strategyconfig",
    )
    client = APIClient()
    client.force_login(viewer)
    page = client.get(url)
    assert page.status_code == 200
    assert f'value="{action}"' not in page.content.decode()
    trader = _staff(
        "trader2",
        "view_killswitch",
        "view_tradingsession",
        "view_order",
        "view_strategyconfig",
        "trade",
    )
    client.force_login(trader)
    assert f'value="{action}"' in client.get(url).content.decode()


def test_a_viewer_posting_the_halt_action_changes_nothing(session):
    KillSwitch.objects.get_or_create(pk=1)
    client = APIClient()
    client.force_login(_staff("viewer", "view_killswitch", "change_killswitch"))
    client.post("/admin/trading/killswitch/", {"action": "halt", "_selected_action": ["1"]})
    assert not KillSwitch.objects.get(pk=1).engaged


def test_the_admin_backtest_page_needs_the_trade_permission(session):
    from strategies.models import StrategyConfig

    config = StrategyConfig.objects.create(
        name="c", plugin="sma_crossover", symbols=["SPY"], params={}, enabled=False
    )
    client = APIClient()
    client.force_login(_staff("viewer", "view_strategyconfig"))
    response = client.get(f"/admin/strategies/strategyconfig/{config.pk}/backtest/?days=1")
    assert response.status_code == 403


# --- finding 3: a session's risk limits only tighten ---------------------------------------------


def _start(trader, limits):
    TradingSession.objects.update(status="stopped")
    return trader.post("/api/v1/sessions/start", {"risk_limits": limits}, format="json")


@pytest.mark.parametrize(
    "limits",
    [
        {"max_order_notional": None},
        {"max_order_notional": "5000"},
        {"max_open_orders": 0},
        {"max_open_orders": 50},
        {"allow_short": True},
        {"enforce_market_hours": False},
        {"enforce_market_hours": None},
        {"queue_when_closed": True},
        {"symbol_allowlist": None},
        {"symbol_allowlist": []},
        {"symbol_allowlist": ["SPY", "TSLA"]},
        {"daily_loss_limit": None},
        {"daily_loss_limit": "1000000"},
    ],
)
def test_a_trade_key_cannot_loosen_the_settings(settings, trader, session, limits):
    settings.RISK_MAX_ORDER_NOTIONAL = __import__("decimal").Decimal("1000")
    settings.RISK_MAX_OPEN_ORDERS = 5
    settings.RISK_ALLOW_SHORT = False
    settings.RISK_ENFORCE_MARKET_HOURS = True
    settings.RISK_QUEUE_WHEN_CLOSED = False
    settings.RISK_SYMBOL_ALLOWLIST = ["SPY", "QQQ"]
    settings.RISK_DAILY_LOSS_LIMIT = __import__("decimal").Decimal("500")
    response = _start(trader, limits)
    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "risk_limits_looser_than_settings"
    assert not TradingSession.objects.filter(status="running").exists()


def test_a_trade_key_may_tighten_the_settings(settings, trader, session):
    settings.RISK_MAX_ORDER_NOTIONAL = __import__("decimal").Decimal("1000")
    settings.RISK_SYMBOL_ALLOWLIST = ["SPY", "QQQ"]
    limits = {
        "max_order_notional": "500",
        "symbol_allowlist": ["SPY"],
        "max_open_orders": 2,
        "allow_short": False,
        "daily_loss_limit": "100",
    }
    response = _start(trader, limits)
    assert response.status_code == 201, response.content


def test_loosening_is_an_admin_act(settings, session):
    from trading.services import session_start

    settings.RISK_ALLOW_SHORT = False
    TradingSession.objects.update(status="stopped")
    admin = get_user_model().objects.create_superuser("root", "", "a-long-unusual-pw-93")
    client = APIClient()
    client.force_login(admin)
    response = client.post(
        "/admin/trading/tradingsession/add/",
        {"mode": "paper", "starting_cash": "1000", "risk_limits": '{"allow_short": true}'},
    )
    assert response.status_code == 302
    assert TradingSession.objects.get(status="running").risk_limits == {"allow_short": True}
    TradingSession.objects.update(status="stopped")
    assert session_start(risk_limits={"allow_short": True}, allow_loosen=True).pk


# --- finding 11: failed authentications throttled per IP; X-Forwarded-For trusted per setting ---


def test_failed_authentications_are_throttled_per_ip_whatever_x_forwarded_for_says(
    settings, session, read_key
):
    settings.AUTH_FAILURE_RATE = "5/minute"
    statuses = []
    for n in range(8):
        client = APIClient(HTTP_X_FORWARDED_FOR=f"10.0.0.{n}")
        client.credentials(HTTP_AUTHORIZATION=f"Bearer bogus.{n}")
        statuses.append(client.get(STATUS).status_code)
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429] * 3
    blocked = APIClient(HTTP_X_FORWARDED_FOR="10.9.9.9")
    blocked.credentials(HTTP_AUTHORIZATION="Bearer another.guess")
    response = blocked.get(STATUS)
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    # Another address is not affected.
    other = APIClient(REMOTE_ADDR="127.0.0.9")
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {read_key}")
    assert other.get(STATUS).status_code == 200


def test_x_forwarded_for_is_read_through_the_configured_proxies_only(settings, session):
    settings.AUTH_FAILURE_RATE = "3/minute"
    from rest_framework.settings import api_settings

    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    api_settings.reload()
    try:
        statuses = []
        for n in range(5):
            # One trusted proxy: the client is the last address it appended.
            client = APIClient(HTTP_X_FORWARDED_FOR=f"6.6.6.6, 10.0.0.{n}")
            client.credentials(HTTP_AUTHORIZATION="Bearer bogus.x")
            statuses.append(client.get(STATUS).status_code)
        assert 429 not in statuses  # five different clients behind the proxy
    finally:
        settings.REST_FRAMEWORK = {
            k: v for k, v in settings.REST_FRAMEWORK.items() if k != "NUM_PROXIES"
        } | {"NUM_PROXIES": 0}
        api_settings.reload()
