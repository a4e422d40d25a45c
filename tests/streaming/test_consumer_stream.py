"""/ws/updates through the Channels communicator against the real Redis: auth paths, symbol
filters with per-stream sequence numbers, malformed input, and the 5-second snapshot."""

from __future__ import annotations

import json
from unittest import mock

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from streaming import events
from streaming.publish import send_now
from streaming.tokens import token_issue
from trading.models import ApiKey
from tradingrobot.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@database_sync_to_async
def _token() -> str:
    key, _raw = ApiKey.objects.create_key(name="ws", scope="read")
    return token_issue(key_id=key.id, user_id=None).token


@database_sync_to_async
def _session_cookie() -> str:
    user = get_user_model().objects.create_user("trader", password="pw-123456789")
    client = Client()
    client.force_login(user)
    return client.cookies["sessionid"].value


async def _connect(path: str = "", headers=None, token: str | None = None):
    token = token or await _token()
    url = path or f"/ws/updates?token={token}"
    communicator = WebsocketCommunicator(application, url, headers=headers or [])
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _next(communicator, timeout: float = 5) -> dict:
    return json.loads(await communicator.receive_from(timeout=timeout))


async def _drain_types(communicator, seconds: float = 0.3) -> list[dict]:
    # receive_nothing() waits without cancelling the application (receive_from's timeout would).
    got = []
    while not await communicator.receive_nothing(timeout=seconds):
        got.append(await _next(communicator))
    return got


publish = sync_to_async(send_now)


async def test_session_cookie_from_own_origin_connects_and_gets_status_snapshot():
    cookie = await _session_cookie()
    headers = [
        (b"cookie", f"sessionid={cookie}".encode()),
        (b"origin", b"http://127.0.0.1:8000"),
        (b"host", b"127.0.0.1:8000"),
    ]
    communicator = await _connect("/ws/updates", headers=headers)
    try:
        hello = await _next(communicator)
        assert hello["type"] == "status" and hello["seq"] == 0
        assert hello["payload"]["stream"] == "live"
        assert "halted" in hello["payload"] and "market_open" in hello["payload"]
    finally:
        await communicator.disconnect()


async def test_session_cookie_from_another_site_is_refused_with_4401():
    cookie = await _session_cookie()
    headers = [(b"cookie", f"sessionid={cookie}".encode()), (b"origin", b"https://evil.example")]
    communicator = WebsocketCommunicator(application, "/ws/updates", headers=headers)
    await communicator.connect()
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
    await communicator.disconnect()


async def test_expired_token_is_closed_with_4401(settings):
    token = await _token()
    settings.WEBSOCKET_TOKEN_MAX_AGE = -1
    communicator = WebsocketCommunicator(application, f"/ws/updates?token={token}")
    await communicator.connect()
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
    await communicator.disconnect()


async def test_token_of_a_revoked_key_is_closed_with_4401():
    @database_sync_to_async
    def revoked_token():
        key, _ = ApiKey.objects.create_key(name="gone", scope="read")
        token = token_issue(key_id=key.id, user_id=None).token
        ApiKey.objects.filter(pk=key.pk).update(revoked=True)
        return token

    communicator = WebsocketCommunicator(application, f"/ws/updates?token={await revoked_token()}")
    await communicator.connect()
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
    await communicator.disconnect()


