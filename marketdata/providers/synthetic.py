"""Seeded, deterministic 5-minute bars in NYSE market hours: the offline default provider.

Each symbol has one log-price path over every session from 2016 on, drawn a year at a time from
seeds made of SYNTHETIC_SEED, the symbol and the year, so any bar is the same whenever and however
often it is asked for. Volatility and volume follow the intraday U shape (busy open and close,
quiet midday); sessions gap overnight; early-close days end early; weekends and holidays have no
bars.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from decimal import Decimal
from functools import cache, lru_cache

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
def _sessions_by_year() -> dict[int, slice]:
    """Which sessions of the calendar's schedule fall in each year."""
    sessions, _, _ = calendar._schedule_ns()
    years = sessions.astype("datetime64[Y]").astype(int) + 1970
    bounds = np.flatnonzero(np.diff(years)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(years)]])
    return {int(years[a]): slice(int(a), int(b)) for a, b in zip(starts, ends, strict=True)}


def _generate_year(symbol: str, seed: int, year: int, level0: float) -> tuple[dict, float]:
    """One year of bars for one symbol, starting from log-level `level0`; (arrays, end level).

    A year at a time, each from its own seed, so that a process holds one year's arrays (about
    1 MB a symbol) rather than a decade's (issue 20: the whole path cost the worker ~90 MB)."""
    _, all_opens, all_closes = calendar._schedule_ns()
    window = _sessions_by_year()[year]
    opens, closes = all_opens[window], all_closes[window]
    base, daily_vol, base_volume = _profile(symbol)
    rng = np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(symbol.encode()), year]))
    n_days = len(opens)
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
    acc = level0
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
    arrays = {
        "ts": starts[mask],
        "open": open_px[mask],
        "high": high_px[mask],
        "low": low_px[mask],
        "close": close_px[mask],
        "volume": volume[mask],
    }
    return arrays, acc


@cache
def _start_levels(symbol: str, seed: int) -> dict[int, float]:
    """The path's log-level at the start of each year: one pass over the years, keeping only
    these numbers (the arrays of each year are dropped as soon as its end level is known)."""
    levels, acc = {}, 0.0
    for year in sorted(_sessions_by_year()):
        levels[year] = acc
        _, acc = _generate_year(symbol, seed, year, acc)
    return levels


# A decade-long backtest of four symbols touches 44 years' arrays once each; the demo's
# collection only the current year's. Eight keeps recent years at hand without holding a decade.
@lru_cache(maxsize=8)
def _year(symbol: str, seed: int, year: int) -> dict[str, np.ndarray]:
    arrays, _ = _generate_year(symbol, seed, year, _start_levels(symbol, seed)[year])
    return arrays


def bars_between(symbol: str, seed: int, start_ns: int, end_ns: int) -> dict[str, np.ndarray]:
    """The bars with start_ns <= ts < end_ns, as arrays (ts in ns UTC, unrounded prices): what
    fetch_bars returns, before rounding, for benchmarks and tests that need many bars fast."""
    parts = []
    for year in sorted(_sessions_by_year()):
        year_start = np.datetime64(f"{year}-01-01", "ns").astype(np.int64)
        year_end = np.datetime64(f"{year + 1}-01-01", "ns").astype(np.int64)
        if year_end <= start_ns or year_start >= end_ns:
            continue
        arrays = _year(symbol, seed, year)
        lo = np.searchsorted(arrays["ts"], start_ns, side="left")
        hi = np.searchsorted(arrays["ts"], end_ns, side="left")
        parts.append({name: values[lo:hi] for name, values in arrays.items()})
    if len(parts) == 1:
        return parts[0]
    names = ("ts", "open", "high", "low", "close", "volume")
    if not parts:
        return {
            name: np.empty(0, dtype=np.int64 if name in ("ts", "volume") else float)
            for name in names
        }
    return {name: np.concatenate([part[name] for part in parts]) for name in names}


class SyntheticProvider(BaseProvider):
    name = "synthetic"
    # Ticks inside the bar the collector stores next (the demo's prices move between bars).
    stream_source = "realtime.sources.synthetic_ticks.SyntheticTickSource"

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
        symbol = symbol.upper()
        path = bars_between(symbol, self.seed, calendar._ns(start), calendar._ns(end))
        # Rounded to cents as text in one vectorized step ("%.2f" rounds as format(v, ".2f")),
        # then one Decimal per value: a ten-year backfill makes millions of them.
        prices = {
            name: np.char.mod("%.2f", path[name]).tolist()
            for name in ("open", "high", "low", "close")
        }
        stamps = calendar.datetimes(path["ts"])
        volumes = path["volume"].tolist()
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
