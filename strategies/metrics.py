"""Performance metrics shared by backtests, live sessions and the `/performance` API (DESIGN.md §7).

Pure numpy: no Django and no pandas in the hot path, so a backtest over a million bars and a
service holding a few hundred equity snapshots compute exactly the same numbers.

Conventions (every function here follows them):

* `equity` is the account value sampled once per bar (or per snapshot), oldest first.
  Period returns are simple returns ``r[i] = equity[i] / equity[i-1] - 1``.
* The risk-free rate is 0. Standard deviations are sample standard deviations (``ddof=1``).
* Annualisation multiplies by ``periods_per_year`` (mean) or its square root (dispersion).
  The default ``252 * 78`` is regular-session 5-minute bars: 78 bars a day, 252 days a year.
* Sortino uses the downside deviation ``sqrt(mean(min(r, 0) ** 2))`` over *all* returns.
* `max_drawdown` is a positive fraction (0.25 means the curve fell 25% below its high).
* Results must survive ``json.dumps``: an undefined or infinite value is ``None``, never
  ``nan``/``inf``. Each key's docstring entry says when that happens.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_PERIODS_PER_YEAR = 252 * 78
SECONDS_PER_YEAR = 365.25 * 24 * 3600.0

MetricValue = float | int | None


def timestamps_to_ns(timestamps: Any) -> np.ndarray | None:
    """UTC nanoseconds since the epoch as int64, or None.

    Accepts a DatetimeIndex (tz-aware or naive UTC), a datetime64 array of any unit, or an
    int64 array already in nanoseconds. pandas 3 infers non-nanosecond units, so convert
    explicitly instead of trusting `.asi8`.
    """
    if timestamps is None:
        return None
    if isinstance(timestamps, pd.Series):
        timestamps = pd.DatetimeIndex(timestamps)
    if isinstance(timestamps, pd.DatetimeIndex):
        return timestamps.as_unit("ns").asi8
    arr = np.asarray(timestamps)
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[ns]").view(np.int64)
    if arr.dtype.kind in "iu":
        return arr.astype(np.int64, copy=False)
    # A list of datetime objects or strings: let pandas parse it once.
    return pd.DatetimeIndex(arr).as_unit("ns").asi8


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def drawdown_stats(
    equity: np.ndarray, timestamps_ns: np.ndarray | None = None
) -> tuple[float, int, float | None]:
    """(max drawdown fraction, longest underwater stretch in bars, same in seconds).

    A bar is underwater when its equity is strictly below the running high. The duration of a
    stretch counts from the high bar to the last underwater bar before the curve regains that
    high (or to the end of the data if it never does): one underwater bar is a duration of 1.
    Bars and seconds are each the longest stretch in their own unit, so with uneven spacing
    (nights, weekends) they may describe different stretches.
    """
    n = equity.shape[0]
    if n == 0:
        return 0.0, 0, (0.0 if timestamps_ns is not None else None)
    running_max = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        depth = 1.0 - equity / running_max
    max_dd = float(np.nanmax(depth))
    # Work on the (usually few) high-water bars instead of per-bar arrays: the stretch after
    # peak p ends just before the next peak.
    peaks = np.flatnonzero(equity >= running_max)
    last_underwater = np.empty_like(peaks)
    last_underwater[:-1] = peaks[1:] - 1
    last_underwater[-1] = n - 1
    dd_bars = int(np.max(last_underwater - peaks))
    dd_seconds: float | None = None
    if timestamps_ns is not None:
        dd_seconds = float(np.max(timestamps_ns[last_underwater] - timestamps_ns[peaks])) / 1e9
    return max(max_dd, 0.0), dd_bars, dd_seconds


def compute_metrics(
    equity: np.ndarray,
    timestamps: np.ndarray | pd.DatetimeIndex | None,
    trade_pnls: np.ndarray,
    exposure: np.ndarray | None = None,
    periods_per_year: float = DEFAULT_PERIODS_PER_YEAR,
) -> dict[str, MetricValue]:
    """Every metric of DESIGN.md §7 as a JSON-safe dict.

    Arguments:
        equity: account value per bar/snapshot, oldest first (float64, positive).
        timestamps: one per equity value (DatetimeIndex, datetime64 or int64 ns), or None.
            With timestamps, CAGR uses the elapsed calendar time between the first and last
            value; without, it uses ``(len(equity) - 1) / periods_per_year`` years.
        trade_pnls: realised P&L of each *closed* trade, in account currency.
        exposure: position (any unit; only its sign matters) per bar, or None if unknown.
        periods_per_year: equity samples per year, for annualising volatility/Sharpe/Sortino.

    Keys and their None cases:
        bars: number of equity values.
        final_equity: last equity value (None if empty).
        total_return: ``equity[-1] / equity[0] - 1`` (None if fewer than 1 value or equity[0] <= 0).
        cagr: ``(equity[-1] / equity[0]) ** (1 / years) - 1``; -1.0 if the account was wiped
            out; None if no time elapsed.
        volatility: ``std(r, ddof=1) * sqrt(periods_per_year)`` (None with fewer than 2 returns).
        sharpe: ``mean(r) / std(r, ddof=1) * sqrt(periods_per_year)`` (None if std is 0).
        sortino: ``mean(r) / sqrt(mean(min(r, 0)**2)) * sqrt(periods_per_year)``
            (None if no return is negative).
        max_drawdown: largest ``1 - equity / running_high`` (0.0 for a curve that never falls).
        max_drawdown_duration_bars / max_drawdown_duration_seconds: see `drawdown_stats`
            (seconds is None without timestamps).
        calmar: ``cagr / max_drawdown`` (None if either is None or max_drawdown is 0).
        trades: number of closed trades.
        win_rate: share of trades with pnl > 0 (a pnl of exactly 0 counts as not winning);
            None with no trades.
        profit_factor: gross profit / gross loss (None with no losing trade, since it would be
            infinite or undefined).
        expectancy: mean pnl per trade in account currency (None with no trades).
        exposure: share of bars with a non-zero position (None if `exposure` is None).
    """
    equity = np.asarray(equity, dtype=np.float64)
    pnls = np.asarray(trade_pnls, dtype=np.float64).reshape(-1)
    ts_ns = timestamps_to_ns(timestamps)
    if ts_ns is not None and ts_ns.shape[0] != equity.shape[0]:
        raise ValueError(f"timestamps has {ts_ns.shape[0]} values but equity has {equity.shape[0]}")
    n = int(equity.shape[0])
    out: dict[str, MetricValue] = {
        "bars": n,
        "final_equity": _finite(equity[-1]) if n else None,
        "total_return": None,
        "cagr": None,
        "volatility": None,
        "sharpe": None,
        "sortino": None,
        "max_drawdown": None,
        "max_drawdown_duration_bars": None,
        "max_drawdown_duration_seconds": None,
        "calmar": None,
    }

    if n >= 1 and equity[0] > 0:
        growth = equity[-1] / equity[0]
        out["total_return"] = _finite(growth - 1.0)
        if ts_ns is not None:
            years = (ts_ns[-1] - ts_ns[0]) / 1e9 / SECONDS_PER_YEAR
        else:
            years = (n - 1) / periods_per_year
        if years > 0:
            # A short span annualises to astronomically large numbers; overflow means None.
            with np.errstate(over="ignore"):
                out["cagr"] = -1.0 if growth <= 0 else _finite(growth ** (1.0 / years) - 1.0)

    if n >= 3:
        with np.errstate(divide="ignore", invalid="ignore"):
            returns = equity[1:] / equity[:-1] - 1.0
        mean = float(np.mean(returns))
        std = float(np.std(returns, ddof=1))
        ann = math.sqrt(periods_per_year)
        out["volatility"] = _finite(std * ann)
        if std > 0:
            out["sharpe"] = _finite(mean / std * ann)
        downside = np.minimum(returns, 0.0)
        downside_dev = math.sqrt(float(np.dot(downside, downside)) / returns.shape[0])
        if downside_dev > 0:
            out["sortino"] = _finite(mean / downside_dev * ann)

    if n >= 1:
        max_dd, dd_bars, dd_seconds = drawdown_stats(equity, ts_ns)
        out["max_drawdown"] = _finite(max_dd)
        out["max_drawdown_duration_bars"] = dd_bars
        out["max_drawdown_duration_seconds"] = dd_seconds
        if out["cagr"] is not None and max_dd > 0:
            out["calmar"] = _finite(out["cagr"] / max_dd)

    n_trades = int(pnls.shape[0])
    gross_profit = float(pnls[pnls > 0].sum())
    gross_loss = -float(pnls[pnls < 0].sum())
    out["trades"] = n_trades
    out["win_rate"] = float(np.count_nonzero(pnls > 0)) / n_trades if n_trades else None
    out["profit_factor"] = _finite(gross_profit / gross_loss) if gross_loss > 0 else None
    out["expectancy"] = _finite(pnls.mean()) if n_trades else None
    if exposure is None:
        out["exposure"] = None
    else:
        exp_arr = np.asarray(exposure)
        out["exposure"] = (
            float(np.count_nonzero(exp_arr)) / exp_arr.shape[0] if exp_arr.shape[0] else None
        )
    return out
