"""Which state changes become notices, with which ids, and how one attempt is recorded."""

from __future__ import annotations

import json
import time as time_module
from collections import Counter
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from notifications import events as ev
from notifications.hooks import _recent
from notifications.models import Channel, Delivery, DeliveryStatus
from notifications.services import delivery_attempt, notices_dispatch
from tests.notifications.conftest import SECRET, TOKEN

pytestmark = pytest.mark.django_db


@pytest.fixture
def queue(db):
    """The notification inbox in the test's Redis, emptied; yields a reader of its notices."""
    from notifications import inbox
    from notifications.services import _redis

    _recent.clear()
    _redis().delete(inbox.inbox_key())

    def notices() -> list[dict]:
        # LPUSH: newest first.
        return [json.loads(raw) for raw in reversed(_redis().lrange(inbox.inbox_key(), 0, -1))]

    yield notices
    _redis().delete(inbox.inbox_key())


def test_a_fill_and_a_halt_enqueue_one_notice_each_after_commit(session, market, trader, queue):
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=True):
        order = trader.post(
            "/api/v1/orders/submit", {"symbol": "SPY", "side": "buy", "qty": "2"}, format="json"
        ).json()
    with TestCase.captureOnCommitCallbacks(execute=True):
        trader.post("/api/v1/stop_trading", {"reason": "lunch"}, format="json")
        trader.post("/api/v1/stop_trading", {"reason": "lunch"}, format="json")
    ids = [n["id"] for n in queue()]
    assert ids[0] == f"order.filled:{order['id']}"
    halts = [i for i in ids if i.startswith("kill_switch.engaged:")]
    assert len(halts) == 2  # two halts, two change times; the republished status adds none
    assert len(ids) == len(set(ids))


def test_nothing_is_enqueued_when_notifications_are_off(session, market, trader, queue, settings):
    from django.test import TestCase

    settings.NOTIFICATIONS_ENABLED = False
    with TestCase.captureOnCommitCallbacks(execute=True):
        trader.post(
            "/api/v1/orders/submit", {"symbol": "SPY", "side": "buy", "qty": "1"}, format="json"
        )
    assert queue() == []


