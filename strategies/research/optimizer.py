"""Grid search and walk-forward over a strategy's params (no Django; numpy and pandas).

Every combination is evaluated the way `strategies.services.strategy_backtest` evaluates one
backtest: the strategy's signals (`Strategy.signals_cached`, which must equal
`generate_signals`), one sleeve per symbol of `initial_cash / len(symbols)` holding
`target * allocation`, `engine.run_backtest`'s fills and costs, and the metrics of the summed
sleeves. So a combination's trades and final equity are those of a single backtest of it
(tests/strategies/research/test_optimizer.py holds them equal).

Speed comes from three things: indicator windows are computed once per bars frame and shared
by every combination (the cache each strategy fills in `signals_cached`; bounded in bytes),
combinations go to every core in chunks (forked processes that inherit the bars, so nothing is
copied or pickled but combination indexes and metrics), and the per-bar work of a combination
is the engine's vectorized solve, with metrics computed once per combination.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from strategies.base import Strategy
from strategies.engine import BacktestResult, _solve_affine, run_backtest
from strategies.metrics import DEFAULT_PERIODS_PER_YEAR, SECONDS_PER_YEAR, compute_metrics
from strategies.research.grid import Search, objective_key

ProgressFn = Callable[[int, int], None]  # (done, total)
CancelFn = Callable[[], bool]
NS_PER_DAY = 86_400 * 1_000_000_000


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


class Canceled(Exception):
    """The caller asked to stop; raised between chunks of work."""


@dataclass(frozen=True)
class Costs:
    initial_cash: float = 100_000.0
    fee_bps: float = 0.0
    fee_per_trade: float = 0.0
    slippage_bps: float = 0.0
    allocation: float = 1.0


@dataclass
class Market:
    """The bars of a search: one OHLCV frame per symbol (UTC DatetimeIndex), in symbol order."""

    frames: dict[str, pd.DataFrame]
    # Per-symbol arrays and cross-symbol alignments, computed once per market.
    _arrays: dict[Any, Any] = field(default_factory=dict, repr=False)

    def arrays(self, symbol: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(open, close, timestamps in ns) of one symbol, converted once."""
        if symbol not in self._arrays:
            frame = self.frames[symbol]
            self._arrays[symbol] = (
                frame["open"].to_numpy(dtype=np.float64),
                frame["close"].to_numpy(dtype=np.float64),
                frame.index.as_unit("ns").asi8,
            )
        return self._arrays[symbol]

    @property
    def symbols(self) -> list[str]:
        return list(self.frames)

    def bounds(self) -> tuple[int, int]:
        """First and last bar time over all symbols, in ns."""
        firsts = [self.arrays(s)[2][0] for s in self.frames if len(self.frames[s])]
        lasts = [self.arrays(s)[2][-1] for s in self.frames if len(self.frames[s])]
        return int(min(firsts)), int(max(lasts))

    def alignment(
        self, symbols: tuple[str, ...]
    ) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """The union of the symbols' bar times, and per symbol (has a bar at or before, index of
        its last bar at or before) each union time: computed once, shared by every combination."""
        key = ("alignment", symbols)
        if key not in self._arrays:
            all_ts = [self.arrays(s)[2] for s in symbols]
            union = np.unique(np.concatenate(all_ts)) if all_ts else np.empty(0, np.int64)
            per_symbol = {}
            for symbol, ts in zip(symbols, all_ts, strict=True):
                where = np.searchsorted(ts, union, side="right") - 1
                per_symbol[symbol] = (where >= 0, np.maximum(where, 0))
            self._arrays[key] = (union, per_symbol)  # type: ignore[assignment]
        return self._arrays[key]  # type: ignore[return-value]

    def slice(self, start_ns: int, end_ns: int) -> Market:
        """Bars with start <= time < end (a symbol may end up with none)."""
        out = {}
        for symbol, frame in self.frames.items():
            ts = self.arrays(symbol)[2]
            lo, hi = np.searchsorted(ts, [start_ns, end_ns], side="left")
            out[symbol] = frame.iloc[lo:hi]
        return Market(out)


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
    is_entry = change_target != 0.0
    entry_change = np.flatnonzero(is_entry)
    entry_bar = changes[entry_change]
    t = change_target[entry_change]
    sign = np.sign(t)
    abs_t = np.abs(t)
    has_exit = entry_change + 1 < changes.shape[0]
    closed = np.flatnonzero(has_exit)
    exit_bar = np.full(entry_bar.shape[0], n - 1, dtype=np.int64)
    exit_bar[closed] = changes[entry_change[closed] + 1]
    entry_px = open_[entry_bar] * (1.0 + slip * sign)
    exit_px = open_[exit_bar] * (1.0 - slip * sign)
    ratio = (sign - fee) * exit_px / entry_px - (sign + fee)
    q = abs_t * ratio / (1.0 + fee)
    alpha = 1.0 + q
    beta = -fixed * (2.0 + q)
    cash_before = _solve_affine(alpha, beta, float(initial_cash), has_exit)
    ruined = np.flatnonzero(cash_before <= fixed)
    n_trades = int(ruined[0]) if ruined.shape[0] else entry_bar.shape[0]
    notional = abs_t * (cash_before - fixed) / (1.0 + fee)
    qty = sign * notional / entry_px
    cash_in_trade = cash_before - fixed - notional * (fee + sign)
    cash_after = alpha * cash_before + beta
    kidx = np.cumsum(is_entry) - 1
    state_cash = np.empty(changes.shape[0] + 1, dtype=np.float64)
    state_qty = np.zeros(changes.shape[0] + 1, dtype=np.float64)
    state_held = np.zeros(changes.shape[0] + 1, dtype=bool)
    state_cash[0] = initial_cash
    if changes.shape[0]:
        safe_k = np.maximum(kidx, 0)
        state_cash[1:] = np.where(is_entry, cash_in_trade[safe_k], cash_after[safe_k])
        state_qty[1:][entry_change] = qty
        state_held[1:] = is_entry
        if n_trades < entry_bar.shape[0]:
            cut = entry_change[n_trades] + 1
            state_cash[cut:] = cash_before[n_trades]
            state_qty[cut:] = 0.0
            state_held[cut:] = False
    # Each fill's state repeated over the bars until the next fill: the engine's
    # cash + qty * close.
    run_lengths = np.diff(np.concatenate(([0], changes, [n])))
    equity = np.repeat(state_cash, run_lengths)
    equity += np.repeat(state_qty, run_lengths) * close
    exposure = np.repeat(state_held, run_lengths)
    closed_pnl = (cash_after - cash_before)[:n_trades][has_exit[:n_trades]]
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


