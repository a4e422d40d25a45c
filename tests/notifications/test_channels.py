"""Each channel against a local stand-in of its service (tests/fakes/chat_services.py)."""

from __future__ import annotations

import logging

import pytest
from django.core.exceptions import ImproperlyConfigured, ValidationError

from notifications.channels import get_backend
from notifications.channels.base import ChannelError, Outgoing
from notifications.chart import equity_png
from notifications.events import Notice
from tests.notifications.conftest import SECRET, TOKEN

NOTICE = Notice("order.filled:abc", "order.filled", "info", "Filled: BUY 1 SPY", "at 500.00")


def _out(target: str, secret: str = "", image: bytes | None = None) -> Outgoing:
    return Outgoing(NOTICE, target, secret, "order.filled:abc#1", image)


def test_webhook_is_signed_and_verifiable(fake):
    get_backend("webhook").send(_out(fake.base + "/webhook", SECRET))
    [request] = fake.of("/webhook")  # the fake accepted it: signature and timestamp verified
    assert request["json"]["id"] == "order.filled:abc"
    assert request["headers"]["idempotency-key"] == "order.filled:abc#1"
    assert request["json"]["idempotency_key"] == "order.filled:abc#1"
    assert request["headers"]["x-trp-signature"].startswith("sha256=")


def test_webhook_with_the_wrong_secret_is_refused_for_good(fake):
    with pytest.raises(ChannelError) as caught:
        get_backend("webhook").send(_out(fake.base + "/webhook", "another-secret-of-16+"))
    assert caught.value.permanent and "401" in caught.value.message
    assert fake.of("/webhook") == []


def test_redirects_are_not_followed_and_answers_are_capped(fake):
    with pytest.raises(ChannelError, match="redirect"):
        get_backend("webhook").send(_out(fake.base + "/redirect", SECRET))
    assert fake.of("/webhook") == []  # the signed body never went to the redirect's target
    with pytest.raises(ChannelError, match="larger than"):
        get_backend("webhook").send(_out(fake.base + "/huge", SECRET))


def test_unreachable_endpoint_fails_fast_and_temporarily(settings):
    settings.NOTIFICATIONS_TIMEOUT_SECONDS = 1
    with pytest.raises(ChannelError) as caught:
        get_backend("webhook").send(_out("http://127.0.0.1:9/webhook", SECRET))
    assert not caught.value.permanent


def test_slack_429_carries_retry_after_then_sends(fake):
    fake.rate_limit_next = 1
    with pytest.raises(ChannelError) as caught:
        get_backend("slack").send(_out(fake.base + "/slack/T0/B0/x"))
    assert caught.value.retry_after == 1.0 and not caught.value.permanent
    get_backend("slack").send(_out(fake.base + "/slack/T0/B0/x"))
    assert "Filled: BUY 1 SPY" in fake.of("/slack")[0]["json"]["text"]


def test_discord_429_json_retry_after_and_chart_upload(fake):
    url = fake.base + "/discord/api/webhooks/1/tok"
    fake.rate_limit_next = 1
    with pytest.raises(ChannelError) as caught:
        get_backend("discord").send(_out(url))
    assert caught.value.retry_after == 0.3
    png = equity_png([100.0, 101.5, 99.0, 103.0])
    get_backend("discord").send(_out(url, image=png))
    [request] = fake.of("/discord")
    assert request["payload_json"]["content"].startswith("**Filled")
    assert request["files"]["files[0]"] == png and png.startswith(b"\x89PNG\r\n\x1a\n")


def test_telegram_message_photo_errors_never_show_the_token(telegram_api):
    fake = telegram_api
    get_backend("telegram").send(_out("42", TOKEN))
    get_backend("telegram").send(_out("42", TOKEN, image=equity_png([1.0, 2.0])))
    message, photo = fake.of("/bot")
    assert message["path"].endswith("/sendMessage") and message["json"]["chat_id"] == "42"
    assert photo["path"].endswith("/sendPhoto") and photo["files"]["photo"].startswith(b"\x89PNG")
    fake.rate_limit_next = 1
    with pytest.raises(ChannelError) as caught:
        get_backend("telegram").send(_out("42", TOKEN))
    assert caught.value.retry_after == 1.0
    wrong = "999999:BBH-wrong-token-for-tests-only_x"
    with pytest.raises(ChannelError) as caught:
        get_backend("telegram").send(_out("42", wrong))
    assert caught.value.permanent and wrong not in caught.value.message