def test_a_rolled_back_fill_is_never_announced(session, market, queue):
    from django.db import transaction
    from django.test import TestCase

    from trading.services import order_submit

    with (
        TestCase.captureOnCommitCallbacks(execute=True),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        order_submit(symbol="SPY", side="buy", qty=Decimal("1"))
        raise RuntimeError("rolled back")
    assert queue() == []


def test_the_circuit_breaker_opening_and_recovering_become_alerts(db, queue, settings):
    from django.test import TestCase

    from marketdata import resilience

    settings.MARKETDATA_BREAKER_THRESHOLD = 2
    with TestCase.captureOnCommitCallbacks(execute=True):
        resilience.breaker_record_failure(provider="synthetic", error="HTTP 503")
        resilience.breaker_record_failure(provider="synthetic", error="HTTP 503")
        resilience.breaker_record_success(provider="synthetic")
        resilience.breaker_record_success(provider="synthetic")  # already closed: no news
    kinds = [n["kind"] for n in queue()]
    assert kinds == ["circuit_breaker.open", "circuit_breaker.recovered"]
    assert "HTTP 503" in queue()[0]["text"]


def test_stale_market_data_is_announced_once_per_stale_spell(db, queue, settings):
    from django.test import TestCase

    from marketdata.providers.base import BaseProvider
    from marketdata.services import bars_collect

    class Down(BaseProvider):
        name = "down"

        def fetch_bars(self, *args, **kwargs):
            raise ConnectionError("provider down")

    settings.MARKETDATA_RETRY_ATTEMPTS = 1
    settings.MARKETDATA_RETRY_BASE_SECONDS = 0
    for _ in range(2):
        with TestCase.captureOnCommitCallbacks(execute=True):
            bars_collect(symbols=["SPY"], provider=Down())
    stale = [n for n in queue() if n["kind"] == "market_data.stale"]
    assert [n["id"] for n in stale] == ["market_data.stale:SPY:never"]
    assert "provider down" in stale[0]["text"]


def test_order_statuses_map_to_kinds_with_stable_ids():
    base = {"id": "o1", "client_order_id": "c1", "side": "buy", "qty": "2.000000", "symbol": "SPY"}
    partial = {**base, "status": "partially_filled", "filled_qty": "1.000000"}
    rejected = {**base, "status": "rejected", "reject_reason": "max_order_notional"}
    repaired = {**base, "status": "filled", "filled_qty": "2", "repair": "broker filled it"}
    assert [n.id for n in ev.from_stream("order_update", partial)] == [
        "order.partially_filled:o1:1.000000"
    ]
    [notice] = ev.from_stream("order_update", rejected)
    assert notice.severity == "warning" and "max_order_notional" in notice.text
    assert [n.kind for n in ev.from_stream("order_update", repaired)] == [
        "order.filled",
        "reconciliation.repair",
    ]
    assert ev.from_stream("order_update", {**base, "status": "new"}) == []
    # Old state republished by a starting process is no news.
    old = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    status = {"kill_switch": {"engaged": True, "reason": "x", "changed_at": old}, "session": None}
    assert ev.from_stream("status", status) == []


def _channel(**fields) -> Channel:
    defaults = {"name": "c", "kind": "webhook", "target": "http://127.0.0.1:9/x", "secret": SECRET}
    return Channel.objects.create(**{**defaults, **fields})


def test_filters_severity_events_and_quiet_hours(db):
    fill = ev.Notice("order.filled:1", "order.filled", "info", "t", "x").as_dict()
    halt = ev.Notice("kill_switch.engaged:1", "kill_switch.engaged", "critical", "t", "x").as_dict()
    _channel(name="critical only", min_severity="critical")
    _channel(name="fills only", events=["order.filled"])
    now = timezone.now().astimezone(UTC).time()
    _channel(
        name="asleep",
        timezone="UTC",
        quiet_start=(datetime.combine(datetime.now(UTC), now) - timedelta(hours=1)).time(),
        quiet_end=(datetime.combine(datetime.now(UTC), now) + timedelta(hours=1)).time(),
    )
    first = notices_dispatch([fill, halt])
    assert len(first) == 3  # the skipped one is not attempted
    got = sorted(Delivery.objects.values_list("channel__name", "kind", "status"))
    assert got == [
        ("asleep", "kill_switch.engaged", "pending"),  # critical passes quiet hours
        ("asleep", "order.filled", "skipped"),
        ("critical only", "kill_switch.engaged", "pending"),
        ("fills only", "order.filled", "pending"),
    ]
    # The same notices again (published twice, a batch drained again): no new deliveries.
    assert notices_dispatch([fill, halt]) == first and Delivery.objects.count() == 4
    Delivery.objects.filter(pk=first[0][0]).update(status=DeliveryStatus.DELIVERED, attempts=1)
    assert notices_dispatch([fill, halt]) == first[1:]  # a delivered one is never sent again


def test_telegram_429_waits_its_retry_after_and_errors_hide_the_token(telegram_api, settings):
    fake = telegram_api
    channel = _channel(kind="telegram", target="4242", secret=TOKEN)
    notice = ev.Notice("order.filled:9", "order.filled", "info", "Filled", "x").as_dict()
    [(delivery_id, _)] = notices_dispatch([notice])
    fake.rate_limit_next = 1
    delay = delivery_attempt(delivery_id=delivery_id)
    assert 1.0 <= delay <= 1.3
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == DeliveryStatus.RETRY and "429" in delivery.last_error
    assert delivery_attempt(delivery_id=delivery_id) is None  # too early: not sent
    Delivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now())
    from notifications.services import _key, _redis

    _redis().delete(_key(f"rate:{channel.pk}"))
    assert delivery_attempt(delivery_id=delivery_id) is None
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2
    channel.secret = "999:BBH-wrong-token-for-tests-only_xyz"
    channel.save()
    [(other, _)] = notices_dispatch([{**notice, "id": "order.filled:10"}])
    _redis().delete(_key(f"rate:{channel.pk}"))
    assert delivery_attempt(delivery_id=other) is None  # 401: permanent, not retried
    failed = Delivery.objects.get(pk=other)
    assert failed.status == DeliveryStatus.FAILED and "Unauthorized" in failed.last_error
    assert channel.secret not in failed.last_error


def test_retries_are_bounded_and_back_off(db, settings):
    settings.NOTIFICATIONS_MAX_ATTEMPTS = 3
    settings.NOTIFICATIONS_TIMEOUT_SECONDS = 1
    _channel(target="http://127.0.0.1:9/nobody-listens")
    notice = ev.Notice("order.filled:11", "order.filled", "info", "Filled", "x").as_dict()
    [(delivery_id, _)] = notices_dispatch([notice])
    delays = []
    for _ in range(3):
        Delivery.objects.filter(pk=delivery_id).update(next_attempt_at=timezone.now())
        delays.append(delivery_attempt(delivery_id=delivery_id))
    assert delays[0] <= 1.0 and 1.0 <= delays[1] <= 2.0 and delays[2] is None
    delivery = Delivery.objects.get(pk=delivery_id)
    assert delivery.status == DeliveryStatus.FAILED and delivery.attempts == 3


