from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = (
        "Import 5-minute bars from a CSV file with the header "
        "symbol,timestamp,open,high,low,close,volume (timestamp: bar start, ISO-8601, UTC unless "
        "an offset is given). Good rows are upserted; bad rows are reported by line number."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("file")
        parser.add_argument(
            "--strict", action="store_true", help="import nothing if any row is bad"
        )

    def handle(self, *args, file, strict, **options) -> None:
        from marketdata.services import bars_import_csv

        try:
            result = bars_import_csv(path=file, strict=strict)
        except OSError as exc:
            raise CommandError(f"cannot read {file}: {exc}") from exc
        for line, message in result.errors:
            self.stderr.write(f"{file}:{line}: {message}")
        self.stdout.write(f"Imported {result.stored} bars, {len(result.errors)} bad rows.")
        if result.errors:
            raise CommandError(f"{len(result.errors)} bad row(s) in {file}")
