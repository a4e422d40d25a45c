"""What the live-price tests share: a stream link that records, a listener for the market_data
events on the real Redis pub/sub channel, and a fixture that forgets the live prices a test
stored (they are global in Redis and would price other tests' orders)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis as redis_lib
from django.conf import settings

from streaming.publish import wire_split

SYMBOLS = ["SPY", "QQQ", "TSLA", "NVDA", "AAPL"]


class RecordingLink:
    """A StreamLink that counts what the source reports."""

    def __init__(self) -> None:
        self.live = threading.Event()
        self.ready_calls = 0
        self.received_count = 0

    def ready(self) -> None:
        self.ready_calls += 1
        self.live.set()

    def received(self) -> None:
        self.received_count += 1


class MarketDataListener:
    def __init__(self) -> None:
        from streaming.redis import stream_channel

        self._pubsub = redis_lib.Redis.from_url(settings.REDIS_URL).pubsub()
        self._pubsub.subscribe(stream_channel())
        self._pubsub.get_message(timeout=1)  # the subscribe confirmation
        self.events: list[dict] = []
        self.batches: list[list[dict]] = []  # per pub/sub message, its market_data events

    def collect(self, seconds: float) -> list[dict]:
        """Read for `seconds`; every market_data envelope seen so far."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            message = self._pubsub.get_message(timeout=0.05)
            if not message or message["type"] != "message":
                continue
            batch = [
                json.loads(text)
                for type_, _symbol, text in wire_split(message["data"])
                if type_ == "market_data"
            ]
            self.events += batch
            if batch:
                self.batches.append(batch)
        return self.events

    def payloads(self, kind: str, symbol: str | None = None) -> list[dict]:
        return [
            e["payload"]
            for e in self.events
            if e["payload"].get("kind") == kind
            and (symbol is None or e["payload"]["symbol"] == symbol)
        ]

    def close(self) -> None:
        self._pubsub.close()


@contextmanager
def listening() -> Iterator[MarketDataListener]:
    listener = MarketDataListener()
    try:
        yield listener
    finally:
        listener.close()


@pytest.fixture
def live_prices_forgotten():
    from realtime.prices import prices_forget

    prices_forget(SYMBOLS)
    yield
    prices_forget(SYMBOLS)
