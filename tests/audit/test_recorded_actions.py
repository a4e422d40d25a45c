"""Every state change is recorded once, through the real paths (API, aliases, admin, dashboard,
strategies, management command, signals), with who, from where and the outcome."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from rest_framework.test import APIClient

from audit.models import AuditEntry
from strategies.models import StrategyConfig
from tests.helpers import submit
from trading.models import ApiKey, KillSwitch, Order, OrderStatus, TradingSession

pytestmark = pytest.mark.django_db


def entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("id"))


def only(action: str) -> AuditEntry:
    found = entries(action)
    assert len(found) == 1, [(e.action, e.actor, e.outcome) for e in found]
    return found[0]


def test_an_api_order_is_recorded_with_its_key_and_inputs(ready, trader):
    response = submit(trader, qty="3", client_order_id="mine-1")
    assert response.status_code == 201
    entry = only("order.submit")
    assert (entry.actor, entry.via, entry.outcome, entry.code) == ("key:trader", "api", "ok", "")
    assert entry.target == response.json()["id"]
    assert entry.api_key_id == ApiKey.objects.get(name="trader").pk
    assert entry.details["symbol"] == "SPY" and Decimal(entry.details["qty"]) == 3
    assert entry.details["client_order_id"] == "mine-1"
    # Replaying the same client_order_id changes nothing and records nothing.
    assert submit(trader, qty="3", client_order_id="mine-1").status_code == 200
    assert len(entries("order.submit")) == 1


def test_an_order_refused_while_halted_is_recorded_as_refused(ready, trader):
    assert trader.post("/api/v1/stop_trading", {"reason": "news"}, format="json").status_code == 200
    halt = only("trading.halt")
    assert (halt.actor, halt.via, halt.outcome) == ("key:trader", "api", "ok")
    assert halt.details["reason"] == "news"

    refused = submit(trader, client_order_id="late-1")
    assert refused.status_code == 409
    entry = only("order.submit")
    assert (entry.outcome, entry.code, entry.actor) == ("refused", "trading_halted", "key:trader")
    assert entry.target == "late-1"
    assert not Order.objects.exists()

    assert trader.post("/api/v1/resume_trading", {}, format="json").status_code == 200
    resume = only("trading.resume")
    assert (resume.actor, resume.via, resume.outcome) == ("key:trader", "api", "ok")


def test_an_order_refused_by_risk_leaves_one_refused_entry_and_no_order(ready, trader, settings):
    settings.RISK_MAX_ORDER_NOTIONAL = Decimal("100")
    response = submit(trader, qty="5")
    assert response.status_code == 422
    entry = only("order.submit")
    assert (entry.outcome, entry.code) == ("refused", "max_order_notional")
    assert Decimal(entry.details["qty"]) == 5 and entry.details["symbol"] == "SPY"
    assert not Order.objects.exists()
    assert not AuditEntry.objects.filter(outcome="ok", action="order.submit").exists()


def test_an_invalid_order_is_recorded_as_refused(ready, trader):
    response = submit(trader, symbol="NOPE", qty="1")
    assert response.status_code in (400, 404, 422)
    entry = only("order.submit")
    assert entry.outcome == "refused" and entry.code == response.json()["error"]["code"]


def test_an_api_cancel_is_recorded(ready, trader):
    resting = submit(trader, type="limit", limit_price="1").json()
    response = trader.delete(f"/api/v1/orders/{resting['id']}")
    assert response.status_code == 200 and response.json()["status"] == "canceled"
    entry = only("order.cancel")
    assert (entry.actor, entry.via, entry.outcome, entry.target) == (
        "key:trader",
        "api",
        "ok",
        resting["id"],
    )
    # Canceling it again is refused, and recorded so.
    assert trader.delete(f"/api/v1/orders/{resting['id']}").status_code == 409
    again = entries("order.cancel")[-1]
    assert (again.outcome, again.code) == ("refused", "order_not_cancelable")


def test_a_halt_records_the_halt_and_each_order_it_canceled(ready, trader):
    first = submit(trader, type="limit", limit_price="1").json()
    second = submit(trader, type="limit", limit_price="2").json()
    trader.post("/api/v1/stop_trading", {"flatten": True}, format="json")
    assert only("trading.halt").details["flatten"] is True
    assert {e.target for e in entries("order.cancel")} == {first["id"], second["id"]}
    flatten = only("positions.flatten")
    assert flatten.actor == "key:trader"


def test_wordpress_calls_are_recorded_as_wordpress(ready, trader):
    assert trader.post("/api/trade/SPY/buy", {"quantity": 2}, format="json").status_code in (
        200,
        201,
    )
    header = trader.post(
        "/api/v1/orders/submit",
        {"symbol": "SPY", "side": "buy", "qty": "1"},
        format="json",
        HTTP_X_TRP_SOURCE="wordpress",
    )
    assert header.status_code == 201
    prefixed = trader.post(
        "/wp-json/tradingrobotplug/v1/orders/submit",
        {"symbol": "SPY", "side": "buy", "qty": "1"},
        format="json",
    )
    assert prefixed.status_code == 201
    recorded = entries("order.submit")
    assert [(e.via, e.actor, e.outcome) for e in recorded] == [
        ("wordpress", "key:trader", "ok")
    ] * 3


def test_admin_halt_and_resume_name_the_admin_user(ready, admin_client, admin_user):
    from trading.selectors import kill_switch_get

    kill_switch_get()
    url = "/admin/trading/killswitch/"
    admin_client.post(url, {"action": "halt", "_selected_action": ["1"]})
    admin_client.post(url, {"action": "resume", "_selected_action": ["1"]})
    assert not KillSwitch.objects.get(pk=1).engaged
    for action in ("trading.halt", "trading.resume"):
        entry = only(action)
        assert (entry.actor, entry.via, entry.user_id, entry.outcome) == (
            admin_user.username,
            "admin",
            admin_user.pk,
            "ok",
        )


def test_a_dashboard_user_is_recorded_as_dashboard(session, market):
    user = User.objects.create_user("dana", password="x-long-unusual-pass")
    user.user_permissions.add(Permission.objects.get(codename="trade"))
    client = APIClient()
    client.force_login(user)
    assert submit(client).status_code == 201
    entry = only("order.submit")
    assert (entry.actor, entry.via, entry.user_id, entry.api_key_id) == (
        "dana",
        "dashboard",
        user.pk,
        None,
    )


def test_session_start_and_stop_are_recorded(db, trader, settings):
    response = trader.post(
        "/api/v1/sessions/start",
        {"mode": "paper", "risk_limits": {"max_order_notional": "500"}},
        format="json",
    )
    assert response.status_code == 201, response.content
    start = only("session.start")
    session_id = response.json()["id"]
    assert (start.actor, start.via, start.target) == ("key:trader", "api", f"session:{session_id}")
    assert start.details["risk_limits"] == {"max_order_notional": "500.000000"} or (
        start.details["risk_limits"]["max_order_notional"].startswith("500")
    )
    # A second start is refused (one session at a time) and recorded so.
    assert trader.post("/api/v1/sessions/start", {}, format="json").status_code == 409
    assert entries("session.start")[-1].code == "session_running"
    assert not entries("risk_limits.loosen")

    stop = trader.post(f"/api/v1/sessions/{session_id}/stop", {}, format="json")
    assert stop.status_code == 200
    assert only("session.stop").target == f"session:{session_id}"
    assert TradingSession.objects.get(pk=session_id).status == "stopped"


def test_a_key_cannot_loosen_limits_and_an_admin_loosening_is_recorded(
    db, trader, admin_client, admin_user, settings
):
    settings.RISK_MAX_ORDER_NOTIONAL = Decimal("1000")
    refused = trader.post(
        "/api/v1/sessions/start",
        {"risk_limits": {"max_order_notional": "5000"}},
        format="json",
    )
    assert refused.status_code == 403
    entry = only("session.start")
    assert (entry.outcome, entry.code) == ("refused", "risk_limits_looser_than_settings")
    assert not TradingSession.objects.exists()

    response = admin_client.post(
        "/admin/trading/tradingsession/add/",
        {"mode": "paper", "starting_cash": "1000", "risk_limits": '{"max_order_notional": "5000"}'},
    )
    assert response.status_code == 302, response.content[:2000]
    loosen = only("risk_limits.loosen")
    assert (loosen.actor, loosen.via, loosen.details["loosened"]) == (
        admin_user.username,
        "admin",
        ["max_order_notional"],
    )


def test_keys_created_by_command_and_revoked_and_deleted_in_admin(db, admin_client, admin_user):
    call_command("create_api_key", "robot", "--scope", "trade", stdout=StringIO())
    key = ApiKey.objects.get(name="robot")
    created = only("key.create")
    assert (created.actor, created.via, created.target) == ("system", "system", key.prefix)
    assert created.details == {
        "name": "robot",
        "scope": "trade",
        "prefix": key.prefix,
        "owner": None,
    }
    # Neither the key nor its hash is ever recorded.
    assert key.hashed_key not in str(created.details)

    response = admin_client.post(
        f"/admin/trading/apikey/{key.pk}/change/",
        {"name": "robot", "scope": "trade", "revoked": "on", "expiry_date": "", "owner": ""},
    )
    assert response.status_code == 302, response.content[:3000]
    revoked = only("key.revoke")
    assert (revoked.actor, revoked.via, revoked.user_id) == ("admin", "admin", admin_user.pk)

    admin_client.post(f"/admin/trading/apikey/{key.pk}/delete/", {"post": "yes"})
    assert not ApiKey.objects.filter(pk=key.pk).exists()
    deleted = only("key.delete")
    assert (deleted.actor, deleted.target) == ("admin", key.prefix)
    # The entries about the key outlive it.
    assert AuditEntry.objects.filter(target=key.prefix).count() == 3


def test_strategy_config_changes_in_admin_are_recorded(db, admin_client, admin_user):
    changelist = "/admin/strategies/strategyconfig/"
    form = {
        "name": "sma",
        "plugin": "sma_crossover",
        "symbols": '["SPY"]',
        "params": '{"fast": 5}',
        "allocation": "0.5",
        "timeframe": "5Min",
    }
    assert admin_client.post(f"{changelist}add/", form).status_code == 302
    config = StrategyConfig.objects.get()
    created = only("strategy.config_create")
    assert (created.actor, created.via, created.details["plugin"]) == (
        "admin",
        "admin",
        "sma_crossover",
    )

    changed_form = {**form, "params": '{"fast": 7}', "allocation": "0.25"}
    assert admin_client.post(f"{changelist}{config.pk}/change/", changed_form).status_code == 302
    changed = only("strategy.config_change")
    assert changed.actor == "admin" and changed.target == f"strategy:{config.pk}"
    assert changed.details["changes"]["params"]["to"]["fast"] == 7
    assert changed.details["changes"]["allocation"] == {"from": "0.5000", "to": "0.25"}

    admin_client.post(changelist, {"action": "enable", "_selected_action": [config.pk]})
    assert only("strategy.enable").actor == "admin"
    admin_client.post(f"{changelist}{config.pk}/delete/", {"post": "yes"})
    assert only("strategy.config_delete").details["strategy"] == "sma"


def test_a_scheduled_strategy_run_is_the_strategys_own(ready):
    from strategies.services import strategies_run_enabled

    StrategyConfig.objects.create(
        name="trend",
        plugin="sma_crossover",
        symbols=["SPY"],
        params={"fast": 2, "slow": 5},
        allocation=Decimal("0.5"),
        enabled=True,
    )
    strategies_run_enabled()
    run = only("strategy.run")
    assert (run.actor, run.via, run.outcome) == ("trend", "strategy", "ok")
    orders = entries("order.submit")
    assert orders and all((e.actor, e.via) == ("trend", "strategy") for e in orders)
    assert run.details["orders"] == [e.target for e in orders]


def test_run_now_names_who_asked_and_the_orders_name_the_strategy(ready, trader):
    config = StrategyConfig.objects.create(
        name="trend",
        plugin="sma_crossover",
        symbols=["SPY"],
        params={"fast": 2, "slow": 5},
        allocation=Decimal("0.5"),
    )
    response = trader.post(f"/api/v1/strategies/{config.pk}/execute", {}, format="json")
    assert response.status_code == 200, response.content
    run = only("strategy.run")
    assert (run.actor, run.via) == ("key:trader", "api")
    assert all(e.via == "strategy" for e in entries("order.submit"))


def test_plugin_reload_is_recorded(db, trader, admin_client):
    assert trader.post("/api/v1/strategies/reload", {}, format="json").status_code == 200
    admin_client.post("/admin/strategies/strategyconfig/plugins/")
    reloads = entries("plugins.reload")
    assert [(e.actor, e.via) for e in reloads] == [("key:trader", "api"), ("admin", "admin")]
    assert "sma_crossover" in reloads[0].details["plugins"]


def test_work_outside_requests_is_the_systems(ready):
    from trading import services

    services.trading_halt(reason="cron")
    entry = only("trading.halt")
    assert (entry.actor, entry.via, entry.user_id) == ("system", "system", None)


def test_the_daily_loss_halt_is_the_systems_even_inside_a_users_request(ready, trader, settings):
    settings.RISK_DAILY_LOSS_LIMIT = Decimal("100")
    TradingSession.objects.filter(pk=ready.pk).update(cash=ready.cash - Decimal("1000"))
    response = submit(trader)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "daily_loss_limit"
    halt = only("trading.halt")
    assert (halt.actor, halt.via) == ("system", "system")
    refused = only("order.submit")
    assert (refused.actor, refused.outcome, refused.code) == (
        "key:trader",
        "refused",
        "daily_loss_limit",
    )


def test_order_status_is_unchanged_by_recording(ready, trader):
    # The entry is in the order's transaction; the order still fills as before.
    body = submit(trader).json()
    assert body["status"] == OrderStatus.FILLED


def test_a_key_added_in_admin_is_recorded_with_the_admin_and_never_the_key(
    db, admin_client, admin_user
):
    response = admin_client.post(
        "/admin/trading/apikey/add/",
        {"name": "wp-site", "scope": "read", "expiry_date": "", "owner": ""},
        follow=True,
    )
    assert response.status_code == 200
    key = ApiKey.objects.get(name="wp-site")
    entry = only("key.create")
    assert (entry.actor, entry.via, entry.user_id) == ("admin", "admin", admin_user.pk)
    assert entry.details == {
        "name": "wp-site",
        "scope": "read",
        "prefix": key.prefix,
        "owner": None,
    }


def test_a_deleted_key_keeps_the_entries_it_made(ready, trader):
    submit(trader)
    ApiKey.objects.get(name="trader").delete()
    entry = only("order.submit")
    assert (entry.actor, entry.api_key_id, entry.outcome) == ("key:trader", None, "ok")


def test_admin_cancel_and_session_stop_name_the_admin_user(ready, trader, admin_client):
    resting = submit(trader, type="limit", limit_price="1").json()
    admin_client.post(
        "/admin/trading/order/", {"action": "cancel_orders", "_selected_action": [resting["id"]]}
    )
    assert Order.objects.get(pk=resting["id"]).status == OrderStatus.CANCELED
    cancel = only("order.cancel")
    assert (cancel.actor, cancel.via, cancel.target) == ("admin", "admin", resting["id"])
    admin_client.post(
        "/admin/trading/tradingsession/",
        {"action": "stop_sessions", "_selected_action": [ready.pk]},
    )
    stop = only("session.stop")
    assert (stop.actor, stop.via, stop.target) == ("admin", "admin", f"session:{ready.pk}")
    # The submit was the key's, over the API.
    assert (only("order.submit").actor, only("order.submit").via) == ("key:trader", "api")