async def test_subscribe_filters_market_data_without_sequence_gaps():
    everything = await _connect()
    spy_only = await _connect()
    try:
        await _next(everything)
        await _next(spy_only)
        await spy_only.send_to(text_data='{"action":"subscribe","symbols":["spy"]}')
        assert (await _next(spy_only))["payload"]["subscribed"] == ["SPY"]
        for price in ("1", "2", "3"):
            await publish(events.MARKET_DATA, {"symbol": "QQQ", "close": price})
            await publish(events.MARKET_DATA, {"symbol": "SPY", "close": price})
        await publish(events.TRADE_UPDATE, {"id": 1, "symbol": "QQQ"})

        spy_got = await _drain_types(spy_only)
        all_got = await _drain_types(everything)
        assert [(m["type"], m["payload"].get("symbol")) for m in spy_got] == [
            ("market_data", "SPY"),
            ("market_data", "SPY"),
            ("market_data", "SPY"),
            ("trade_update", "QQQ"),  # only market_data is filtered
        ]
        # Sequence numbers are per stream (market_data per symbol): the filtered client sees
        # consecutive numbers, so it never mistakes the filter for lost messages.
        spy_seqs = [m["seq"] for m in spy_got if m["type"] == "market_data"]
        assert spy_seqs == list(range(spy_seqs[0], spy_seqs[0] + 3))
        assert len(all_got) == 7
        qqq_seqs = [m["seq"] for m in all_got if m["payload"].get("symbol") == "QQQ"][:3]
        assert qqq_seqs == list(range(qqq_seqs[0], qqq_seqs[0] + 3))
        for message in all_got:
            assert set(message) == {"type", "payload", "ts", "seq"}
            assert message["ts"].endswith("Z")

        # An empty list means every symbol again.
        await spy_only.send_to(text_data='{"action":"subscribe","symbols":[]}')
        assert (await _next(spy_only))["payload"]["all_symbols"] is True
        await publish(events.MARKET_DATA, {"symbol": "QQQ", "close": "4"})
        assert (await _next(spy_only))["payload"]["symbol"] == "QQQ"
    finally:
        await everything.disconnect()
        await spy_only.disconnect()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"text_data": "not json"}, "malformed"),
        ({"text_data": "[1, 2]"}, "malformed"),
        ({"text_data": "null"}, "malformed"),
        ({"bytes_data": b"\x00\x01"}, "malformed"),
        ({"text_data": "{" + " " * 20000 + "}"}, "malformed"),
        ({"text_data": '{"action": "dance"}'}, "unknown_action"),
        ({"text_data": '{"action": ["ping"]}'}, "unknown_action"),
        ({"text_data": '{"action": "subscribe", "symbols": "SPY"}'}, "invalid_symbols"),
        ({"text_data": '{"action": "subscribe", "symbols": [1, 2]}'}, "invalid_symbols"),
        ({"text_data": '{"action": "subscribe"}'}, "invalid_symbols"),
    ],
)
async def test_malformed_messages_get_an_error_frame_and_the_socket_stays_usable(frame, code):
    communicator = await _connect()
    try:
        await _next(communicator)
        await communicator.send_to(**frame)
        error = await _next(communicator)
        assert error["type"] == "error" and error["payload"]["code"] == code
        await communicator.send_to(text_data='{"action":"ping"}')
        assert (await _next(communicator))["type"] == "pong"
        # Still receives broadcasts.
        await publish(events.ORDER_UPDATE, {"id": "x", "status": "new"})
        assert (await _next(communicator))["type"] == "order_update"
    finally:
        await communicator.disconnect()


async def test_snapshot_is_computed_once_and_reaches_every_client():
    from streaming.tasks import publish_snapshot
    from trading import selectors

    clients = [await _connect() for _ in range(3)]
    try:
        for c in clients:
            await _next(c)
        with (
            mock.patch.object(selectors, "status_get", wraps=selectors.status_get) as status,
            mock.patch.object(
                selectors, "performance_get", wraps=selectors.performance_get
            ) as performance,
        ):
            await database_sync_to_async(publish_snapshot)()
        assert status.call_count == 1 and performance.call_count == 1
        for c in clients:
            got = [await _next(c), await _next(c)]
            assert [m["type"] for m in got] == ["status", "performance_update"]
            assert got[1]["seq"] == got[0]["seq"] + 1
            assert "equity" in got[1]["payload"]
    finally:
        for c in clients:
            await c.disconnect()


@database_sync_to_async
def _snapshot_job() -> tuple[str, int, str]:
    from django_celery_beat.models import PeriodicTask

    from tradingrobot.schedules import schedules_ensure

    schedules_ensure()
    job = PeriodicTask.objects.get(task="streaming.snapshot")
    return job.task, job.interval.every, job.interval.period


async def test_snapshot_runs_every_five_seconds_from_one_beat_job():
    assert await _snapshot_job() == ("streaming.snapshot", 5, "seconds")


async def test_events_are_published_only_after_commit():
    from django.db import transaction

    from streaming.publish import publish as publish_on_commit

    communicator = await _connect()
    try:
        await _next(communicator)

        @database_sync_to_async
        def rolled_back_then_committed():
            with pytest.raises(RuntimeError), transaction.atomic():
                publish_on_commit(events.ORDER_UPDATE, {"id": "rolled-back"})
                raise RuntimeError
            with transaction.atomic():
                publish_on_commit(events.ORDER_UPDATE, {"id": "committed"})

        await rolled_back_then_committed()
        got = await _drain_types(communicator)
        assert [m["payload"]["id"] for m in got] == ["committed"]
    finally:
        await communicator.disconnect()


async def test_publish_payload_survives_a_json_round_trip():
    from datetime import UTC, datetime
    from decimal import Decimal
    from uuid import uuid4

    communicator = await _connect()
    try:
        await _next(communicator)
        oid = uuid4()
        sent = await publish(
            events.ORDER_UPDATE,
            {"id": oid, "qty": Decimal("1.5"), "at": datetime(2024, 1, 2, tzinfo=UTC)},
        )
        got = await _next(communicator)
        assert got == json.loads(events.dumps(sent))
        assert got["payload"] == {"id": str(oid), "qty": "1.5", "at": "2024-01-02T00:00:00Z"}
    finally:
        await communicator.disconnect()


async def test_unknown_event_type_is_refused():
    from streaming.publish import publish_many

    with pytest.raises(ValueError):
        send_now("gossip", {})
    with pytest.raises(ValueError):  # one bad event refuses the whole batch, before any send
        publish_many([(events.ORDER_UPDATE, {}), ("gossip", {})])
