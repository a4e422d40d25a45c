"""Real `manage.py stream` processes against the fake Alpaca: one holder per account (a standby
takes over within seconds of the leader's kill -9, and the fake never sees two connections at
once), and a clean stop on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import child_database_url
from tests.fakes.alpaca_server import API_KEY, SECRET_KEY
from tests.realtime.conftest import wait_until
from trading import services
from trading.models import Order, OrderStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
LEASE_SECONDS = 1.5


class Stream:
    def __init__(self, rest, fake, log: Path) -> None:
        env = dict(
            os.environ,
            DATABASE_URL=child_database_url(),
            REDIS_URL=settings.REDIS_URL,
            CHANNELS_PREFIX=settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
            VAR_DIR=str(settings.VAR_DIR),
            SECRET_KEY=settings.SECRET_KEY,
            DJANGO_SETTINGS_MODULE="tradingrobot.settings",
            BROKER="alpaca",
            ALPACA_API_KEY=API_KEY,
            ALPACA_SECRET_KEY=SECRET_KEY,
            ALPACA_URL_OVERRIDE=rest.trading_url,
            ALPACA_STREAM_URL=fake.url,
            STREAM_LEASE_SECONDS=str(LEASE_SECONDS),
            STREAM_BACKOFF_MIN_SECONDS="0.1",
            STREAM_BACKOFF_MAX_SECONDS="1",
        )
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "stream"],
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def says(self, text: str) -> bool:
        return text in self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def streams(alpaca, alpaca_stream, tmp_path):
    started: list[Stream] = []

    def start(name: str) -> Stream:
        stream = Stream(alpaca, alpaca_stream, tmp_path / f"{name}.log")
        started.append(stream)
        return stream

    yield start
    for stream in started:
        stream.stop()


def test_a_standby_takes_over_within_seconds_of_the_leaders_kill_9_never_doubling_up(
    alpaca, alpaca_stream, streams
):
    first, second = streams("first"), streams("second")
    alpaca_stream.wait_listening(timeout=60)
    wait_until(lambda: first.says("holding the lease") or second.says("holding the lease"))
    time.sleep(2 * LEASE_SECONDS)  # the standby keeps trying meanwhile
    assert [first.says("holding the lease"), second.says("holding the lease")].count(True) == 1
    leader, standby = (first, second) if first.says("holding the lease") else (second, first)
    assert alpaca_stream.total == 1

    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("3")).order
    leader.process.send_signal(signal.SIGKILL)
    killed_at = time.monotonic()
    leader.process.wait()
    # A fill while nobody holds the stream: the new leader's REST refresh records it.
    alpaca_stream.fill(alpaca, order.client_order_id, qty=3, price="100", send=False)

    wait_until(lambda: alpaca_stream.listening == 1 and alpaca_stream.total == 2, timeout=20)
    took_over = time.monotonic() - killed_at
    assert took_over < LEASE_SECONDS + 3, took_over
    assert standby.says("holding the lease")
    assert alpaca_stream.max_active == 1  # never two connections for the account
    wait_until(lambda: Order.objects.get(pk=order.pk).status == OrderStatus.FILLED, timeout=10)

    # And the new holder books what the stream sends from now on.
    second_order = services.order_submit(symbol="SPY", side="sell", qty=Decimal("1")).order
    alpaca_stream.fill(alpaca, second_order.client_order_id, qty=1, price="101")
    wait_until(lambda: Order.objects.get(pk=second_order.pk).status == OrderStatus.FILLED)


def test_sigterm_closes_every_connection_and_releases_the_lease(
    alpaca, alpaca_stream, streams, reader
):
    from realtime.state import client

    stream = streams("only")
    alpaca_stream.wait_listening(timeout=60)

    def state() -> str | None:
        return reader.get("/api/v1/status").json()["streams"].get("trade_updates", {}).get("state")

    wait_until(lambda: state() == "live")

    stream.process.send_signal(signal.SIGTERM)
    assert stream.process.wait(timeout=15) == 0
    assert alpaca_stream.active == 0
    assert list(client().scan_iter("*:realtime:lease:*")) == []
    assert reader.get("/api/v1/health").json()["streams"]["trade_updates"]["state"] == "down"
    assert stream.says("stream: stopped")
