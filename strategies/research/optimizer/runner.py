"""Grids: every combination's metrics, over forked processes that inherit the bars, and the
ranking of the rows."""

from __future__ import annotations

import math
import multiprocessing
import os
import threading
from typing import Any

from strategies.base import Strategy
from strategies.research.grid import Search, objective_key
from strategies.research.optimizer.evaluation import SignalCache, evaluate
from strategies.research.optimizer.market import Canceled, CancelFn, Costs, Market, ProgressFn

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
