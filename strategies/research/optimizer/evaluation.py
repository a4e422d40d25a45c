"""One combination evaluated over every symbol, the way `strategy_backtest` evaluates one
backtest: a detailed path (the engine's own backtest, for charts and walk-forward tests) and a
lean one for grid rows (the engine's arithmetic without its per-bar records)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from strategies.base import Strategy
from strategies.engine import BacktestResult, fill_states, fills_compute, run_backtest
from strategies.metrics import DEFAULT_PERIODS_PER_YEAR, SECONDS_PER_YEAR, compute_metrics
from strategies.research.optimizer.market import Costs, Market

GRID_METRICS = (
    "bars",
    "final_equity",
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "trades",
    "win_rate",
    "profit_factor",
    "expectancy",
    "exposure",
)


@dataclass
class Evaluation:
    params: dict[str, Any]
    metrics: dict[str, Any]
    equity: np.ndarray  # portfolio equity on `timestamps`
    timestamps: np.ndarray  # ns
    exposure: np.ndarray  # bool per bar: any sleeve holds a position
    sleeves: dict[str, BacktestResult]


class SignalCache:
    """Per-symbol dicts handed to `signals_cached`, cleared when they outgrow `max_bytes`."""

    def __init__(self, max_bytes: int = 128 * 2**20) -> None:
        self.max_bytes = max_bytes
        self.per_symbol: dict[str, dict[Any, Any]] = {}

    def get(self, symbol: str) -> dict[Any, Any]:
        cache = self.per_symbol.setdefault(symbol, {})
        size = sum(v.nbytes for v in cache.values() if isinstance(v, np.ndarray))
        if size > self.max_bytes:
            cache.clear()
        return cache


def evaluate(
    strategy: Strategy,
    market: Market,
    params: dict[str, Any],
    costs: Costs,
    cache: SignalCache | None = None,
    *,
    detail: bool = False,
    targets: dict[str, np.ndarray] | None = None,
) -> Evaluation:
    """One combination over every symbol, combined as `strategy_backtest` combines sleeves.

    `targets` replaces the strategy's signals per symbol (walk-forward test windows, whose
    signals were computed over a longer history)."""
    cache = cache or SignalCache()
    symbols = [s for s in market.symbols if len(market.frames[s])]
    sleeve_cash = costs.initial_cash / len(market.symbols)
    if not detail:
        return _evaluate_lean(strategy, market, params, costs, cache, symbols, sleeve_cash, targets)
    sleeves: dict[str, BacktestResult] = {}
    for symbol in symbols:
        frame = market.frames[symbol]
        open_, close, ts = market.arrays(symbol)
        if targets is not None:
            target = targets[symbol]
        else:
            target = strategy.signals_cached(frame, params, cache.get(symbol))
        sleeves[symbol] = run_backtest(
            open_,
            close,
            target * costs.allocation,
            initial_cash=sleeve_cash,
            fee_bps=costs.fee_bps,
            fee_per_trade=costs.fee_per_trade,
            slippage_bps=costs.slippage_bps,
            allow_short=bool(strategy.allow_short),
            timestamps=ts if detail else None,
            with_metrics=False,
        )
    if len(symbols) == 1 and len(market.symbols) == 1:
        only = sleeves[symbols[0]]
        equity, ts_all, exposure = only.equity, market.arrays(symbols[0])[2], only.positions != 0
    else:
        equity, ts_all, exposure = _combine(market, symbols, sleeves, sleeve_cash)
    pnls = [sleeves[s].closed_trades["pnl"] for s in symbols]
    all_pnls = np.concatenate(pnls) if pnls else np.empty(0)
    if detail:
        metrics = compute_metrics(equity, ts_all, all_pnls, exposure=exposure)
    else:
        metrics = grid_metrics(equity, ts_all, all_pnls, exposure)
    return Evaluation(dict(params), metrics, equity, ts_all, exposure, sleeves if detail else {})


def lean_sleeve(
    open_: np.ndarray,
    close: np.ndarray,
    target: np.ndarray,
    *,
    initial_cash: float,
    fee_bps: float,
    fee_per_trade: float,
    slippage_bps: float,
    allow_short: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(equity per bar, exposure per bar as bool, closed trades' P&L): `engine.run_backtest`'s
    arithmetic, operation for operation (so the same floats), without the per-bar position
    arrays and trade records a grid row does not need."""
    n = close.shape[0]
    fee = fee_bps / 1e4
    slip = slippage_bps / 1e4
    fixed = float(fee_per_trade)
    if n < 2:
        return np.full(n, float(initial_cash)), np.zeros(n, bool), np.empty(0)
    # held[i] = clipped target[i - 1]; only its changes matter. A bool target (all in or
    # out) needs no clipping and compares in an eighth of the memory.
    if target.dtype == np.bool_:
        tgt = target[:-1]
    else:
        tgt = np.clip(target[:-1], -1.0 if allow_short else 0.0, 1.0)
        nan = np.isnan(tgt)
        if nan.any():
            tgt[nan] = 0.0
    changes = np.flatnonzero(tgt[1:] != tgt[:-1]) + 2
    if tgt[0] != 0.0:  # held[1] differs from the flat bar 0
        changes = np.concatenate(([1], changes))
    change_target = tgt[changes - 1].astype(np.float64)
    f = fills_compute(open_, changes, change_target, n, fee, slip, fixed, initial_cash)
    state_cash, state_qty, state_held = fill_states(f, f.is_entry, initial_cash)
    # Each fill's state repeated over the bars until the next fill: the engine's
    # cash + qty * close.
    run_lengths = np.diff(np.concatenate(([0], changes, [n])))
    equity = np.repeat(state_cash, run_lengths)
    equity += np.repeat(state_qty, run_lengths) * close
    exposure = np.repeat(state_held, run_lengths)
    closed_pnl = (f.cash_after - f.cash_before)[: f.n_trades][f.has_exit[: f.n_trades]]
    return equity, exposure, closed_pnl


