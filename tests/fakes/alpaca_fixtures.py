"""pytest fixtures for the fake Alpaca server.

Import them into a test module with
`from tests.fakes.alpaca_fixtures import fake_alpaca  # noqa: F401` (and `alpaca` for the
broker configured against it, with a running session).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.alpaca_server import API_KEY, SECRET_KEY, FakeAlpaca


@pytest.fixture
def fake_alpaca() -> Iterator[FakeAlpaca]:
    """A running FakeAlpaca (trading + data) on 127.0.0.1; stopped after the test."""
    fake = FakeAlpaca()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def alpaca(settings, fake_alpaca, market):
    """BROKER=alpaca (paper) against `fake_alpaca`, and a running trading session on it."""
    from trading import services

    settings.BROKER = "alpaca"
    settings.ALPACA_API_KEY = API_KEY
    settings.ALPACA_SECRET_KEY = SECRET_KEY
    settings.ALPACA_PAPER = True
    settings.ALPACA_URL_OVERRIDE = fake_alpaca.trading_url
    session = services.session_start()
    assert session.broker == "alpaca"
    return fake_alpaca
