"""Answer Robinhood's SMS/e-mail login challenge with the code it sent (BROKER=robinhood)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from trading.brokers.base import BrokerError


class Command(BaseCommand):
    help = "Enter the code Robinhood sent by SMS or e-mail to approve this device's login."

    def add_arguments(self, parser) -> None:
        parser.add_argument("code", help="the code Robinhood sent")

    def handle(self, *args, code: str, **options) -> None:
        from trading.brokers.robinhood_auth import challenge_respond

        code = code.strip()
        if not code.isdigit() or len(code) > 12:
            raise CommandError("code must be the digits Robinhood sent")
        try:
            status = challenge_respond(code)
        except BrokerError as exc:
            raise CommandError(exc.message) from exc
        if status != "validated":
            raise CommandError(f"Robinhood did not accept the code (status {status or 'none'})")
        self.stdout.write("Challenge validated; the next broker call completes the login.")
