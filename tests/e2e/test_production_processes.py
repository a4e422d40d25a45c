"""The Procfile's production processes, started as a deployment would (honcho, on our database
and Redis): `web` (gunicorn) answers HTTP and `ws` (daphne) WebSockets, each on its own port, as
the reverse proxy routes them; a halt committed elsewhere shows in `web`'s status at once."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import websockets
from django.conf import settings
from django.core.cache import cache

from tests.conftest import child_database_url, free_port, stop_process_group

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _request(url: str, key: str, body: bytes | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Authorization": f"Bearer {key}"})
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


async def _first_message(url: str) -> dict:
    async with websockets.connect(url) as ws:
        return json.loads(await asyncio.wait_for(ws.recv(), timeout=10))


def test_web_serves_http_and_ws_serves_websockets(tmp_path, read_key, session, market):
    from trading.services import trading_halt

    web_port, ws_port = free_port(), free_port()
    bin_dir = Path(sys.executable).parent
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "DATABASE_URL": child_database_url(),
        # The cache this test process writes to: its invalidations must reach `web`.
        "REDIS_URL": settings.CACHES["default"]["LOCATION"],
        "CACHE_PREFIX": cache.key_prefix,
        "CHANNELS_PREFIX": settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
        "VAR_DIR": str(settings.VAR_DIR),
        "SECRET_KEY": settings.SECRET_KEY,
        "DJANGO_SETTINGS_MODULE": "tradingrobot.settings",
        "PORT": str(web_port),
        "WS_PORT": str(ws_port),
        "WEB_CONCURRENCY": "2",
        "API_STATUS_CACHE_SECONDS": "600",  # only the invalidation can make the halt show
    }
    log = open(tmp_path / "procfile.log", "wb")  # noqa: SIM115 - closed after the processes end
    proc = subprocess.Popen(
        [bin_dir / "honcho", "--no-colour", "-f", "Procfile", "start", "web", "ws"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    web, ws = f"http://127.0.0.1:{web_port}", f"ws://127.0.0.1:{ws_port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{web}/api/v1/health", timeout=2) as response:
                    server = response.headers.get("Server", "")
                    if response.status == 200 and "daphne" not in server.lower():
                        break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "procfile.log").read_text()
            time.sleep(0.3)
        else:
            pytest.fail("web never answered:\n" + (tmp_path / "procfile.log").read_text()[-4000:])
        assert "gunicorn" in server.lower()
        # ws starts beside web, not after it: wait until it listens too.
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", ws_port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "procfile.log").read_text()
                time.sleep(0.3)

        status, body = _request(f"{web}/api/v1/status", read_key)
        assert status == 200 and body["halted"] is False
        trading_halt(reason="ops halt")  # committed here, in another process than `web`
        status, body = _request(f"{web}/api/v1/status", read_key)
        assert status == 200 and body["halted"] is True
        assert body["kill_switch"]["reason"] == "ops halt"

        status, token = _request(f"{web}/api/v1/websocket/token", read_key, b"{}")
        assert status == 201
        # `ws` checks its bind address before daphne starts: wait for it to listen too.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", ws_port), timeout=1).close()
                break
            except OSError:
                assert proc.poll() is None, (tmp_path / "procfile.log").read_text()
                time.sleep(0.3)
        first = asyncio.run(_first_message(f"{ws}/ws/updates?token={token['token']}"))
        assert first["type"] == "status" and first["payload"]["halted"] is True
    finally:
        try:
            stop_process_group(proc, timeout=30)
        finally:
            log.close()
