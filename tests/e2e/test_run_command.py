"""The README's run command, started as a newcomer would: no environment of ours, a fresh
VAR_DIR (so it is a first start), then stopped with SIGTERM, leaving no process behind."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import psutil
import pytest
import websockets

from tests.conftest import stop_process_group

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, key: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url)
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _ours(var_dir: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get("VAR_DIR") == str(var_dir):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


async def _first_market_data(url: str, kind: str | None = None) -> dict:
    async with websockets.connect(url) as ws:
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), timeout=60))
            if message["type"] == "market_data" and kind in (None, message["payload"]["kind"]):
                return message


def test_make_run_brings_the_system_up_and_stops_cleanly(tmp_path):
    port = _free_port()
    var_dir = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
    env.update(PORT=str(port), VAR_DIR=str(var_dir), COLLECT_INTERVAL_SECONDS="2")
    log = open(tmp_path / "run.log", "wb")  # noqa: SIM115 - closed after the process ends
    proc = subprocess.Popen(
        ["make", "run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                status, health = _get(f"{base}/api/v1/health")
                if status == 200 and health["status"] == "ok":  # anonymous: the status only
                    break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "run.log").read_text()
            time.sleep(1)
        else:
            pytest.fail("health never answered:\n" + (tmp_path / "run.log").read_text()[-4000:])
        key = json.loads((var_dir / "demo_credentials.json").read_text())["api_key"]
        _, health = _get(f"{base}/api/v1/health", key)
        assert health["database"]["vendor"] == "sqlite" and health["redis"]["ok"]
        _, first = _get(f"{base}/api/v1/status", key)
        _, token = (None, None)
        request = urllib.request.Request(
            f"{base}/api/v1/websocket/token",
            data=b"{}",
            method="POST",
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            token = json.loads(response.read())["token"]
        message = asyncio.run(_first_market_data(f"ws://127.0.0.1:{port}/ws/updates?token={token}"))
        assert message["payload"]["symbol"] in {"TSLA", "QQQ", "SPY", "NVDA"}
        # Between bars the demo's prices tick: the one worker holds the synthetic stream.
        quote = asyncio.run(
            _first_market_data(f"ws://127.0.0.1:{port}/ws/updates?token={token}", "quote")
        )
        assert Decimal(quote["payload"]["price"]) > 0
        # Status is cached for up to a second (API_STATUS_CACHE_SECONDS): it shows the stream
        # live within moments of the first quote.
        deadline = time.monotonic() + 10
        while True:
            streams = _get(f"{base}/api/v1/status", key)[1]["streams"]
            if streams.get("market_data", {}).get("state") == "live":
                break
            assert time.monotonic() < deadline, streams
            time.sleep(0.5)

        # Bars keep arriving: the simulated market time moves on.
        time.sleep(5)
        _, later = _get(f"{base}/api/v1/status", key)
        assert later["market_time"] > first["market_time"]
        assert _get(f"{base}/api/v1/stock-data", key)[1]["stock_data"]

        # A backtest is queued and the `research` worker runs it to the end.
        _, strategies = _get(f"{base}/api/v1/strategies", key)
        config_id = strategies["strategies"][0]["id"]
        request = urllib.request.Request(
            f"{base}/api/v1/strategies/{config_id}/backtest",
            data=json.dumps({"days": 5}).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 202
            run_url = json.loads(response.read())["url"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            run = _get(run_url, key)[1]
            if run["status"] in ("done", "failed", "canceled"):
                break
            time.sleep(0.5)
        assert run["status"] == "done", run
        assert run["result"]["metrics"]["bars"] > 0
    finally:
        try:
            stop_process_group(proc, timeout=60)
        finally:
            log.close()
    deadline = time.monotonic() + 30
    while _ours(var_dir) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _ours(var_dir) == [], [p.cmdline() for p in _ours(var_dir)]
