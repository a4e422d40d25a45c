"""The market-data provider interface.

Timestamps are timezone-aware UTC and mark the *start* of a bar. Prices are Decimal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


class ProviderError(Exception):
    """A provider could not answer (network, upstream error, bad payload)."""


@dataclass(frozen=True)
class BarData:
    symbol: str
    timeframe: str  # "5Min"
    timestamp: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int


@dataclass(frozen=True)
class Quote:
    symbol: str
    price: Decimal
    timestamp: datetime


class BaseProvider:
    name = "base"
    # Dotted path of the provider's live stream (realtime.sources.base.StreamSource), or "".
    stream_source = ""

    def fetch_bars(
        self, symbol: str, timeframe: str, start: datetime, end: datetime
    ) -> list[BarData]:
        """Bars with start <= timestamp < end, oldest first."""
        raise NotImplementedError

    def latest(self, symbols: list[str]) -> dict[str, Quote]:
        """The latest price per symbol the provider knows."""
        raise NotImplementedError
