from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from marketdata import calendar
from marketdata.models import SYMBOL_RE


class Command(BaseCommand):
    help = (
        "Backfill 5-minute bars from a provider for the last N days (bulk upserts, idempotent), "
        "with a progress bar. Example: manage.py backfill --provider synthetic --symbols SPY QQQ "
        "--days 365"
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--provider", default=None, help="default: MARKETDATA_PROVIDER")
        parser.add_argument(
            "--symbols",
            nargs="+",
            default=None,
            help="SPY QQQ or SPY,QQQ (default: PRIMARY_SYMBOLS)",
        )
        parser.add_argument("--days", type=int, default=30, help="calendar days back (1-3650)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, provider, symbols, days, no_progress, **options) -> None:
        from marketdata.providers import get_provider
        from marketdata.providers.base import ProviderError
        from marketdata.services import bars_backfill

        if not 1 <= days <= 3650:
            raise CommandError("--days must be from 1 to 3650")
        name = provider or settings.MARKETDATA_PROVIDER
        if name not in settings.MARKETDATA_PROVIDERS and "." not in name:
            raise CommandError(
                f"--provider {name!r} is not one of {sorted(settings.MARKETDATA_PROVIDERS)}"
            )
        try:
            source = get_provider(name)
        except Exception as exc:  # noqa: BLE001 - a configuration problem, reported plainly
            raise CommandError(f"provider {name}: {exc}") from exc
        symbols = [
            s.strip().upper()
            for group in (symbols or settings.PRIMARY_SYMBOLS)
            for s in group.split(",")
            if s.strip()
        ]
        bad = [s for s in symbols if not SYMBOL_RE.match(s)]
        if bad or not symbols:
            raise CommandError(f"--symbols: {bad[0] if bad else '(none)'!r} is not a ticker symbol")
        end = calendar.last_completed_bar_start(calendar.utcnow()) + calendar.BAR
        start = end - timedelta(days=days)
        expected = len(calendar.bar_starts_ns(calendar._ns(start), calendar._ns(end)))
        with tqdm(
            total=expected * len(symbols),
            unit="bar",
            desc=f"backfill {name}",
            disable=no_progress,
            file=self.stderr._out,
        ) as bar:
            try:
                stored = bars_backfill(
                    provider=source, symbols=symbols, start=start, end=end, progress=bar.update
                )
            except ProviderError as exc:
                raise CommandError(f"provider {name} failed: {exc}") from exc
        self.stdout.write(
            f"Stored {stored} bars for {', '.join(symbols)} "
            f"from {start:%Y-%m-%d} to {end:%Y-%m-%d}."
        )
