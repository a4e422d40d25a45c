"""Discord webhook (https://discord.com/developers/docs/resources/webhook#execute-webhook):
JSON `{"content"}`, or multipart with `payload_json` and `files[0]` for the chart. Discord's
documented rate limits are per route and announced in headers; for webhooks that is 5 requests
per 2 seconds, and a 429's JSON body carries `retry_after` in seconds."""

from __future__ import annotations

import json

from notifications.channels.base import (
    ChannelBackend,
    ChannelError,
    Outgoing,
    http_post,
    multipart,
    raise_for_status,
    url_problem,
)


class DiscordChannel(ChannelBackend):
    kind = "discord"
    min_interval_seconds = 0.4
    supports_image = True

    def validate(self, *, target: str, secret: str) -> dict[str, str]:
        if problem := url_problem(target):
            return {"target": f"Discord webhook URL {problem}"}
        return {}

    def send(self, message: Outgoing) -> None:
        notice = message.notice
        payload = {"content": f"**{notice.title}**\n{notice.text}"[:2000]}
        if message.image_png:
            payload["attachments"] = [{"id": 0, "filename": "equity.png"}]
            body, ctype = multipart(
                {"payload_json": json.dumps(payload)},
                {"files[0]": ("equity.png", message.image_png, "image/png")},
            )
        else:
            body, ctype = json.dumps(payload).encode(), "application/json"
        response = http_post(
            message.target, body=body, headers={"Content-Type": ctype}, what="discord"
        )
        if response.status == 429:
            answer = response.json() or {}
            retry_after = answer.get("retry_after") if isinstance(answer, dict) else None
            if isinstance(retry_after, int | float):
                raise ChannelError("discord: HTTP 429 rate limited", retry_after=float(retry_after))
        raise_for_status(response, "discord")