# --- grids -------------------------------------------------------------------------------------

# What forked workers inherit: set just before the pool starts, never pickled. One grid at a
# time per process (the lock), since the state is module-wide.
_STATE: dict[str, Any] = {}
_GRID_LOCK = threading.Lock()


def _evaluate_chunk(indices: list[int]) -> list[tuple[int, dict[str, Any]]]:
    strategy, market, combos, costs, cache = (
        _STATE["strategy"],
        _STATE["market"],
        _STATE["combos"],
        _STATE["costs"],
        _STATE["cache"],
    )
    return [(i, evaluate(strategy, market, combos[i], costs, cache).metrics) for i in indices]


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)


def evaluate_grid(
    strategy_cls: type[Strategy],
    market: Market,
    combos: list[dict[str, Any]],
    costs: Costs,
    *,
    workers: int = 1,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
    cache_bytes: int = 128 * 2**20,
) -> list[dict[str, Any]]:
    """Metrics of every combination, in `combos` order.

    With `workers > 1` the combinations are spread over forked processes in chunks; each
    process keeps its own indicator cache for the whole grid. `should_cancel` is checked after
    every chunk; a True answer stops the workers and raises `Canceled`.
    """
    with _GRID_LOCK:
        return _evaluate_grid(
            strategy_cls, market, combos, costs, workers, progress, should_cancel, cache_bytes
        )


