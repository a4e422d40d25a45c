"""pytest fixtures for the fake Robinhood server.

Import them into a test module with
`from tests.fakes.robinhood_fixtures import fake_robinhood, robinhood_settings  # noqa: F401`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.robinhood_login import MFA_SECRET, PASSWORD, USERNAME
from tests.fakes.robinhood_server import FakeRobinhood


@pytest.fixture
def fake_robinhood() -> Iterator[FakeRobinhood]:
    """A running FakeRobinhood on 127.0.0.1; stopped after the test."""
    fake = FakeRobinhood()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def robinhood_settings(settings, fake_robinhood, tmp_path, monkeypatch):
    """BROKER=robinhood against the fake, without pacing; HOME is an empty directory, so a
    test can tell that nothing was written there."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    settings.BROKER = "robinhood"
    settings.ROBINHOOD_USERNAME = USERNAME
    settings.ROBINHOOD_PASSWORD = PASSWORD
    settings.ROBINHOOD_MFA_SECRET = MFA_SECRET
    settings.ROBINHOOD_API_URL = fake_robinhood.url
    settings.ROBINHOOD_ACCOUNT_NUMBER = ""
    settings.ROBINHOOD_TIMEOUT_SECONDS = 2
    settings.ROBINHOOD_MIN_INTERVAL_SECONDS = 0
    settings.ROBINHOOD_APPROVAL_POLL_SECONDS = 30
    settings.ROBINHOOD_RETRY_AFTER_MAX_WAIT_SECONDS = 2
    settings.ROBINHOOD_COOLDOWN_SECONDS = 60
    settings.ROBINHOOD_LOGIN_RETRY_SECONDS = 900
    return fake_robinhood
