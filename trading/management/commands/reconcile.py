"""`manage.py reconcile`: compare local orders and positions with the broker's; repair ours."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Reconcile local open orders and positions with the broker (never resends orders)."

    def handle(self, *args, **options):
        from trading.services import reconcile

        report = reconcile(by="manage.py reconcile")
        for line in report.repairs:
            self.stdout.write(f"repaired: {line}")
        for line in report.errors:
            self.stderr.write(f"error: {line}")
        self.stdout.write(json.dumps(report.as_dict()))
        if report.errors:
            raise SystemExit(1)
