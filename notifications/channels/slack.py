"""Slack incoming webhook (https://api.slack.com/messaging/webhooks): POST `{"text": ...}`; the
answer is `ok`, or an error string with 400/403/404/410. Slack allows about one message per
second per webhook and answers 429 with Retry-After beyond that."""

from __future__ import annotations

import json

from notifications.channels.base import (
    ChannelBackend,
    Outgoing,
    http_post,
    raise_for_status,
    url_problem,
)


class SlackChannel(ChannelBackend):
    kind = "slack"
    min_interval_seconds = 1.0

    def validate(self, *, target: str, secret: str) -> dict[str, str]:
        if problem := url_problem(target):
            return {"target": f"Slack webhook URL {problem}"}
        return {}

    def send(self, message: Outgoing) -> None:
        notice = message.notice
        body = json.dumps({"text": f"*{notice.title}*\n{notice.text}"}).encode()
        response = http_post(
            message.target,
            body=body,
            headers={"Content-Type": "application/json"},
            what="slack",
        )
        raise_for_status(response, "slack")
