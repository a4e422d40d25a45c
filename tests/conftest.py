from __future__ import annotations

import pytest
from django.db import connection
from rest_framework.test import APIClient

from trading.models import ApiKey, ApiScope

# The fake Alpaca server and the broker configured against it (`fake_alpaca`, `alpaca`).
pytest_plugins = ["tests.fakes.alpaca_fixtures"]


def pytest_collection_modifyitems(config, items):
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL (row locks across threads); CI runs it")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def _client(raw_key: str | None) -> APIClient:
    client = APIClient()
    if raw_key:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    return client


@pytest.fixture
def read_key(db) -> str:
    return ApiKey.objects.create_key(name="reader", scope=ApiScope.READ)[1]


@pytest.fixture
def trade_key(db) -> str:
    return ApiKey.objects.create_key(name="trader", scope=ApiScope.TRADE)[1]


@pytest.fixture
def reader(read_key) -> APIClient:
    return _client(read_key)


@pytest.fixture
def trader(trade_key) -> APIClient:
    return _client(trade_key)


@pytest.fixture
def anonymous() -> APIClient:
    return _client(None)


@pytest.fixture
def session(db):
    from trading.services import session_ensure_running

    return session_ensure_running()


@pytest.fixture
def market(db):
    """Recent synthetic history for the primary symbols (what a first collection stores)."""
    from marketdata.services import bars_collect

    return bars_collect()


@pytest.fixture
def ready(session, market):
    """A running paper session with market data: ready to trade."""
    return session


# --- Streaming (issue 7): real daphne processes on a private embedded Redis -------------------


def stop_process_group(proc, *, timeout: float) -> None:
    """SIGTERM the process group `proc` leads and wait; SIGKILL it, and fail, if it does not
    stop within `timeout` seconds."""
    import os
    import signal
    import subprocess

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        raise


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivateRedis:
    """An embedded redis-server of the test's own, which the test may stop and restart on the
    same port; the test process's publishing is pointed at it too."""

    def __init__(self, var_dir) -> None:
        from tradingrobot.embedded_redis import EmbeddedRedis

        self.server = EmbeddedRedis(var_dir)
        self.url = self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def restart(self) -> None:
        """Start again on the same port (clients reconnect to the address they know)."""
        from unittest import mock

        port = self.server.port
        with mock.patch("tradingrobot.embedded_redis._free_port", return_value=port):
            assert self.server.start() == self.url


@pytest.fixture
def private_redis(tmp_path, settings):
    from streaming import redis as stream_redis

    server = PrivateRedis(tmp_path / "private-redis")
    settings.REDIS_URL = server.url
    stream_redis.client.cache_clear()
    stream_redis._publish_script.cache_clear()
    yield server
    server.stop()
    stream_redis.client.cache_clear()
    stream_redis._publish_script.cache_clear()


def child_database_url() -> str:
    """DATABASE_URL of the test database, for processes started by a transactional test."""
    settings_dict = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{settings_dict['NAME']}"
    user = settings_dict.get("USER") or ""
    password = f":{settings_dict['PASSWORD']}" if settings_dict.get("PASSWORD") else ""
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{settings_dict['NAME']}"


class Daphne:
    """`daphne tradingrobot.asgi:application` in a process of its own, on a port of its own."""

    def __init__(self, redis_url: str, log_dir, port: int | None = None) -> None:
        self.redis_url = redis_url
        self.log_dir = log_dir
        self.port = port or free_port()
        self.process = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> Daphne:
        import os
        import subprocess
        import sys
        import time
        import urllib.request

        from django.conf import settings

        env = dict(os.environ)
        env.update(
            DATABASE_URL=child_database_url(),
            REDIS_URL=self.redis_url,
            VAR_DIR=str(settings.VAR_DIR),
            SECRET_KEY=settings.SECRET_KEY,
            CHANNELS_PREFIX=settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
            DJANGO_SETTINGS_MODULE="tradingrobot.settings",
        )
        log = open(self.log_dir / f"daphne-{self.port}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port)]
            + ["tradingrobot.asgi:application"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"daphne exited; see {log.name}"
            try:
                with urllib.request.urlopen(self.base + "/api/v1/health", timeout=2):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("daphne did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except Exception:  # noqa: BLE001
                self.process.kill()
                self.process.wait()


@pytest.fixture
def daphne_factory(private_redis, tmp_path):
    started: list[Daphne] = []

    def start(port: int | None = None) -> Daphne:
        server = Daphne(private_redis.url, tmp_path, port).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Redis outlives each test's database: cached API answers, version stamps and the feeds'
    last-success times from another test (or an earlier run) must not leak into this one."""
    from django.core.cache import cache

    cache.clear()
