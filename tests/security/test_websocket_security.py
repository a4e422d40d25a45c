"""/ws/updates: open sockets re-checked after revocation or deactivation, a connection cap per
principal, opaque tokens, and an exact cookie origin check (issue 14, findings 8 and 9)."""

from __future__ import annotations

import asyncio
import json

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth import get_user_model
from django.test import Client

from streaming.tokens import token_issue, token_verify
from trading.models import ApiKey
from tradingrobot.asgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


@database_sync_to_async
def _key(owner: bool = False):
    user = get_user_model().objects.create_user("kowner", password="x-unused-x") if owner else None
    key, raw = ApiKey.objects.create_key(name="ws", scope="read", owner=user)
    return key, raw, user


async def _open(url: str, headers=None) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, url, headers=headers or [])
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def _closed_with(communicator, seconds: float) -> int | None:
    """The close code the server sends within `seconds` (status frames are skipped)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while (left := deadline - asyncio.get_running_loop().time()) > 0:
        try:
            message = await communicator.receive_output(timeout=left)
        except TimeoutError:
            return None
        if message["type"] == "websocket.close":
            return message["code"]
    return None


async def _assert_streaming(communicator) -> None:
    first = json.loads(await communicator.receive_from(timeout=5))
    assert first["type"] == "status"


@pytest.mark.parametrize("how", ["revoke_by_update", "revoke_in_admin", "deactivate_owner"])
async def test_open_sockets_close_with_4401_after_revocation(settings, how):
    settings.WEBSOCKET_RECHECK_SECONDS = 1
    key, _raw, user = await _key(owner=True)
    token = await database_sync_to_async(lambda: token_issue(key_id=key.id, user_id=user.pk))()
    socket = await _open(f"/ws/updates?token={token.token}")
    try:
        await _assert_streaming(socket)

        @database_sync_to_async
        def act():
            if how == "revoke_by_update":
                ApiKey.objects.filter(pk=key.pk).update(revoked=True)
            elif how == "revoke_in_admin":
                key.revoked = True
                key.save()
            else:
                get_user_model().objects.filter(pk=user.pk).update(is_active=False)

        await act()
        assert await _closed_with(socket, 5) == 4401
    finally:
        await socket.disconnect()


async def test_a_session_users_socket_closes_when_the_user_is_deactivated(settings):
    settings.WEBSOCKET_RECHECK_SECONDS = 1

    @database_sync_to_async
    def login():
        user = get_user_model().objects.create_user("dash", password="x-unused-x")
        client = Client()
        client.force_login(user)
        return user, client.cookies["sessionid"].value

    user, cookie = await login()
    headers = [
        (b"cookie", f"sessionid={cookie}".encode()),
        (b"host", b"127.0.0.1:8000"),
        (b"origin", b"http://127.0.0.1:8000"),
    ]
    socket = await _open("/ws/updates", headers)
    try:
        await _assert_streaming(socket)
        await database_sync_to_async(
            lambda: get_user_model().objects.filter(pk=user.pk).update(is_active=False)
        )()
        assert await _closed_with(socket, 5) == 4401
    finally:
        await socket.disconnect()


async def test_the_default_recheck_interval_is_within_ten_seconds(settings):
    from django.conf import settings as live

    assert 0 < live.WEBSOCKET_RECHECK_SECONDS <= 10


async def test_connections_per_principal_are_capped(settings):
    settings.WEBSOCKET_MAX_CONNECTIONS_PER_PRINCIPAL = 2
    key, _raw, _user = await _key()
    token = await database_sync_to_async(lambda: token_issue(key_id=key.id, user_id=None))()
    url = f"/ws/updates?token={token.token}"
    sockets = [await _open(url), await _open(url)]
    try:
        for socket in sockets:
            await _assert_streaming(socket)
        third = await _open(url)
        assert await _closed_with(third, 5) == 4429
        await third.disconnect()
        # Another key is not affected; a freed slot can be used again.
        other_key, _, _ = await _key()
        other = await database_sync_to_async(
            lambda: token_issue(key_id=other_key.id, user_id=None)
        )()
        fourth = await _open(f"/ws/updates?token={other.token}")
        await _assert_streaming(fourth)
        await fourth.disconnect()
        await sockets.pop().disconnect()
        again = await _open(url)
        await _assert_streaming(again)
        sockets.append(again)
    finally:
        for socket in sockets:
            await socket.disconnect()


async def test_the_token_is_opaque(settings):
    """Whoever holds the token (a proxy log, a browser history) cannot read the key's id out
    of it, as they could from a signed-only token (base64 and zlib)."""
    import base64
    import zlib

    key, _raw, _ = await _key()
    token = await database_sync_to_async(lambda: token_issue(key_id=key.id, user_id=None))()
    prefix = key.id.partition(".")[0]
    payload = token.token.split(":")[0].lstrip(".")
    decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    try:
        decoded = zlib.decompress(decoded)
    except zlib.error:
        pass
    assert prefix.encode() not in decoded and prefix not in token.token
    assert token_verify(token.token).key_id == key.id
    # Tampering with one character is refused.
    flipped = token.token[:-5] + ("A" if token.token[-5] != "A" else "B") + token.token[-4:]
    assert token_verify(flipped) is None


@pytest.mark.parametrize(
    ("origin", "host", "ok"),
    [
        (b"http://localhost:8000", b"localhost:8000", True),
        (b"http://localhost:6666", b"localhost:8000", False),  # another port
        (b"https://localhost:8000", b"localhost:8000", False),  # another scheme
        (b"http://localhost", b"localhost:8000", False),  # default port 80
        (b"http://127.0.0.1:8000", b"localhost:8000", False),  # another host
        (b"null", b"localhost:8000", False),
        (b"https://dashboard.example.com", b"localhost:8000", True),  # CSRF_TRUSTED_ORIGINS
        (b"https://dashboard.example.com:444", b"localhost:8000", False),
    ],
)
async def test_the_cookie_origin_check_compares_scheme_host_and_port(settings, origin, host, ok):
    settings.CSRF_TRUSTED_ORIGINS = ["https://dashboard.example.com"]

    @database_sync_to_async
    def cookie():
        user = get_user_model().objects.create_user("o", password="x-unused-x")
        client = Client()
        client.force_login(user)
        return client.cookies["sessionid"].value

    headers = [
        (b"cookie", f"sessionid={await cookie()}".encode()),
        (b"host", host),
        (b"origin", origin),
    ]
    socket = await _open("/ws/updates", headers)
    try:
        if ok:
            await _assert_streaming(socket)
        else:
            assert await _closed_with(socket, 5) == 4401
    finally:
        await socket.disconnect()
