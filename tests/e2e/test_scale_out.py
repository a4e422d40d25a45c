"""Two daphne web processes on one Redis: an event published by another process (the worker)
reaches the clients of both; and a stalled client skips messages without delaying the others."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect

from streaming import events
from streaming.publish import send_many_now, send_now
from streaming.tokens import token_issue
from trading.models import ApiKey

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def token(db) -> str:
    key, _ = ApiKey.objects.create_key(name="ws", scope="read")
    return token_issue(key_id=key.id, user_id=None).token


def _hello(ws) -> dict:
    message = json.loads(ws.recv(timeout=5))
    assert message["type"] == "status" and message["payload"]["stream"] == "live"
    return message


def _worker_publishes(redis_url: str, payload: dict) -> None:
    """`send_now` from a process of its own, as the Celery worker does."""
    from django.conf import settings

    env = dict(os.environ, REDIS_URL=redis_url)
    env["CHANNELS_PREFIX"] = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    code = (
        "import django, json, sys; django.setup();"
        "from streaming.publish import send_now;"
        "sys.exit(0 if send_now('order_update', json.loads(sys.argv[1])) else 1)"
    )
    subprocess.run(
        [sys.executable, "-c", code, json.dumps(payload)],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=60,
    )


def test_event_from_the_worker_reaches_clients_of_both_web_processes(
    daphne_factory, private_redis, token
):
    first, second = daphne_factory(), daphne_factory()
    with (
        connect(f"ws://127.0.0.1:{first.port}/ws/updates?token={token}") as a,
        connect(f"ws://127.0.0.1:{second.port}/ws/updates?token={token}") as b,
    ):
        _hello(a)
        _hello(b)
        _worker_publishes(private_redis.url, {"id": "o-1", "status": "filled"})
        got_a = json.loads(a.recv(timeout=5))
        got_b = json.loads(b.recv(timeout=5))
        assert got_a == got_b  # serialized once: the same bytes everywhere, same seq
        assert got_a["type"] == "order_update" and got_a["payload"]["id"] == "o-1"
        assert got_a["seq"] >= 1


def _stalled_client(port: int, token: str) -> socket.socket:
    """A WebSocket client that completes the handshake and then never reads."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/updates?token={token} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101")
    return sock


def _read_frames(sock: socket.socket) -> list[dict]:
    sock.settimeout(2)
    data = b""
    try:
        while chunk := sock.recv(1 << 20):
            data += chunk
    except TimeoutError:
        pass
    messages, i = [], 0
    while i + 2 <= len(data):
        length, i = data[i + 1] & 0x7F, i + 2
        if length == 126:
            length, i = int.from_bytes(data[i : i + 2]), i + 2
        elif length == 127:
            length, i = int.from_bytes(data[i : i + 8]), i + 8
        if i + length > len(data):
            break
        messages.append(json.loads(data[i : i + length]))
        i += length
    return messages


def test_a_stalled_client_skips_messages_and_never_delays_the_others(daphne_factory, token):
    web = daphne_factory()
    count, filler = 600, "x" * 8000  # ~4.8 MB in all: more than socket buffers hold
    stalled = _stalled_client(web.port, token)
    try:
        with connect(f"ws://127.0.0.1:{web.port}/ws/updates?token={token}") as healthy:
            _hello(healthy)
            started = time.monotonic()

            def publish_all():
                for n in range(count):
                    send_now(events.ORDER_UPDATE, {"id": f"o-{n}", "note": filler})

            publisher = threading.Thread(target=publish_all)
            publisher.start()
            seqs = [json.loads(healthy.recv(timeout=5))["seq"] for _ in range(count)]
            publisher.join()
            elapsed = time.monotonic() - started
            assert seqs == list(range(seqs[0], seqs[0] + count))  # every message, in order
            assert elapsed < 10

        # The stalled client wakes up: it got what was buffered, then skipped ...
        received = [m for m in _read_frames(stalled) if m["seq"] > 0]
        assert 0 < len(received) < count
        # ... and its next message shows the gap, so its dashboard re-fetches the snapshot.
        send_now(events.ORDER_UPDATE, {"id": "after"})
        after = [m for m in _read_frames(stalled) if m["seq"] > 0]
        assert [m["payload"]["id"] for m in after] == ["after"]
        assert after[0]["seq"] == seqs[-1] + 1 > received[-1]["seq"] + 1
    finally:
        stalled.close()


def test_the_events_of_one_publish_reach_each_client_in_order_and_filtered(daphne_factory, token):
    """A fill's events (or a tick's quotes) are one message on Redis and one write per client;
    each client still gets its own selection as separate messages, in order, with their seqs,
    and a symbol that could break the framing (a newline) breaks nothing."""
    web = daphne_factory()
    url = f"ws://127.0.0.1:{web.port}/ws/updates?token={token}"
    with connect(url) as everything, connect(url) as spy_only:
        _hello(everything)
        _hello(spy_only)
        spy_only.send('{"action":"subscribe","symbols":["SPY"]}')
        assert json.loads(spy_only.recv(timeout=5))["payload"]["subscribed"] == ["SPY"]
        sent = send_many_now(
            [
                (events.MARKET_DATA, {"kind": "quote", "symbol": "QQQ", "price": "1"}),
                (events.MARKET_DATA, {"kind": "quote", "symbol": "SPY", "price": "2"}),
                (events.ORDER_UPDATE, {"id": "o-9", "status": "filled"}),
                (events.MARKET_DATA, {"kind": "quote", "symbol": "SP\nY x", "price": "3"}),
            ]
        )
        assert all(sent)
        send_now(events.ORDER_UPDATE, {"id": "o-10", "status": "new"})

        got = [json.loads(everything.recv(timeout=5)) for _ in range(5)]
        assert got == sent + [got[-1]]  # the same envelopes as published, seqs included
        assert [m["payload"].get("symbol") or m["payload"]["id"] for m in got] == [
            "QQQ",
            "SPY",
            "o-9",
            "SP\nY x",
            "o-10",
        ]
        filtered = [json.loads(spy_only.recv(timeout=5)) for _ in range(3)]
        assert [m["payload"].get("symbol") or m["payload"]["id"] for m in filtered] == [
            "SPY",
            "o-9",
            "o-10",
        ]
        assert filtered[:2] == [got[1], got[2]]
        assert filtered[2]["seq"] == got[2]["seq"] + 1  # the events stream has no gap
