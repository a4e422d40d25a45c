"""End to end: orders and halts through the API, the real `notify` worker process, local
receivers. What the trader sees is what the receivers accepted."""

from __future__ import annotations

import statistics
import time

import pytest

from notifications.models import Channel, Delivery, DeliveryStatus
from tests.notifications.conftest import SECRET, TOKEN
from trading.models import Order

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def ready(notify_worker, session, market):
    return session


def submit(client, i: int, **body):
    side = "buy" if i % 2 == 0 else "sell"
    payload = {"symbol": "SPY", "side": side, "qty": "1", "client_order_id": f"n-{i}", **body}
    response = client.post("/api/v1/orders/submit", payload, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def webhook(fake, path="/webhook", **fields) -> Channel:
    return Channel.objects.create(
        name=f"hook {path}", kind="webhook", target=fake.base + path, secret=SECRET, **fields
    )


def test_a_fill_produces_exactly_one_signed_webhook(ready, trader, fake):
    webhook(fake)
    order = submit(trader, 0)
    assert fake.wait_for(lambda f: f.accepted_ids("/webhook"))
    time.sleep(1)  # nothing else arrives for it
    [request] = [r for r in fake.of("/webhook") if r["json"]["kind"] == "order.filled"]
    assert request["json"]["id"] == f"order.filled:{order['id']}"
    assert request["json"]["data"]["source"] == "api"  # who placed it
    assert "Filled: BUY 1 SPY" in request["json"]["title"]
    delivery = Delivery.objects.get(event_id=request["json"]["id"])
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1
    assert request["headers"]["idempotency-key"] == delivery.idempotency_key


def test_a_receiver_failing_half_the_time_gets_every_event_exactly_once(ready, trader, fake):
    fake.fail_rate = 0.5
    webhook(fake, events=["order.filled"])
    orders = [submit(trader, i) for i in range(20)]
    expected = {f"order.filled:{o['id']}" for o in orders}
    assert fake.wait_for(lambda f: set(f.accepted_ids("/webhook")) >= expected, timeout=60)
    time.sleep(1)
    ids = fake.accepted_ids("/webhook")
    assert set(ids) == expected and set(ids.values()) == {1}  # each once, none lost
    assert len(fake.requests) > len(expected)  # the failures really happened and were retried
    attempts = list(Delivery.objects.values_list("attempts", flat=True))
    assert max(attempts) > 1 and all(
        s == DeliveryStatus.DELIVERED for s in Delivery.objects.values_list("status", flat=True)
    )


def test_a_30_second_slow_receiver_neither_slows_orders_nor_other_channels(ready, trader, fake):
    from tests.fakes.chat_services import Receiver

    fake.delay = 30  # answers after 30 s; the worker gives up after its 2 s timeout
    healthy = Receiver()
    healthy.webhook_secret = SECRET
    healthy.start()
    try:
        baseline = []
        for i in range(5):
            start = time.perf_counter()
            submit(trader, 100 + i)
            baseline.append(time.perf_counter() - start)
        webhook(fake, events=["order.filled"])
        webhook(healthy, path="/webhook/healthy", events=["order.filled"])
        timings, orders = [], []
        for i in range(10):
            start = time.perf_counter()
            orders.append(submit(trader, i))
            timings.append(time.perf_counter() - start)
        expected = {f"order.filled:{o['id']}" for o in orders}
        # The healthy channel hears every fill while the slow one holds its threads.
        assert healthy.wait_for(lambda f: set(f.accepted_ids()) >= expected, timeout=20)
        assert max(timings) < 1.0
        assert statistics.median(timings) < statistics.median(baseline) * 2 + 0.05
        assert fake.requests  # the slow receiver was called (and kept the worker waiting)
    finally:
        healthy.stop()


def test_a_halt_from_the_api_reaches_telegram(ready, trader, fake):
    Channel.objects.create(name="tg", kind="telegram", target="4242", secret=TOKEN)
    response = trader.post("/api/v1/stop_trading", {"reason": "news at 10"}, format="json")
    assert response.status_code == 200
    assert fake.wait_for(lambda f: f.of(f"/bot{TOKEN}/sendMessage"))
    [message] = fake.of(f"/bot{TOKEN}/sendMessage")
    assert message["json"]["chat_id"] == "4242"
    assert "Kill switch engaged" in message["json"]["text"]
    assert "news at 10" in message["json"]["text"]


def test_the_daily_loss_limit_halt_is_announced(ready, fake, settings):
    from trading.services import trading_halt

    webhook(fake, min_severity="critical")  # only the halt passes, not fills or sessions
    trading_halt(reason="daily loss limit reached (lost 1234.00 today)", by="risk")
    assert fake.wait_for(lambda f: f.of("/webhook"))
    [request] = fake.of("/webhook")
    assert request["json"]["kind"] == "kill_switch.engaged"
    assert request["json"]["severity"] == "critical"
    assert "daily loss limit" in request["json"]["text"]


def test_the_daily_summary_carries_an_equity_chart(ready, trader, fake, smtp):
    from notifications.services import daily_summary_send
    from trading.services import session_mark_to_market

    for i in range(4):
        submit(trader, i)
        session_mark_to_market()
    Channel.objects.create(name="tg", kind="telegram", target="4242", secret=TOKEN)
    Channel.objects.create(
        name="dc", kind="discord", target=fake.base + "/discord/api/webhooks/1/t"
    )
    Channel.objects.create(
        name="mail", kind="email", target="trader@example.com", events=["daily_summary"]
    )
    notice = daily_summary_send()
    assert notice.data["trades"] == 4 and len(notice.data["equity_curve"]) >= 5
    # The fills' notices may still be on their way to the new Discord channel too (text only):
    # wait for the summary's message, the one with the image.
    assert fake.wait_for(
        lambda f: f.of(f"/bot{TOKEN}/sendPhoto") and any(r.get("files") for r in f.of("/discord"))
    )
    photo = fake.of(f"/bot{TOKEN}/sendPhoto")[0]
    assert photo["files"]["photo"].startswith(b"\x89PNG\r\n\x1a\n")
    assert "Daily summary" in photo["form"]["caption"] and "4 trades" in photo["form"]["caption"]
    discord = [r for r in fake.of("/discord") if r.get("files")][0]
    assert discord["files"]["files[0]"].startswith(b"\x89PNG")
    [mail] = smtp.wait(1)
    assert mail["Subject"].startswith("[TradingRobotPlug] Daily summary")
    assert any(p.get_content_type() == "image/png" for p in mail.walk())


def test_order_rejections_and_cancels_say_who_placed_them(ready, trader, fake):
    webhook(fake, events=["order.rejected", "order.canceled"])
    resting = trader.post(
        "/api/v1/orders/submit",
        {"symbol": "SPY", "side": "buy", "qty": "1", "type": "limit", "limit_price": "1"},
        format="json",
    ).json()
    assert trader.delete(f"/api/v1/orders/{resting['id']}").status_code == 200
    assert fake.wait_for(lambda f: f.of("/webhook"))
    [request] = fake.of("/webhook")
    assert request["json"]["id"] == f"order.canceled:{resting['id']}"
    assert "placed by api" in request["json"]["text"]
    assert Order.objects.get(pk=resting["id"]).status == "canceled"
