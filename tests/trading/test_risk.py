"""Every pre-trade risk rejection: HTTP 422 with its own code, nothing committed; limits from
settings and per session; the daily loss limit trips the kill switch by itself."""

from __future__ import annotations

from decimal import Decimal

import pytest

from marketdata.models import Bar
from marketdata.selectors import last_price
from tests.helpers import submit
from trading import services
from trading.models import Order, Trade
from trading.selectors import kill_switch_get

pytestmark = pytest.mark.django_db


def assert_rejected(response, code):
    assert response.status_code == 422, response.content
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("setting", "value", "body", "code"),
    [
        ("RISK_SYMBOL_ALLOWLIST", ["QQQ"], {}, "symbol_not_allowed"),
        ("RISK_MAX_ORDER_NOTIONAL", Decimal("100"), {"qty": "5"}, "max_order_notional"),
        ("RISK_MAX_POSITION_VALUE", Decimal("1000"), {"qty": "50"}, "max_position_value"),
        ("RISK_ALLOW_SHORT", False, {"side": "sell"}, "short_selling_disabled"),
        (None, None, {"qty": "100000"}, "insufficient_buying_power"),
    ],
)
def test_each_limit_rejects_with_its_code(ready, trader, settings, setting, value, body, code):
    if setting:
        setattr(settings, setting, value)
    assert_rejected(submit(trader, **body), code)
    assert Order.objects.count() == 0


def test_max_open_orders_counts_resting_orders(ready, trader, settings):
    settings.RISK_MAX_OPEN_ORDERS = 2
    for _ in range(2):
        assert submit(trader, type="limit", limit_price="1").status_code == 201
    assert_rejected(submit(trader, type="limit", limit_price="1"), "max_open_orders")
    assert Order.objects.count() == 2


def test_open_buy_orders_reserve_buying_power(ready, trader):
    price = last_price("SPY")
    qty = int(ready.cash / price * Decimal("0.6"))
    assert submit(trader, type="limit", limit_price=str(price), qty=str(qty)).status_code == 201
    assert_rejected(submit(trader, qty=str(qty)), "insufficient_buying_power")


def test_selling_what_you_hold_is_fine_but_not_more(ready, trader):
    assert submit(trader, qty="3").status_code == 201
    assert submit(trader, side="sell", qty="2").status_code == 201
    assert_rejected(submit(trader, side="sell", qty="2"), "short_selling_disabled")


def test_short_selling_allowed_by_setting(ready, trader, settings):
    settings.RISK_ALLOW_SHORT = True
    assert submit(trader, side="sell", qty="2").status_code == 201


def test_session_limits_override_settings(ready, trader, settings):
    settings.RISK_MAX_ORDER_NOTIONAL = Decimal("1000000")
    ready.risk_limits = {"max_order_notional": "10", "symbol_allowlist": ["spy"]}
    ready.save()
    assert_rejected(submit(trader), "max_order_notional")
    ready.risk_limits = {"symbol_allowlist": ["QQQ"]}
    ready.save()
    assert_rejected(submit(trader), "symbol_not_allowed")
    assert submit(trader, symbol="QQQ").status_code == 201


def test_position_limit_does_not_block_reducing(ready, trader, settings):
    assert submit(trader, qty="10").status_code == 201
    settings.RISK_MAX_POSITION_VALUE = Decimal("1")
    assert_rejected(submit(trader, qty="1"), "max_position_value")
    assert submit(trader, side="sell", qty="5").status_code == 201


def _drop_price(symbol: str, factor: Decimal) -> None:
    bar = Bar.objects.filter(symbol=symbol).order_by("-timestamp").first()
    bar.close = (bar.close * factor).quantize(Decimal("0.01"))
    bar.save()


def test_daily_loss_limit_rejects_and_trips_the_kill_switch(ready, trader, settings):
    assert submit(trader, qty="100").status_code == 201
    settings.RISK_DAILY_LOSS_LIMIT = Decimal("500")
    _drop_price("SPY", Decimal("0.9"))  # 100 shares lose ~10%: far beyond 500
    services.session_mark_to_market(session=ready)
    # The mark-to-market alone tripped it, before any new order.
    assert kill_switch_get().engaged
    assert "daily loss" in kill_switch_get().reason
    response = submit(trader, symbol="QQQ")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "trading_halted"


def test_daily_loss_limit_on_submit(ready, trader, settings):
    assert submit(trader, qty="100").status_code == 201
    _drop_price("SPY", Decimal("0.9"))
    services.session_mark_to_market(session=ready)  # no limit yet: nothing happens
    assert not kill_switch_get().engaged
    settings.RISK_DAILY_LOSS_LIMIT = Decimal("500")
    assert_rejected(submit(trader, symbol="QQQ"), "daily_loss_limit")
    assert kill_switch_get().engaged
    assert Trade.objects.count() == 1


def test_strategy_and_service_paths_get_the_same_checks(ready, settings):
    from trading.exceptions import RiskLimitExceeded

    settings.RISK_SYMBOL_ALLOWLIST = ["QQQ"]
    with pytest.raises(RiskLimitExceeded) as info:
        services.order_submit(symbol="SPY", side="buy", qty=Decimal("1"), source="strategy")
    assert info.value.code == "symbol_not_allowed"
