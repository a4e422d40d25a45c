"""5-minute bars from a CSV file (manage.py import_bars FILE).

Columns (a header row is required; order free, extra columns ignored):

    symbol,timestamp,open,high,low,close,volume

`timestamp` is the bar's start, ISO-8601 (`2025-03-03T14:30:00Z`, `2025-03-03 09:30:00-05:00`);
without an offset it is UTC. Prices are decimals > 0 with low <= open, close <= high; volume is a
whole number >= 0 (empty means 0). A bad row is reported with its line number and not imported.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from marketdata.providers.base import BarData, BaseProvider

COLUMNS = ["symbol", "timestamp", "open", "high", "low", "close", "volume"]


@dataclass
class CsvParse:
    bars: list[BarData] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


def _row_bar(row: dict[str, str]) -> BarData:
    symbol = (row.get("symbol") or "").strip().upper()
    if not symbol or len(symbol) > 16:
        raise ValueError("symbol missing or longer than 16 characters")
    try:
        ts = datetime.fromisoformat((row.get("timestamp") or "").strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"timestamp {row.get('timestamp')!r} is not ISO-8601") from None
    ts = (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(UTC)
    prices = {}
    for name in ("open", "high", "low", "close"):
        try:
            value = Decimal((row.get(name) or "").strip())
        except InvalidOperation:
            raise ValueError(f"{name} {row.get(name)!r} is not a number") from None
        if not value.is_finite() or value <= 0:
            raise ValueError(f"{name} must be a positive number")
        prices[name] = value
    if not (prices["low"] <= min(prices["open"], prices["close"])) or not (
        max(prices["open"], prices["close"]) <= prices["high"]
    ):
        raise ValueError("prices inconsistent (need low <= open, close <= high)")
    raw_volume = (row.get("volume") or "").strip() or "0"
    if not raw_volume.isdigit():
        raise ValueError(f"volume {raw_volume!r} is not a whole number >= 0")
    return BarData(symbol, "5Min", ts, volume=int(raw_volume), **prices)


def parse_csv(path: Path | str) -> CsvParse:
    result = CsvParse()
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip().lower() for h in (reader.fieldnames or [])]
        missing = [c for c in COLUMNS if c not in header and c != "volume"]
        if missing:
            result.errors.append((1, f"header lacks column(s): {', '.join(missing)}"))
            return result
        reader.fieldnames = header
        for row in reader:
            try:
                result.bars.append(_row_bar(row))
            except ValueError as exc:
                result.errors.append((reader.line_num, str(exc)))
    return result


class CsvProvider(BaseProvider):
    """Serves the bars of one file (for backfill --provider dotted path use)."""

    name = "csv"

    def __init__(self, path: Path | str) -> None:
        self.bars = parse_csv(path).bars

    def fetch_bars(self, symbol, timeframe, start, end):
        return sorted(
            (b for b in self.bars if b.symbol == symbol and start <= b.timestamp < end),
            key=lambda b: b.timestamp,
        )
