"""Generic webhook: the notice as JSON, signed so a receiver can verify it and refuse replays.

Headers: `X-TRP-Timestamp` (unix seconds), `X-TRP-Signature: sha256=<hex HMAC-SHA256 of
"<timestamp>.<body>" with the channel's secret>`, `X-TRP-Event` (the event id) and
`Idempotency-Key` (event id + channel; also `idempotency_key` in the body). A receiver verifies
the signature, refuses timestamps older than a few minutes, and drops keys it has seen.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

from notifications.channels.base import (
    ChannelBackend,
    Outgoing,
    http_post,
    raise_for_status,
    url_problem,
)


def signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class WebhookChannel(ChannelBackend):
    kind = "webhook"

    def validate(self, *, target: str, secret: str) -> dict[str, str]:
        problems = {}
        if problem := url_problem(target):
            problems["target"] = f"webhook URL {problem}"
        if len(secret) < 16:
            problems["secret"] = "the signing secret must be at least 16 characters"
        return problems

    def send(self, message: Outgoing) -> None:
        notice = message.notice
        body = json.dumps(
            {
                "id": notice.id,
                "idempotency_key": message.idempotency_key,
                "kind": notice.kind,
                "severity": notice.severity,
                "title": notice.title,
                "text": notice.text,
                "occurred_at": notice.occurred_at,
                "data": notice.data,
            },
            separators=(",", ":"),
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "TradingRobotPlug-notifications",
            "X-TRP-Timestamp": timestamp,
            "X-TRP-Signature": signature(message.secret, timestamp, body),
            "X-TRP-Event": notice.id,
            "Idempotency-Key": message.idempotency_key,
        }
        response = http_post(message.target, body=body, headers=headers, what="webhook")
        raise_for_status(response, "webhook")
