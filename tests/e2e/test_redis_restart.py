"""Redis stops while clients are connected: REST keeps answering (no 500s), publishing logs
and carries on, clients are told the stream is down; when Redis is back they are asked to
reconnect, and after reconnecting they receive events again and catch up over REST."""

from __future__ import annotations

import json
import logging
import time
import urllib.request
from decimal import Decimal

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from streaming import events
from streaming.publish import send_now
from streaming.tokens import token_issue
from trading.models import ApiKey, ApiScope

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _get(url: str, key: str) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, {}


def _recv_type(ws, type_: str, timeout: float = 10) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message["type"] == type_:
            return message


def test_clients_reconnect_and_catch_up_and_rest_answers_while_redis_is_down(
    market, session, daphne_factory, private_redis, caplog
):
    from trading.services import order_submit

    key, raw_key = ApiKey.objects.create_key(name="reader", scope=ApiScope.READ)
    token = token_issue(key_id=key.id, user_id=None).token
    web = daphne_factory()
    url = f"ws://127.0.0.1:{web.port}/ws/updates?token={token}"

    with connect(url) as ws:
        assert json.loads(ws.recv(timeout=5))["payload"]["stream"] == "live"

        private_redis.stop()
        # The web process notices, and says so instead of going silently stale.
        assert _recv_type(ws, "status")["payload"] == {"stream": "down"}

        for path in ("status", "trades", "positions", "stock-data", "dashboard/snapshot"):
            status, _ = _get(f"{web.base}/api/v1/{path}", raw_key)
            assert status == 200, path
        status, health = _get(f"{web.base}/api/v1/health", raw_key)
        assert status == 200 and health["redis"]["ok"] is False

        # A trade while Redis is down: the order goes through, its events cannot be sent.
        with caplog.at_level(logging.WARNING, logger="tradingrobot.redis"):
            order = order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
            assert send_now(events.STATUS, {"probe": 1}) is None
        # Logged once per outage (tradingrobot.redis_outage), not a traceback per call.
        from tradingrobot import redis_outage

        assert redis_outage.is_down()

        private_redis.restart()
        # Back: the web process asks its clients to reconnect (4012) so they catch up.
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                ws.recv(timeout=15)
        assert closed.value.rcvd.code == 4012

    with connect(url) as ws:
        assert json.loads(ws.recv(timeout=5))["payload"]["stream"] == "live"
        # Catching up: the REST snapshot has the trade made during the outage.
        status, snapshot = _get(f"{web.base}/api/v1/dashboard/snapshot", raw_key)
        assert status == 200
        assert [t["order_id"] for t in snapshot["trades"]] == [str(order.pk)]
        # And events flow again.
        send_now(events.ORDER_UPDATE, {"id": "after", "status": "new"})
        assert _recv_type(ws, "order_update")["payload"]["id"] == "after"
