"""Walk-forward: train/test windows, the best combination of each train window traded on its
test window, and the out-of-sample curve stitched from the test windows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from strategies.base import Strategy
from strategies.metrics import compute_metrics
from strategies.research.grid import Search
from strategies.research.optimizer.evaluation import Evaluation, evaluate
from strategies.research.optimizer.market import (
    NS_PER_DAY,
    CancelFn,
    Costs,
    Market,
    ProgressFn,
)
from strategies.research.optimizer.runner import evaluate_grid, rank


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
