"""Email through Django's email backend (EMAIL_* settings: SMTP by default). The Message-ID is
derived from the idempotency key, so a mail client threads or drops a resent duplicate."""

from __future__ import annotations

import hashlib
import smtplib

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.core.validators import validate_email

from notifications.channels.base import ChannelBackend, ChannelError, Outgoing


def addresses(target: str) -> list[str]:
    return [a.strip() for a in (target or "").split(",") if a.strip()]


class EmailChannel(ChannelBackend):
    kind = "email"
    supports_image = True

    def validate(self, *, target: str, secret: str) -> dict[str, str]:
        found = addresses(target)
        if not found:
            return {"target": "at least one email address is needed"}
        for address in found:
            try:
                validate_email(address)
            except ValidationError:
                return {"target": f"{address!r} is not a valid email address"}
        return {}

    def send(self, message: Outgoing) -> None:
        notice = message.notice
        digest = hashlib.sha256(message.idempotency_key.encode()).hexdigest()[:32]
        mail = EmailMessage(
            subject=f"[TradingRobotPlug] {notice.title}"[:200],
            body=f"{notice.text}\n\nEvent: {notice.id}\nAt: {notice.occurred_at}\n",
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=addresses(message.target),
            headers={"Message-ID": f"<{digest}@tradingrobotplug>", "X-TRP-Event": notice.id},
            connection=get_connection(timeout=settings.NOTIFICATIONS_TIMEOUT_SECONDS),
        )
        if message.image_png:
            mail.attach("equity.png", message.image_png, "image/png")
        try:
            mail.send()
        except smtplib.SMTPRecipientsRefused as exc:
            raise ChannelError(f"email: recipients refused: {exc}"[:300], permanent=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise ChannelError(f"email: {type(exc).__name__}: {exc}"[:300]) from None
