"""Telegram chat control through the fake Bot API: getUpdates, replies, the kill switch."""

from __future__ import annotations

import pytest

from audit.models import AuditEntry
from notifications import chat
from notifications.models import Channel
from tests.notifications.conftest import TOKEN
from trading.models import KillSwitch, Order
from trading.selectors import kill_switch_get

pytestmark = pytest.mark.django_db


@pytest.fixture
def bot(telegram_api, session, market, settings):
    from notifications.services import _key, _redis

    _redis().delete(_key("telegram_offset"), _key("telegram_poll"))
    Channel.objects.create(name="tg", kind="telegram", target="4242", secret=TOKEN)
    return telegram_api


def say(fake, chat_id: int, text: str) -> None:
    update_id = 1000 + len(fake.updates)
    fake.updates.append(
        {
            "update_id": update_id,
            "message": {"message_id": update_id, "chat": {"id": chat_id}, "text": text},
        }
    )


def replies(fake) -> list[tuple[str, str]]:
    return [(r["json"]["chat_id"], r["json"]["text"]) for r in fake.of(f"/bot{TOKEN}/sendMessage")]


def test_stop_from_an_unknown_chat_is_ignored(bot):
    say(bot, 666, "/stop")
    assert chat.poll_once(token=chat.bot_token(), poll_seconds=0) == 1
    assert not kill_switch_get().engaged
    assert replies(bot) == []


def test_stop_from_a_known_chat_halts_and_confirms_then_resume(bot, trader):
    resting = trader.post(
        "/api/v1/orders/submit",
        {"symbol": "SPY", "side": "buy", "qty": "1", "type": "limit", "limit_price": "1"},
        format="json",
    ).json()
    say(bot, 4242, "/stop@TradingRobotBot")
    chat.poll_once(token=chat.bot_token(), poll_seconds=0)
    switch = KillSwitch.objects.get()
    assert switch.engaged and switch.changed_by == "telegram:4242"
    [(chat_id, text)] = replies(bot)
    assert chat_id == "4242" and "Kill switch ENGAGED" in text and "1 open orders canceled" in text
    # The API now refuses orders, as after any halt.
    refused = trader.post(
        "/api/v1/orders/submit", {"symbol": "SPY", "side": "buy", "qty": "1"}, format="json"
    )
    assert refused.status_code == 409
    assert Order.objects.get(pk=resting["id"]).status == "canceled"
    # The same update is not handled twice (the offset moved past it).
    assert chat.poll_once(token=chat.bot_token(), poll_seconds=0) == 0
    say(bot, 4242, "/resume")
    chat.poll_once(token=chat.bot_token(), poll_seconds=0)
    assert not kill_switch_get().engaged
    assert "resumed" in replies(bot)[-1][1]
    # The audit log names the chat and the way in, as for any other halt and resume.
    entries = AuditEntry.objects.filter(action__in=["trading.halt", "trading.resume"])
    assert [(e.action, e.actor, e.via, e.outcome) for e in entries.order_by("at", "pk")] == [
        ("trading.halt", "telegram:4242", "telegram", "ok"),
        ("trading.resume", "telegram:4242", "telegram", "ok"),
    ]


def test_status_positions_and_help(bot, trader):
    trader.post(
        "/api/v1/orders/submit", {"symbol": "SPY", "side": "buy", "qty": "3"}, format="json"
    )
    for text in ("/status", "/positions", "/help", "/nonsense", "hello"):
        say(bot, 4242, text)
    chat.poll_once(token=chat.bot_token(), poll_seconds=0)
    answers = [text for _chat, text in replies(bot)]
    assert len(answers) == 4  # plain text is no command
    status, positions, help_, unknown = answers
    assert status.startswith("Trading: on") and "Equity:" in status
    assert positions.startswith("SPY: 3 @")
    assert "/stop" in help_ and "Unknown command /nonsense" in unknown


def test_only_one_process_polls(bot):
    first = chat.Lease(chat._key("telegram_poll"), seconds=30)
    second = chat.Lease(chat._key("telegram_poll"), seconds=30)
    assert first.acquire_or_renew()
    assert not second.acquire_or_renew()
    assert first.acquire_or_renew()  # renewal
    first.release()
    assert second.acquire_or_renew()
    second.release()
