from __future__ import annotations

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Hold the broker's and the market's streaming connections (one holder per account "
        "across the cluster; others wait as standby). Stops cleanly on SIGTERM/SIGINT."
    )

    def handle(self, *args, **options) -> None:
        from realtime.runner import stream_forever

        stream_forever()
