"""Telegram chat control: commands from configured chats, through the trading services.

`/status`, `/positions`, `/stop` (the kill switch, with a confirmation reply), `/resume`,
`/help`. A message from any other chat is ignored (and logged without its text). Updates come
by long polling (`getUpdates`); exactly one process in the cluster polls, the holder of a
Redis lease, which another poller takes over if the holder stops renewing it.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings

from core.lease import Lease
from notifications.channels.base import ChannelError
from notifications.channels.telegram import api_call
from notifications.models import Channel, ChannelKind
from notifications.services import _key, _redis

logger = logging.getLogger(__name__)

HELP = (
    "/status - trading state, session, equity\n"
    "/positions - open positions\n"
    "/stop - engage the kill switch (halt trading, cancel open orders)\n"
    "/resume - release the kill switch\n"
    "/help - this list"
)


def bot_token() -> str:
    if settings.TELEGRAM_BOT_TOKEN:
        return settings.TELEGRAM_BOT_TOKEN
    channel = Channel.objects.filter(kind=ChannelKind.TELEGRAM, enabled=True).first()
    return channel.secret if channel else ""


def allowed_chats() -> set[str]:
    chats = set(settings.TELEGRAM_CHAT_ID)
    chats.update(
        Channel.objects.filter(kind=ChannelKind.TELEGRAM, enabled=True).values_list(
            "target", flat=True
        )
    )
    return {c.strip() for c in chats}


def command_handle(*, chat_id: str, text: str) -> str | None:
    """The reply to one message, or None if it is not for us (unknown chat, not a command)."""
    from audit.context import audit_context
    from audit.models import Via
    from trading import selectors
    from trading.services import trading_halt, trading_resume

    if str(chat_id) not in allowed_chats():
        logger.warning("telegram: ignored a message from unknown chat %s", chat_id)
        return None
    words = (text or "").strip().split()
    if not words or not words[0].startswith("/"):
        return None
    command = words[0].split("@", 1)[0].lower()
    who = f"telegram:{chat_id}"
    if command in ("/help", "/start"):
        return HELP
    if command == "/status":
        status = selectors.status_get()
        switch = status["kill_switch"]
        session = status["session"] or {}
        lines = [
            "Trading: " + ("HALTED - " + (switch["reason"] or "") if switch["engaged"] else "on"),
            f"Session: {session.get('id', '-')} ({session.get('status', 'none')})",
            f"Open orders: {status['open_orders']}",
            f"Market: {'open' if status['market_open'] else 'closed'} at {status['market_time']}",
        ]
        current = selectors.session_current() or selectors.session_latest()
        if current is not None:
            performance = selectors.performance_get(current)
            lines.append(f"Equity: {performance['equity']} (cash {performance['cash']})")
        return "\n".join(lines)
    if command == "/positions":
        from trading.models import Position

        session = selectors.session_current() or selectors.session_latest()
        rows = (
            Position.objects.filter(session=session).exclude(qty=0).order_by("symbol")
            if session
            else []
        )
        from notifications.events import _num

        lines = [
            f"{p.symbol}: {_num(p.qty)} @ {_num(p.avg_entry_price)} (last {_num(p.last_price)}, "
            f"P&L {p.unrealized_pnl:+.2f})"
            for p in rows
        ]
        return "\n".join(lines) or "No open positions."
    if command == "/stop":
        with audit_context(actor=who, via=Via.TELEGRAM):
            result = trading_halt(reason=f"Telegram /stop from chat {chat_id}", by=who)
        return (
            "Kill switch ENGAGED: trading halted, "
            f"{len(result.canceled)} open orders canceled"
            + (
                f", {len(result.cancel_failed)} could not be canceled"
                if result.cancel_failed
                else ""
            )
            + ". Send /resume to trade again."
        )
    if command == "/resume":
        with audit_context(actor=who, via=Via.TELEGRAM):
            trading_resume(by=who)
        return "Kill switch released: trading resumed."
    return f"Unknown command {command}.\n{HELP}"


# --- long polling ---------------------------------------------------------------------------------


def poll_once(*, token: str, poll_seconds: int) -> int:
    """One getUpdates round: answer each update; returns how many were handled."""
    offset_key = _key("telegram_offset")
    offset = int(_redis().get(offset_key) or 0)
    updates = api_call(
        token,
        "getUpdates",
        fields={"offset": offset, "timeout": poll_seconds, "allowed_updates": ["message"]},
        timeout=poll_seconds + settings.NOTIFICATIONS_TIMEOUT_SECONDS,
    )
    for update in updates or []:
        # Past this update first: a command that crashes is not repeated forever.
        _redis().set(offset_key, int(update.get("update_id", 0)) + 1)
        message = update.get("message") or {}
        chat_id = str((message.get("chat") or {}).get("id", ""))
        try:
            reply = command_handle(chat_id=chat_id, text=str(message.get("text") or ""))
        except Exception:  # noqa: BLE001 - one bad command must not stop the poller
            logger.exception("telegram command failed")
            reply = "That command failed; see the server log."
        if reply:
            try:
                api_call(token, "sendMessage", fields={"chat_id": chat_id, "text": reply[:4096]})
            except ChannelError as exc:
                logger.warning("telegram reply failed: %s", exc.message)
    return len(updates or [])


def poll_forever(*, poll_seconds: int = 25, stop=lambda: False) -> None:
    lease = Lease(_key("telegram_poll"), seconds=poll_seconds + 60)
    try:
        while not stop():
            token = bot_token()
            if not token:
                time.sleep(min(30, poll_seconds))  # not configured (yet): check again later
                continue
            if not lease.acquire_or_renew():
                time.sleep(min(10, poll_seconds))  # another process polls
                continue
            try:
                poll_once(token=token, poll_seconds=poll_seconds)
            except ChannelError as exc:
                logger.warning("telegram getUpdates failed: %s", exc.message)
                time.sleep(exc.retry_after or 5)
    finally:
        lease.release()