def _evaluate_grid(
    strategy_cls: type[Strategy],
    market: Market,
    combos: list[dict[str, Any]],
    costs: Costs,
    workers: int,
    progress: ProgressFn | None,
    should_cancel: CancelFn | None,
    cache_bytes: int,
) -> list[dict[str, Any]]:
    total = len(combos)
    results: list[dict[str, Any] | None] = [None] * total
    workers = max(1, min(int(workers), total))
    # Enough chunks to balance the cores and report progress, few enough to keep overhead low.
    size = max(1, min(32, math.ceil(total / (workers * 6))))
    chunks = [list(range(i, min(i + size, total))) for i in range(0, total, size)]
    _STATE.update(
        strategy=strategy_cls(),
        market=market,
        combos=combos,
        costs=costs,
        cache=SignalCache(cache_bytes),
    )
    done = 0
    try:
        if workers == 1 or "fork" not in multiprocessing.get_all_start_methods():
            for chunk in chunks:
                for i, metrics in _evaluate_chunk(chunk):
                    results[i] = metrics
                done += len(chunk)
                if progress:
                    progress(done, total)
                if should_cancel and should_cancel():
                    raise Canceled
        else:
            # fork: the workers inherit the bars and the strategy instead of unpickling them.
            pool = multiprocessing.get_context("fork").Pool(workers, initializer=_lower_priority)
            try:
                for part in pool.imap_unordered(_evaluate_chunk, chunks):
                    for i, metrics in part:
                        results[i] = metrics
                    done += len(part)
                    if progress:
                        progress(done, total)
                    if should_cancel and should_cancel():
                        raise Canceled
                pool.close()
            finally:
                pool.terminate()
                pool.join()
    finally:
        _STATE.clear()
    return [r for r in results if r is not None]


def _lower_priority() -> None:
    """Grid workers run at nice 10 at least, also when forked from a worker that serves trading
    tasks beside research (`make run`), so a grid never slows an order."""
    current = os.nice(0)
    if current < 10:
        os.nice(10 - current)


def rank(search: Search, rows: list[dict[str, Any]]) -> list[int]:
    """Indexes of the eligible combinations (enough trades), best first."""
    eligible = [i for i, m in enumerate(rows) if (m.get("trades") or 0) >= search.min_trades]
    return sorted(eligible, key=lambda i: objective_key(search.objective, rows[i]), reverse=True)


# --- walk-forward -------------------------------------------------------------------------------


@dataclass
class Fold:
    index: int
    train_start: int
    train_end: int  # exclusive; the test window starts here
    test_end: int  # exclusive
    best_params: dict[str, Any] | None = None
    train_metrics: dict[str, Any] | None = None
    test_metrics: dict[str, Any] | None = None


def folds_plan(
    start_ns: int, end_ns: int, *, train_days: int, test_days: int, anchored: bool
) -> list[Fold]:
    """Train/test windows: each test window follows its train window; rolling windows move by
    one test window, anchored ones keep their start and grow."""
    train, test = train_days * NS_PER_DAY, test_days * NS_PER_DAY
    folds: list[Fold] = []
    train_start, train_end = start_ns, start_ns + train
    while train_end <= end_ns:
        folds.append(Fold(len(folds), train_start, train_end, train_end + test))
        train_end += test
        if not anchored:
            train_start += test
    return folds


