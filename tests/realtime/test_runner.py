"""The stream runner: backoff, silence watchdog, the lease, state in status/health and events,
and the polling fallback."""

from __future__ import annotations

import json
import random
import time
from decimal import Decimal

import pytest

from realtime.runner import Backoff
from realtime.sources.alpaca_trading import AlpacaTradingSource
from tests.realtime.conftest import wait_until
from trading import services
from trading.models import Order, OrderStatus


def test_backoff_doubles_from_the_minimum_up_to_the_cap_and_resets():
    backoff = Backoff(1.0, 30.0, rng=lambda: 1.0)  # the top of every jitter range
    assert [backoff.next() for _ in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    backoff.reset()
    assert backoff.next() == 1


def test_full_jitter_spreads_each_delay_over_zero_to_its_ceiling():
    backoff = Backoff(1.0, 30.0, rng=random.Random(15).random)
    delays = []
    for _ in range(200):
        ceiling = backoff.ceiling()
        delay = backoff.next()
        assert 0 <= delay <= ceiling <= 30
        delays.append(delay)
    capped = delays[10:]
    # Spread, not a fixed schedule: reconnecting processes do not stampede together.
    assert min(capped) < 5 and max(capped) > 25
    assert Backoff(1.0, 30.0, rng=lambda: 1.0).ceiling() == 1.0
    for attempt in (10, 100, 10_000):
        huge = Backoff(1.0, 30.0)
        huge.attempt = attempt
        assert huge.ceiling() == 30.0  # no overflow however long the outage


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_refused_reconnects_back_off_growing_up_to_the_cap(
    alpaca, alpaca_stream, start_runner, monkeypatch, settings
):
    monkeypatch.setattr("realtime.runner.random.random", lambda: 1.0)
    settings.STREAM_BACKOFF_MIN_SECONDS, settings.STREAM_BACKOFF_MAX_SECONDS = 0.1, 0.8
    alpaca_stream.refuse_next(429, times=7)
    runner = start_runner()
    wait_until(runner.live, timeout=20, what="live after the 429s")

    attempts = alpaca_stream.attempts_at
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert alpaca_stream.refused == [429] * 7 and len(attempts) == 8
    for gap, delay in zip(gaps, [0.1, 0.2, 0.4, 0.8, 0.8, 0.8, 0.8], strict=True):
        assert delay <= gap < delay + 0.5, gaps
    assert alpaca_stream.max_active == 1


class QuietSource(AlpacaTradingSource):
    def silence_limit(self) -> float | None:
        return 0.6


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_silent_socket_counts_as_dead_and_is_replaced(alpaca, alpaca_stream, start_runner):
    runner = start_runner(lambda: [QuietSource()])
    wait_until(lambda: alpaca_stream.total >= 3, what="two reconnects after silence")
    assert runner.supervisor().reconnects >= 2
    assert alpaca_stream.max_active == 1  # the silent one is closed before the next opens


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_socket_that_talks_is_kept(alpaca, alpaca_stream, start_runner):
    runner = start_runner(lambda: [QuietSource()])
    wait_until(runner.live)
    for _ in range(10):
        alpaca_stream.push_raw('{"stream":"heartbeat"}')
        time.sleep(0.2)
    assert alpaca_stream.total == 1 and runner.supervisor().reconnects == 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_a_lost_lease_closes_the_connection_at_once(alpaca, alpaca_stream, start_runner):
    from realtime import state

    runner = start_runner()
    wait_until(runner.live)
    client = state.client()
    (key,) = list(client.scan_iter("*:realtime:lease:*"))
    client.set(key, "another-process", px=3000)  # someone else holds it now
    lost_at = time.monotonic()

    wait_until(lambda: alpaca_stream.active == 0, timeout=5, what="the connection closed")
    assert time.monotonic() - lost_at < 1.5  # within one renewal: well before it could expire
    # When the other holder's lease runs out without renewal, this one takes over again.
    wait_until(lambda: alpaca_stream.active == 1 and runner.live(), timeout=10)
    assert alpaca_stream.max_active == 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_status_health_and_events_report_the_stream(
    alpaca, alpaca_stream, start_runner, reader, anonymous
):
    from streaming.publish import wire_split
    from streaming.redis import client, stream_channel

    pubsub = client().pubsub()
    pubsub.subscribe(stream_channel())
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    runner = start_runner()
    wait_until(runner.live)
    alpaca_stream.fill(alpaca, order.client_order_id, qty=1, price="100")
    wait_until(lambda: Order.objects.get(pk=order.pk).status == OrderStatus.FILLED)

    def stream_of(path: str) -> dict:
        return reader.get(path).json().get("streams", {}).get("trade_updates", {})

    wait_until(lambda: stream_of("/api/v1/status").get("last_message_age_seconds") is not None)
    status = stream_of("/api/v1/status")
    assert status["state"] == "live" and status["reconnects"] == 0 and not status["polling"]
    assert 0 <= status["last_message_age_seconds"] < 10
    assert stream_of("/api/status")["state"] == "live"  # the Trading Robot API alias
    health = stream_of("/api/v1/health")
    assert health["state"] == "live"
    assert "streams" not in anonymous.get("/api/v1/health").json()

    runner.stop()
    assert stream_of("/api/v1/health")["state"] == "down"
    states = []
    while (message := pubsub.get_message(timeout=0.5)) is not None or not states:
        if message and message["type"] == "message":
            for _type, _symbol, text in wire_split(message["data"]):
                envelope = json.loads(text)
                if envelope["type"] == "status" and "streams" in envelope["payload"]:
                    states.append(envelope["payload"]["streams"]["trade_updates"]["state"])
        if message is None and states:
            break
    pubsub.close()
    assert "live" in states and states[-1] == "down"


@pytest.mark.django_db(transaction=True)
@pytest.mark.postgres
def test_orders_are_polled_only_while_the_stream_is_not_live(alpaca, alpaca_stream, start_runner):
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("2")).order
    alpaca_stream.fill(alpaca, order.client_order_id, qty=2, price="100", send=False)

    runner = start_runner()
    wait_until(runner.live)
    asked = len(alpaca.requests_to("GET", "/v2/orders"))
    assert services.orders_poll() is None  # live: the stream brings every update
    assert len(alpaca.requests_to("GET", "/v2/orders")) == asked
    runner.stop()

    order.refresh_from_db()
    assert order.status == OrderStatus.FILLED  # the connect's own refresh found the fill
    second = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    alpaca_stream.fill(alpaca, second.client_order_id, qty=1, price="101", send=False)
    report = services.orders_poll()  # down: polled
    assert report is not None and not report.errors
    second.refresh_from_db()
    assert second.status == OrderStatus.FILLED


def test_the_poll_does_nothing_for_a_broker_without_a_stream(db, settings):
    settings.BROKER = "paper"
    assert services.orders_poll() is None