def test_email_through_a_real_smtp_server(settings):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Collect(Message):
        def handle_message(self, message) -> None:
            received.append(message)

    from tests.conftest import free_port

    port = free_port()
    controller = Controller(Collect(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", port
        png = equity_png([1.0, 3.0, 2.0])
        get_backend("email").send(_out("trader@example.com, ops@example.com", image=png))
    finally:
        controller.stop()
    [mail] = received
    assert mail["Subject"] == "[TradingRobotPlug] Filled: BUY 1 SPY"
    assert "ops@example.com" in mail["To"] and mail["X-TRP-Event"] == "order.filled:abc"
    attachments = [p for p in mail.walk() if p.get_content_type() == "image/png"]
    assert attachments[0].get_payload(decode=True) == png


@pytest.mark.parametrize(
    ("kind", "target", "secret", "field", "words"),
    [
        ("webhook", "ftp://example.com/hook", SECRET, "target", "http"),
        ("webhook", "https://exa mple.com", SECRET, "target", "spaces"),
        ("webhook", "https://example.com:99999/x", SECRET, "target", "valid URL"),
        ("webhook", "https://example.com/hook", "short", "secret", "16"),
        ("slack", "not a url", "", "target", "Slack"),
        ("discord", "https://user:pw@discord.com/api/webhooks/1/x", "", "target", "credentials"),
        ("telegram", "chat-one", TOKEN, "target", "chat id"),
        ("telegram", "42", "not-a-token", "secret", "token"),
        ("email", "not-an-address", "", "target", "not a valid email"),
    ],
)
def test_bad_targets_are_refused_naming_the_field(kind, target, secret, field, words):
    from notifications.services import channel_validate

    with pytest.raises(ValidationError) as caught:
        channel_validate(kind=kind, target=target, secret=secret)
    assert field in caught.value.message_dict
    assert words in caught.value.message_dict[field][0]


def test_environment_quick_start_creates_and_updates_channels(db, settings):
    from notifications.models import Channel
    from notifications.services import channels_sync_from_env

    settings.NOTIFICATIONS_WEBHOOK_URL = "https://hooks.example.com/trp"
    settings.NOTIFICATIONS_WEBHOOK_SECRET = SECRET
    settings.TELEGRAM_BOT_TOKEN, settings.TELEGRAM_CHAT_ID = TOKEN, ["42", "-1001"]
    settings.NOTIFICATIONS_EMAIL_TO = ["trader@example.com"]
    channels_sync_from_env()
    settings.NOTIFICATIONS_WEBHOOK_URL = "https://hooks.example.com/trp2"
    channels_sync_from_env()
    kinds = sorted(Channel.objects.values_list("kind", "target"))
    assert kinds == [
        ("email", "trader@example.com"),
        ("telegram", "-1001"),
        ("telegram", "42"),
        ("webhook", "https://hooks.example.com/trp2"),
    ]
    settings.NOTIFICATIONS_WEBHOOK_URL = "hooks.example.com/no-scheme"
    with pytest.raises(ImproperlyConfigured, match="NOTIFICATIONS_WEBHOOK_URL"):
        channels_sync_from_env()


def test_admin_never_shows_the_secret_and_sends_a_test(admin_client, fake, caplog):
    from notifications.models import Channel

    channel = Channel.objects.create(
        name="hook", kind="webhook", target=fake.base + "/webhook", secret=SECRET
    )
    page = admin_client.get(f"/admin/notifications/channel/{channel.pk}/change/")
    assert page.status_code == 200 and SECRET not in page.content.decode()
    # Saving without typing the secret keeps it.
    form = {
        "name": "hook",
        "kind": "webhook",
        "target": fake.base + "/webhook",
        "secret": "",
        "enabled": "on",
        "events": "[]",
        "min_severity": "info",
        "timezone": "America/New_York",
    }
    assert (
        admin_client.post(f"/admin/notifications/channel/{channel.pk}/change/", form).status_code
        == 302
    )
    channel.refresh_from_db()
    assert channel.secret == SECRET
    bad = admin_client.post(
        f"/admin/notifications/channel/{channel.pk}/change/", {**form, "target": "ftp://x"}
    )
    assert bad.status_code == 200 and "must start with http:// or https://" in bad.content.decode()
    with caplog.at_level(logging.DEBUG):
        answer = admin_client.post(
            "/admin/notifications/channel/",
            {"action": "send_test", "_selected_action": [channel.pk]},
            follow=True,
        )
    assert "Hook: test sent" in answer.content.decode()
    [request] = fake.of("/webhook")
    assert request["json"]["kind"] == "test"
    assert SECRET not in caplog.text


def test_equity_chart_is_a_valid_png():
    import struct
    import zlib

    png = equity_png([100.0 + (i % 7) for i in range(50)], width=120, height=60)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (120, 60)
    idat = png.index(b"IDAT")
    length = struct.unpack(">I", png[idat - 4 : idat])[0]
    raw = zlib.decompress(png[idat + 4 : idat + 4 + length])
    assert len(raw) == height * (1 + 3 * width)
    assert bytes((33, 102, 172)) in raw  # the line was drawn
