"""Fixtures for the stream tests: the fake Alpaca (REST and trading stream) and the stream
runner in a thread of the test process (the process tests start `manage.py stream` instead)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from tests.fakes.alpaca_server import API_KEY, SECRET_KEY, FakeAlpaca
from tests.fakes.alpaca_stream import FakeAlpacaStream


def wait_until(predicate: Callable[[], object], timeout: float = 15.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(0.02)


def realtime_keys_clear() -> None:
    from realtime import state

    client = state.client()
    prefix = state.names_key().rsplit(":", 1)[0]
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)


@pytest.fixture
def rest() -> Iterator[FakeAlpaca]:
    fake = FakeAlpaca()
    yield fake
    fake.stop()


@pytest.fixture
def alpaca_stream() -> Iterator[FakeAlpacaStream]:
    fake = FakeAlpacaStream()
    yield fake
    fake.stop()


@pytest.fixture
def alpaca(settings, rest, alpaca_stream, market):
    """BROKER=alpaca against the fakes, a running session, quick reconnects, a short lease."""
    from trading import services

    settings.BROKER = "alpaca"
    settings.ALPACA_API_KEY = API_KEY
    settings.ALPACA_SECRET_KEY = SECRET_KEY
    settings.ALPACA_PAPER = True
    settings.ALPACA_URL_OVERRIDE = rest.trading_url
    settings.ALPACA_STREAM_URL = alpaca_stream.url
    settings.STREAM_BACKOFF_MIN_SECONDS = 0.05
    settings.STREAM_BACKOFF_MAX_SECONDS = 0.4
    settings.STREAM_LEASE_SECONDS = 1.5
    realtime_keys_clear()
    services.session_start()
    yield rest
    realtime_keys_clear()


class RunnerThread:
    """`realtime.runner.Runner` on an event loop in a thread of its own."""

    def __init__(self, make_sources) -> None:
        from realtime.runner import Runner

        self.runner = Runner(make_sources)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)
        self._started = threading.Event()
        self._thread.start()
        self._started.wait(10)

    def _main(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self._started.set()
            await self.runner.run()

        asyncio.run(main())

    def supervisor(self, name: str = "trade_updates"):
        return next((s for s in self.runner.supervisors if s.name == name), None)

    def live(self, name: str = "trade_updates") -> bool:
        supervisor = self.supervisor(name)
        return bool(supervisor and supervisor.live)

    def stop(self) -> None:
        if self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.runner.stop)
            self._thread.join(20)
        assert not self._thread.is_alive(), "the runner did not stop"


@pytest.fixture
def start_runner() -> Iterator[Callable[..., RunnerThread]]:
    started: list[RunnerThread] = []

    def start(make_sources=None) -> RunnerThread:
        from realtime.sources import sources_configured

        runner = RunnerThread(make_sources or sources_configured)
        started.append(runner)
        return runner

    yield start
    for runner in started:
        runner.stop()