def walk_forward(
    strategy_cls: type[Strategy],
    market: Market,
    search: Search,
    costs: Costs,
    *,
    train_days: int,
    test_days: int,
    anchored: bool = False,
    workers: int = 1,
    progress: ProgressFn | None = None,
    should_cancel: CancelFn | None = None,
) -> dict[str, Any]:
    """Choose the best combination on each train window using only its bars, trade it on the
    following test window, and stitch the test windows' equity into one out-of-sample curve.

    Each test window starts flat with the account's equity so far, split evenly over the
    symbols; its signals may use bars before the window (indicator warm-up), never after.
    """
    start, last = market.bounds()
    folds = folds_plan(
        start, last + 1, train_days=train_days, test_days=test_days, anchored=anchored
    )
    if not folds:
        return {"folds": [], "oos_equity": [], "oos_metrics": None}
    strategy = strategy_cls()
    total = len(folds) * len(search.combos)
    equity_now = costs.initial_cash
    oos_ts: list[np.ndarray] = []
    oos_eq: list[np.ndarray] = []
    oos_exposure: list[np.ndarray] = []
    oos_pnls: list[np.ndarray] = []
    for fold in folds:
        base = fold.index * len(search.combos)
        train = market.slice(fold.train_start, fold.train_end)
        if any(len(f) for f in train.frames.values()):
            rows = evaluate_grid(
                strategy_cls,
                train,
                search.combos,
                costs,
                workers=workers,
                progress=(lambda d, _t, b=base: progress(b + d, total)) if progress else None,
                should_cancel=should_cancel,
            )
            ranked = rank(search, rows)
            if ranked:
                fold.best_params = search.combos[ranked[0]]
                fold.train_metrics = rows[ranked[0]]
        elif progress:
            progress(base + len(search.combos), total)
        if fold.best_params is None:
            continue  # nothing to trade on: the account stays in cash over this window
        history = market.slice(fold.train_start, fold.test_end)
        test = _test_window(strategy, history, fold, costs, equity_now)
        if test is None:
            continue
        fold.test_metrics = test.metrics
        equity_now = float(test.equity[-1])
        oos_ts.append(test.timestamps)
        oos_eq.append(test.equity)
        oos_exposure.append(test.exposure)
        oos_pnls.extend(s.closed_trades["pnl"] for s in test.sleeves.values())
    oos_metrics = None
    equity = np.concatenate(oos_eq) if oos_eq else np.empty(0)
    ts = np.concatenate(oos_ts) if oos_ts else np.empty(0, np.int64)
    if equity.shape[0]:
        oos_metrics = compute_metrics(
            equity,
            ts,
            np.concatenate(oos_pnls) if oos_pnls else np.empty(0),
            exposure=np.concatenate(oos_exposure),
        )
    return {"folds": folds, "oos_equity": (ts, equity), "oos_metrics": oos_metrics}


def _test_window(
    strategy: Strategy, history: Market, fold: Fold, costs: Costs, equity_now: float
) -> Evaluation | None:
    """The chosen params traded over the test window; signals computed on `history` (the
    train window and the test window, nothing later), fills only inside the test window."""
    test_frames: dict[str, pd.DataFrame] = {}
    targets: dict[str, np.ndarray] = {}
    for symbol, frame in history.frames.items():
        ts = history.arrays(symbol)[2]
        cut = int(np.searchsorted(ts, fold.train_end, side="left"))
        if cut >= len(frame):
            test_frames[symbol] = frame.iloc[0:0]
            continue
        signal = np.asarray(strategy.generate_signals(frame, fold.best_params), dtype=np.float64)
        test_frames[symbol] = frame.iloc[cut:]
        targets[symbol] = signal[cut:]
    if not targets:
        return None
    return evaluate(
        strategy,
        Market(test_frames),
        fold.best_params or {},
        Costs(
            initial_cash=equity_now,
            fee_bps=costs.fee_bps,
            fee_per_trade=costs.fee_per_trade,
            slippage_bps=costs.slippage_bps,
            allocation=costs.allocation,
        ),
        detail=True,
        targets=targets,
    )
