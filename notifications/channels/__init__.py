"""One module per channel kind behind `base.ChannelBackend`; `get_backend(kind)` picks it."""

from __future__ import annotations

from django.utils.module_loading import import_string

BACKENDS = {
    "webhook": "notifications.channels.webhook.WebhookChannel",
    "slack": "notifications.channels.slack.SlackChannel",
    "discord": "notifications.channels.discord.DiscordChannel",
    "telegram": "notifications.channels.telegram.TelegramChannel",
    "email": "notifications.channels.email.EmailChannel",
}


def get_backend(kind: str):
    return import_string(BACKENDS[kind])()