def test_a_claimed_delivery_is_not_sent_twice(db):
    _channel()
    notice = ev.Notice("order.filled:12", "order.filled", "info", "Filled", "x").as_dict()
    [(delivery_id, _)] = notices_dispatch([notice])
    Delivery.objects.filter(pk=delivery_id).update(
        lease_until=timezone.now() + timedelta(seconds=30)
    )  # another worker is sending it right now
    assert delivery_attempt(delivery_id=delivery_id) is None
    assert Delivery.objects.get(pk=delivery_id).attempts == 0


def test_a_strategy_error_is_an_alert_once_a_day(db, queue):
    from django.test import TestCase

    from strategies.models import StrategyConfig
    from strategies.services import _record_run

    config = StrategyConfig.objects.create(
        name="broken", plugin="sma_crossover", symbols=["SPY"], params={}, enabled=True
    )
    with TestCase.captureOnCommitCallbacks(execute=True):
        _record_run(config, None, "ValueError: bad bars")
        _record_run(config, None, "ValueError: bad bars")
        _record_run(config, None, "")
    [alert] = queue()
    assert alert["kind"] == "strategy.error" and alert["title"] == "Strategy error: broken"
    assert alert["text"] == "ValueError: bad bars"


def test_a_malformed_notice_or_a_bad_channel_row_never_blocks_the_inbox(db, queue):
    from notifications import inbox
    from notifications.services import _redis

    _channel(name="bad tz", timezone="Mars/Olympus", quiet_start=time(0), quiet_end=time(23))
    good = ev.Notice("order.filled:13", "order.filled", "info", "Filled", "x")
    _redis().lpush(inbox.inbox_key(), json.dumps({"id": "no kind"}), "not json")
    inbox.push([good])
    _redis().set(inbox._key("inbox_lease"), "me")
    assert inbox.drain_once("me") == 3
    assert list(Delivery.objects.values_list("event_id", flat=True)) == ["order.filled:13"]
    assert queue() == []  # the batch left the inbox


def test_senders_keep_a_slow_channel_to_its_concurrency_and_the_others_moving(
    monkeypatch, settings
):
    """The notify worker's own senders: a channel whose receiver hangs holds at most
    NOTIFICATIONS_CHANNEL_CONCURRENCY threads; its other deliveries wait without a thread, the
    next channel's go at once, and the waiting ones go when the receiver answers."""
    import threading

    from notifications import inbox

    settings.NOTIFICATIONS_CHANNEL_CONCURRENCY = 2
    release = threading.Event()
    lock = threading.Lock()
    running, most, done = Counter(), Counter(), []

    def send(delivery_id: int) -> None:
        channel = delivery_id // 100
        with lock:
            running[channel] += 1
            most[channel] = max(most[channel], running[channel])
        if channel == 1:
            release.wait(10)  # the slow receiver
        with lock:
            running[channel] -= 1
            done.append(delivery_id)

    monkeypatch.setattr(inbox, "_send", send)
    senders = inbox.Senders(threads=4)
    senders.submit([(100 + n, 1) for n in range(6)] + [(200 + n, 2) for n in range(3)])
    deadline = time_module.monotonic() + 5
    while sorted(d for d in done if d >= 200) != [200, 201, 202]:
        assert time_module.monotonic() < deadline, done
        time_module.sleep(0.01)
    assert not [d for d in done if d < 200] and most[1] == 2  # the slow one: 2 threads, no more
    release.set()
    while len(done) < 9:
        assert time_module.monotonic() < deadline + 5, done
        time_module.sleep(0.01)
    assert sorted(d for d in done if d < 200) == list(range(100, 106))  # each once
    assert most[1] == 2 and most[2] <= 2


def test_senders_stopping_finish_the_attempt_under_way_and_start_no_more(monkeypatch, settings):
    """A worker shutting down does not work through a dead receiver's backlog first: what waits
    stays pending in the database for the beat sweep."""
    import threading

    from notifications import inbox

    settings.NOTIFICATIONS_CHANNEL_CONCURRENCY = 1
    started, release, done = threading.Event(), threading.Event(), []

    def send(delivery_id: int) -> None:
        started.set()
        release.wait(5)
        done.append(delivery_id)

    monkeypatch.setattr(inbox, "_send", send)
    senders = inbox.Senders(threads=2)
    senders.submit([(1, 7), (2, 7), (3, 7)])
    assert started.wait(5)
    senders.stop()
    release.set()
    senders._pool.shutdown(wait=True)
    assert done == [1]
