"""pytest fixtures for the fake Alpaca server.

Import them into a test module with
`from tests.fakes.alpaca_fixtures import fake_alpaca  # noqa: F401`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.alpaca_server import FakeAlpaca


@pytest.fixture
def fake_alpaca() -> Iterator[FakeAlpaca]:
    """A running FakeAlpaca (trading + data) on 127.0.0.1; stopped after the test."""
    fake = FakeAlpaca()
    try:
        yield fake
    finally:
        fake.stop()
