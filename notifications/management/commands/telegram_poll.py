from __future__ import annotations

import signal

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Answer Telegram chat commands (/status, /positions, /stop, /resume, /help) by long "
        "polling. Run one or more: only the holder of a Redis lease polls."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--poll-seconds", type=int, default=25)

    def handle(self, *args, poll_seconds: int, **options) -> None:
        from notifications.chat import poll_forever
        from notifications.services import channels_sync_from_env

        stopping = []
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        channels_sync_from_env()
        try:
            poll_forever(poll_seconds=max(1, min(poll_seconds, 50)), stop=lambda: bool(stopping))
        except KeyboardInterrupt:
            pass
