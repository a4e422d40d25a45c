from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import child_database_url, stop_process_group
from tests.fakes.chat_services import Receiver

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "123456:AAH-fake-token-for-tests-only_xyz"
SECRET = "webhook-secret-0123456789"


@pytest.fixture
def fake():
    receiver = Receiver()
    receiver.webhook_secret = SECRET
    receiver.telegram_token = TOKEN
    receiver.start()
    yield receiver
    receiver.stop()


@pytest.fixture
def telegram_api(fake, settings):
    settings.TELEGRAM_API_URL = fake.base
    return fake


def _purge_queue() -> None:
    """Nothing left over from earlier tests: the inbox and the notifications queue empty."""
    from notifications import inbox
    from notifications.hooks import _recent
    from notifications.services import _redis
    from tradingrobot.celery import app

    _recent.clear()
    _redis().delete(inbox.inbox_key())
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge("notifications")


class Smtp:
    """aiosmtpd on a free loopback port, keeping every message it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.handlers import Message

        from tests.conftest import free_port

        self.received = []
        smtp = self

        class Collect(Message):
            def handle_message(self, message) -> None:
                smtp.received.append(message)

        self.port = free_port()
        self.controller = Controller(Collect(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def wait(self, count: int = 1, timeout: float = 20) -> list:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.received


@pytest.fixture
def smtp():
    server = Smtp()
    yield server
    server.controller.stop()


@pytest.fixture
def notify_worker(transactional_db, fake, smtp, settings, tmp_path):
    """The Procfile's `notify` worker as a real process on the test database and Redis."""
    _purge_queue()
    settings.TELEGRAM_API_URL = fake.base
    env = dict(
        os.environ,
        DATABASE_URL=child_database_url(),
        REDIS_URL=settings.REDIS_URL,
        CELERY_BROKER_URL=settings.CELERY_BROKER_URL,
        VAR_DIR=str(settings.VAR_DIR),
        SECRET_KEY=settings.SECRET_KEY,
        CHANNELS_PREFIX=settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
        DJANGO_SETTINGS_MODULE="tradingrobot.settings",
        TELEGRAM_API_URL=fake.base,
        NOTIFICATIONS_TIMEOUT_SECONDS="2",
        NOTIFICATIONS_RETRY_BASE_SECONDS="0.2",
        NOTIFICATIONS_RETRY_MAX_SECONDS="2",
        NOTIFICATIONS_MAX_ATTEMPTS="30",
        LOG_LEVEL="WARNING",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=str(smtp.port),
    )
    for name in ("NOTIFICATIONS_WEBHOOK_URL", "TELEGRAM_BOT_TOKEN", "TELEGRAM_CHAT_ID"):
        env.pop(name, None)
    log = open(tmp_path / "notify-worker.log", "ab")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "tradingrobot", "worker", "-Q", "notifications"]
        + ["-n", f"notify-test-{os.getpid()}@%h", "--pool=threads", "--concurrency=8"]
        + ["--without-heartbeat", "--without-gossip", "--without-mingle"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    from tradingrobot.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, f"worker exited; see {log.name}"
        replies = app.control.ping(timeout=0.5) or []
        if any(f"notify-test-{os.getpid()}" in name for reply in replies for name in reply):
            break
    else:
        raise RuntimeError("notification worker did not start")
    yield process
    stop_process_group(process, timeout=20)
    log.close()