def grid_metrics(
    equity: np.ndarray, ts_ns: np.ndarray, pnls: np.ndarray, exposure: np.ndarray
) -> dict[str, Any]:
    """`compute_metrics` in fewer passes over the bars, for grid rows: the same definitions,
    sums in a different order (equal to about 1e-9 relative), no drawdown durations."""
    n = equity.shape[0]
    out: dict[str, Any] = dict.fromkeys(GRID_METRICS)
    out["bars"] = n
    if n == 0:
        return out
    out["final_equity"] = _finite(equity[-1])
    years = (ts_ns[-1] - ts_ns[0]) / 1e9 / SECONDS_PER_YEAR
    if equity[0] > 0:
        growth = equity[-1] / equity[0]
        out["total_return"] = _finite(growth - 1.0)
        if years > 0:
            with np.errstate(over="ignore"):
                out["cagr"] = -1.0 if growth <= 0 else _finite(growth ** (1.0 / years) - 1.0)
    # Equity can only differ from the bar before on a bar that holds a position or follows one;
    # on every other bar the account is cash, its return exactly 0 and its value the previous
    # one. Dropping those bars changes no sum, maximum or minimum below, and skips the flat
    # part of the curve (about half of it for a crossover).
    keep = exposure.copy()
    keep[1:] |= exposure[:-1]
    keep[0] = True
    moving = equity[keep]
    if n >= 3:
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.divide(moving[1:], moving[:-1])
            r -= 1.0
        m = n - 1
        mean = float(r.sum()) / m
        var = max((float(np.einsum("i,i->", r, r)) - m * mean * mean) / (m - 1), 0.0)
        std = math.sqrt(var)
        ann = math.sqrt(DEFAULT_PERIODS_PER_YEAR)
        out["volatility"] = _finite(std * ann)
        if std > 0:
            out["sharpe"] = _finite(mean / std * ann)
        np.minimum(r, 0.0, out=r)
        downside = math.sqrt(float(np.einsum("i,i->", r, r)) / m)
        if downside > 0:
            out["sortino"] = _finite(mean / downside * ann)
    high = np.maximum.accumulate(moving)
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(moving, high, out=high)
    max_dd = max(1.0 - float(np.nanmin(high)), 0.0)
    out["max_drawdown"] = _finite(max_dd)
    if out["cagr"] is not None and max_dd > 0:
        out["calmar"] = _finite(out["cagr"] / max_dd)
    trades = int(pnls.shape[0])
    gross_profit = float(pnls[pnls > 0].sum())
    gross_loss = -float(pnls[pnls < 0].sum())
    out["trades"] = trades
    out["win_rate"] = float(np.count_nonzero(pnls > 0)) / trades if trades else None
    out["profit_factor"] = _finite(gross_profit / gross_loss) if gross_loss > 0 else None
    out["expectancy"] = _finite(pnls.mean()) if trades else None
    out["exposure"] = float(np.count_nonzero(exposure)) / n
    return out


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _evaluate_lean(
    strategy: Strategy,
    market: Market,
    params: dict[str, Any],
    costs: Costs,
    cache: SignalCache,
    symbols: list[str],
    sleeve_cash: float,
    targets: dict[str, np.ndarray] | None,
) -> Evaluation:
    parts: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    pnls = []
    for symbol in symbols:
        open_, close, _ts = market.arrays(symbol)
        if targets is not None:
            target = targets[symbol]
        else:
            target = strategy.signals_cached(market.frames[symbol], params, cache.get(symbol))
        if costs.allocation != 1.0:
            target = target * costs.allocation  # a bool target becomes float here
        equity, exposure, pnl = lean_sleeve(
            open_,
            close,
            target,
            initial_cash=sleeve_cash,
            fee_bps=costs.fee_bps,
            fee_per_trade=costs.fee_per_trade,
            slippage_bps=costs.slippage_bps,
            allow_short=bool(strategy.allow_short),
        )
        parts[symbol] = (equity, exposure)
        pnls.append(pnl)
    if len(symbols) == 1 and len(market.symbols) == 1:
        equity, exposure = parts[symbols[0]]
        ts_all = market.arrays(symbols[0])[2]
    else:
        equity, ts_all, exposure = _combine_arrays(market, symbols, parts, sleeve_cash)
    metrics = grid_metrics(equity, ts_all, np.concatenate(pnls) if pnls else np.empty(0), exposure)
    return Evaluation(dict(params), metrics, equity, ts_all, exposure, {})


def _combine(
    market: Market, symbols: list[str], sleeves: dict[str, BacktestResult], sleeve_cash: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    parts = {s: (sleeves[s].equity, sleeves[s].positions != 0) for s in symbols}
    return _combine_arrays(market, symbols, parts, sleeve_cash)


def _combine_arrays(
    market: Market,
    symbols: list[str],
    parts: dict[str, tuple[np.ndarray, np.ndarray]],
    sleeve_cash: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The account on the union of bar times: each sleeve holds its last value (its starting
    cash before its first bar), the same as the pandas ffill/fillna in strategy_backtest."""
    union, alignment = market.alignment(tuple(symbols))
    equity = np.zeros(union.shape[0])
    exposure = np.zeros(union.shape[0], dtype=bool)
    # Symbols without bars in range still own a sleeve of untouched cash.
    equity += sleeve_cash * (len(market.symbols) - len(symbols))
    for symbol in symbols:
        have, safe = alignment[symbol]
        equity += np.where(have, parts[symbol][0][safe], sleeve_cash)
        exposure |= have & parts[symbol][1][safe]
    return equity, union, exposure
