from __future__ import annotations

import json
from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from tests.helpers import ws_token
from tradingrobot.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@database_sync_to_async
def _prepare_market() -> None:
    from marketdata.services import bars_collect
    from trading.services import session_ensure_running

    session_ensure_running()
    bars_collect()


@database_sync_to_async
def _buy() -> str:
    from trading.services import order_submit

    return str(order_submit(symbol="SPY", side="buy", qty=Decimal("2")).order.pk)


async def _receive_type(communicator, type_: str, limit: int = 50) -> dict:
    for _ in range(limit):
        message = json.loads(await communicator.receive_from(timeout=5))
        if message["type"] == type_:
            return message
    raise AssertionError(f"no {type_} message")


async def test_client_receives_trade_update_after_an_order_fills():
    await _prepare_market()
    communicator = WebsocketCommunicator(application, f"/ws/updates?token={await ws_token()}")
    connected, _ = await communicator.connect()
    assert connected
    try:
        status = json.loads(await communicator.receive_from(timeout=5))
        assert status["type"] == "status"
        assert set(status) == {"type", "payload", "ts", "seq"}
        order_id = await _buy()
        trade = await _receive_type(communicator, "trade_update")
        assert trade["payload"]["order_id"] == order_id
        assert trade["payload"]["qty"] == "2.000000"
        assert trade["ts"].endswith("Z") and trade["seq"] > 0
    finally:
        await communicator.disconnect()


async def test_bad_token_is_closed_with_4401():
    communicator = WebsocketCommunicator(application, "/ws/updates?token=forged")
    connected, _ = await communicator.connect()
    assert connected
    output = await communicator.receive_output(timeout=5)
    assert output == {"type": "websocket.close", "code": 4401}
    await communicator.disconnect()


async def test_no_credentials_is_closed_with_4401():
    communicator = WebsocketCommunicator(application, "/ws/updates")
    await communicator.connect()
    assert await communicator.receive_output(timeout=5) == {"type": "websocket.close", "code": 4401}
    await communicator.disconnect()


async def test_ping_subscribe_and_malformed_messages():
    communicator = WebsocketCommunicator(application, f"/ws/updates?token={await ws_token()}")
    await communicator.connect()
    try:
        await _receive_type(communicator, "status")
        await communicator.send_to(text_data='{"action": "ping"}')
        assert (await _receive_type(communicator, "pong"))["payload"] == {}
        await communicator.send_to(text_data="not json")
        error = await _receive_type(communicator, "error")
        assert error["payload"]["code"] == "malformed"
        await communicator.send_to(text_data='{"action": "dance"}')
        assert (await _receive_type(communicator, "error"))["payload"]["code"] == "unknown_action"
        await communicator.send_to(text_data='{"action": "subscribe", "symbols": ["spy"]}')
        ack = await _receive_type(communicator, "status")
        assert ack["payload"]["subscribed"] == ["SPY"]
    finally:
        await communicator.disconnect()
