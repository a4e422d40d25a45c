"""Telegram Bot API (https://core.telegram.org/bots/api): `sendMessage` and `sendPhoto` at
`<TELEGRAM_API_URL>/bot<token>/<method>`. Answers are `{"ok": true, "result"}` or `{"ok": false,
"error_code", "description", "parameters": {"retry_after"}}`. Telegram's FAQ: no more than one
message per second to one chat, 20 a minute to one group, 30 a second in all."""

from __future__ import annotations

import json
import re

from django.conf import settings

from notifications.channels.base import (
    ChannelBackend,
    ChannelError,
    Outgoing,
    Response,
    http_post,
    multipart,
    plain_text,
)

CHAT_ID = re.compile(r"^(-?\d{1,20}|@[A-Za-z][A-Za-z0-9_]{4,31})$")
TOKEN = re.compile(r"^\d{1,20}:[A-Za-z0-9_-]{20,100}$")


def api_call(
    token: str, method: str, *, fields: dict, photo: bytes | None = None, timeout=None
) -> dict:
    """One Bot API call; returns `result` or raises ChannelError (never with the token)."""
    url = f"{settings.TELEGRAM_API_URL.rstrip('/')}/bot{token}/{method}"
    if photo is not None:
        body, ctype = multipart(
            {k: str(v) for k, v in fields.items()}, {"photo": ("equity.png", photo, "image/png")}
        )
    else:
        body, ctype = json.dumps(fields).encode(), "application/json"
    response = http_post(
        url, body=body, headers={"Content-Type": ctype}, what=f"telegram {method}", timeout=timeout
    )
    return _result(response, method, token)


def _result(response: Response, method: str, token: str) -> dict:
    answer = response.json()
    if isinstance(answer, dict) and answer.get("ok") is True:
        return answer.get("result")
    answer = answer if isinstance(answer, dict) else {}
    description = str(answer.get("description") or "")[:200].replace(token, "***")
    code = answer.get("error_code") or response.status
    message = f"telegram {method}: {code} {description}".strip()
    retry_after = (answer.get("parameters") or {}).get("retry_after")
    if code == 429 or response.status == 429:
        raise ChannelError(
            message, retry_after=float(retry_after) if isinstance(retry_after, int) else None
        )
    if response.status >= 500 or not isinstance(code, int):
        raise ChannelError(message)
    raise ChannelError(message, permanent=400 <= code < 500)


class TelegramChannel(ChannelBackend):
    kind = "telegram"
    min_interval_seconds = 1.0
    supports_image = True

    def interval_for(self, target: str) -> float:
        # Groups (negative ids): 20 messages a minute.
        return 3.0 if target.startswith("-") else self.min_interval_seconds

    def validate(self, *, target: str, secret: str) -> dict[str, str]:
        problems = {}
        if not CHAT_ID.match(target or ""):
            problems["target"] = "Telegram chat id must be a number (e.g. 123456789) or @channel"
        if not TOKEN.match(secret or ""):
            problems["secret"] = "Telegram bot token must look like 123456:ABC-DEF... (BotFather)"
        return problems

    def send(self, message: Outgoing) -> None:
        text = plain_text(message.notice)[:4096]
        if message.image_png:
            api_call(
                message.secret,
                "sendPhoto",
                fields={"chat_id": message.target, "caption": text[:1024]},
                photo=message.image_png,
            )
        else:
            api_call(
                message.secret, "sendMessage", fields={"chat_id": message.target, "text": text}
            )
