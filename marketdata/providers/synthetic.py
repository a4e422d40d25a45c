"""Seeded, deterministic 5-minute bars in NYSE market hours: the offline default provider.

Each symbol has one log-price path over every session from 2016 on, drawn once from a seed made
of SYNTHETIC_SEED and the symbol, so any bar is the same whenever and however often it is asked
for. Volatility and volume follow the intraday U shape (busy open and close, quiet midday);
sessions gap overnight; early-close days end early; weekends and holidays have no bars.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from decimal import Decimal
from functools import cache

import numpy as np

from marketdata import calendar
from marketdata.providers.base import BarData, BaseProvider, Quote

BARS_PER_SESSION = 78
# Roughly where these traded in 2025, and their typical daily volatility.
PROFILES = {
    "SPY": (560.0, 0.010, 600_000),
    "QQQ": (480.0, 0.013, 450_000),
    "TSLA": (250.0, 0.035, 1_200_000),
    "NVDA": (130.0, 0.030, 2_500_000),
}


def _profile(symbol: str) -> tuple[float, float, int]:
    if symbol in PROFILES:
        return PROFILES[symbol]
    h = zlib.crc32(symbol.encode())
    return (20.0 + h % 480, 0.015 + (h % 20) / 1000, 100_000 + h % 900_000)


def _u_shape() -> np.ndarray:
    x = np.linspace(-1.0, 1.0, BARS_PER_SESSION)
    shape = 1.0 + 1.5 * x**2
    return shape / np.sqrt(np.mean(shape**2))


@cache
def _path(symbol: str, seed: int) -> dict[str, np.ndarray]:
    """Every bar of every session for one symbol, as arrays keyed by bar start (ns UTC)."""
    sessions, opens, closes = calendar._schedule_ns()
    base, daily_vol, base_volume = _profile(symbol)
    rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(symbol.encode())]))
    n_days = len(sessions)
    bar_vol = daily_vol / np.sqrt(BARS_PER_SESSION) * _u_shape()
    returns = rng.standard_normal((n_days, BARS_PER_SESSION)) * bar_vol
    gaps = rng.standard_normal(n_days) * daily_vol * 0.3
    wick = np.abs(rng.standard_normal((n_days, BARS_PER_SESSION, 2))) * bar_vol[None, :, None] * 0.6
    volume_noise = rng.lognormal(0.0, 0.35, (n_days, BARS_PER_SESSION))

    bars_per_day = ((closes - opens) // calendar.BAR_NS).astype(np.int64)
    mask = np.arange(BARS_PER_SESSION)[None, :] < bars_per_day[:, None]
    returns = np.where(mask, returns, 0.0)
    # A gentle pull toward the base level keeps a decade-long path in a believable range.
    day_sum = returns.sum(axis=1) + gaps
    level = np.empty(n_days)
    acc = 0.0
    for i in range(n_days):
        level[i] = acc
        acc += day_sum[i] - 0.002 * acc
    close_log = np.log(base) + level[:, None] + gaps[:, None] + np.cumsum(returns, axis=1)
    open_log = np.concatenate([(np.log(base) + level + gaps)[:, None], close_log[:, :-1]], axis=1)
    close_px = np.exp(close_log)
    open_px = np.exp(open_log)
    high_px = np.maximum(open_px, close_px) * np.exp(wick[..., 0])
    low_px = np.minimum(open_px, close_px) * np.exp(-wick[..., 1])
    volume = (base_volume * _u_shape() ** 2 * volume_noise).astype(np.int64)

    starts = opens[:, None] + np.arange(BARS_PER_SESSION, dtype=np.int64)[None, :] * calendar.BAR_NS
    return {
        "ts": starts[mask],
        "open": open_px[mask],
        "high": high_px[mask],
        "low": low_px[mask],
        "close": close_px[mask],
        "volume": volume[mask],
    }


class SyntheticProvider(BaseProvider):
    name = "synthetic"

    def __init__(self, seed: int | None = None) -> None:
        if seed is None:
            from django.conf import settings

            seed = settings.SYNTHETIC_SEED
        self.seed = seed

    def fetch_bars(
        self, symbol: str, timeframe: str, start: datetime, end: datetime
    ) -> list[BarData]:
        if timeframe != "5Min":
            raise ValueError("the synthetic provider makes 5Min bars")
        path = _path(symbol.upper(), self.seed)
        lo = np.searchsorted(path["ts"], calendar._ns(start), side="left")
        hi = np.searchsorted(path["ts"], calendar._ns(end), side="left")
        symbol = symbol.upper()
        # Rounded to cents as text in one vectorized step ("%.2f" rounds as format(v, ".2f")),
        # then one Decimal per value: a ten-year backfill makes millions of them.
        prices = {
            name: np.char.mod("%.2f", path[name][lo:hi]).tolist()
            for name in ("open", "high", "low", "close")
        }
        stamps = calendar.datetimes(path["ts"][lo:hi])
        volumes = path["volume"][lo:hi].tolist()
        out = []
        for i, (open_text, high_text, low_text, close_text) in enumerate(
            zip(prices["open"], prices["high"], prices["low"], prices["close"], strict=True)
        ):
            o, c = Decimal(open_text), Decimal(close_text)
            out.append(
                BarData(
                    symbol=symbol,
                    timeframe="5Min",
                    timestamp=stamps[i],
                    open=o,
                    high=max(Decimal(high_text), o, c),
                    low=min(Decimal(low_text), o, c),
                    close=c,
                    volume=int(volumes[i]),
                )
            )
        return out

    def latest(self, symbols: list[str]) -> dict[str, Quote]:
        bar_start = calendar.last_completed_bar_start(calendar.utcnow())
        quotes = {}
        for symbol in symbols:
            bars = self.fetch_bars(symbol, "5Min", bar_start, bar_start + calendar.BAR)
            if bars:
                quotes[symbol] = Quote(symbol, bars[-1].close, bars[-1].timestamp + calendar.BAR)
        return quotes
