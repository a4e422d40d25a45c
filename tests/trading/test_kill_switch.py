"""The kill switch wins on every path (API, strategy, admin), cancels and flattens, survives
restarts, shows in status and health; a halt racing an in-flight broker call loses nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from marketdata.selectors import last_price
from tests.helpers import submit
from trading import services
from trading.brokers.paper import PaperBroker
from trading.models import KillSwitch, Order, OrderStatus, Position, Trade

pytestmark = pytest.mark.django_db


def test_stop_trading_cancels_open_orders_blocks_every_path_until_resumed(ready, trader, reader):
    resting = submit(trader, type="limit", limit_price="1").json()
    response = trader.post("/api/v1/stop_trading", {"reason": "news"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["halted"] is True and body["reason"] == "news"
    assert body["canceled_orders"] == [resting["id"]]
    assert Order.objects.get(pk=resting["id"]).status == OrderStatus.CANCELED

    # API
    refused = submit(trader)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "trading_halted"
    # Strategy and admin paths go through the same service.
    for source in ("strategy", "admin", "wordpress"):
        with pytest.raises(services.TradingHalted):
            services.order_submit(symbol="SPY", side="buy", qty=Decimal("1"), source=source)
    # Also with a fresh client_order_id from a strategy run.
    from strategies.models import StrategyConfig
    from strategies.services import strategies_run_enabled

    StrategyConfig.objects.create(
        name="s",
        plugin="sma_crossover",
        symbols=["SPY"],
        params={"fast": 2, "slow": 5},
        allocation=Decimal("0.5"),
        enabled=True,
    )
    strategies_run_enabled()
    assert Order.objects.count() == 1

    # Visible in status and health; it is a database row, so it survives a restart.
    assert reader.get("/api/v1/status").json()["halted"] is True
    assert reader.get("/api/v1/health").json()["halted"] is True
    assert KillSwitch.objects.get(pk=1).engaged

    resumed = trader.post("/api/v1/resume_trading", {}, format="json")
    assert resumed.status_code == 200 and resumed.json()["halted"] is False
    assert submit(trader).status_code == 201


def test_stop_trading_with_flatten_closes_positions(ready, trader):
    submit(trader, qty="5")
    submit(trader, symbol="QQQ", qty="2")
    body = trader.post("/api/v1/stop_trading", {"flatten": True}, format="json").json()
    assert len(body["flatten_orders"]) == 2
    assert all(o["status"] == "filled" for o in body["flatten_orders"])
    assert set(Position.objects.values_list("qty", flat=True)) == {Decimal("0")}


@pytest.mark.parametrize("body", [{"flatten": "maybe"}, {"reason": "x" * 300}])
def test_bad_stop_trading_body_is_400_and_does_not_halt(ready, trader, body):
    response = trader.post("/api/v1/stop_trading", body, format="json")
    assert response.status_code == 400
    assert not KillSwitch.objects.filter(engaged=True).exists()


def test_admin_toggle_halts_and_resumes(ready, admin_client):
    from trading.selectors import kill_switch_get

    kill_switch_get()
    url = "/admin/trading/killswitch/"
    response = admin_client.post(url, {"action": "halt", "_selected_action": ["1"]})
    assert response.status_code == 302
    assert KillSwitch.objects.get(pk=1).engaged
    with pytest.raises(services.TradingHalted):
        services.order_submit(symbol="SPY", side="buy", qty=Decimal("1"), source="admin")
    admin_client.post(url, {"action": "resume", "_selected_action": ["1"]})
    assert not KillSwitch.objects.get(pk=1).engaged


class HaltDuringSubmit(PaperBroker):
    """Fault injector: the kill switch is engaged while the broker call is in flight."""

    canceled: list[str] = []

    async def submit_order(self, request):
        await sync_to_async(services.trading_halt)(reason="pressed mid-submit")
        return await super().submit_order(request)

    async def cancel_order(self, broker_order_id):
        HaltDuringSubmit.canceled.append(broker_order_id)


def test_a_fill_that_lands_after_the_halt_is_recorded_not_lost(ready, settings):
    settings.BROKER = f"{__name__}.HaltDuringSubmit"
    result = services.order_submit(symbol="SPY", side="buy", qty=Decimal("2"))

    order = result.order
    # The halt canceled it locally, then the broker said "filled": the broker's truth wins.
    assert order.status == OrderStatus.FILLED
    assert Trade.objects.filter(order=order).count() == 1
    assert Position.objects.get(symbol="SPY").qty == Decimal("2")
    assert KillSwitch.objects.get(pk=1).engaged


def test_an_order_left_open_after_the_halt_is_canceled_at_the_broker(ready, settings):
    settings.BROKER = f"{__name__}.HaltDuringSubmit"
    HaltDuringSubmit.canceled = []
    price = last_price("SPY")
    order = services.order_submit(
        symbol="SPY", side="buy", qty=Decimal("1"), type="limit", limit_price=price - 5
    ).order
    assert order.status == OrderStatus.CANCELED
    assert HaltDuringSubmit.canceled == [order.broker_order_id]
    assert order.broker_order_id  # the broker's id was recorded before the cancel


def test_a_halt_between_the_checks_and_the_send_stops_the_send(ready, settings, monkeypatch):
    """The halt commits after order_submit read the switch but before the broker is called:
    the order is committed, then canceled locally, and the broker never sees it."""
    from trading import risk

    settings.BROKER = f"{__name__}.CountingBroker"
    CountingBroker.sent = []
    checks = risk.check_order

    def check_then_halt(**kwargs):
        checks(**kwargs)
        services.trading_halt(reason="pressed between check and send")

    monkeypatch.setattr(risk, "check_order", check_then_halt)
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order

    assert order.status == OrderStatus.CANCELED
    assert "kill switch" in order.reject_reason
    assert CountingBroker.sent == []
    assert not Trade.objects.exists()


class CountingBroker(PaperBroker):
    sent: list[str] = []

    async def submit_order(self, request):
        CountingBroker.sent.append(request.client_order_id)
        return await super().submit_order(request)
