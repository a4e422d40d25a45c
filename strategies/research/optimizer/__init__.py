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

One module per part: `market` (bars, costs, callbacks), `evaluation` (one combination),
`runner` (grids over forked processes; the fork-inherited state lives there alone), `folds`
(walk-forward).
"""

from strategies.research.optimizer.evaluation import (
    GRID_METRICS,
    Evaluation,
    SignalCache,
    evaluate,
    grid_metrics,
    lean_sleeve,
)
from strategies.research.optimizer.folds import Fold, folds_plan, walk_forward
from strategies.research.optimizer.market import (
    NS_PER_DAY,
    Canceled,
    CancelFn,
    Costs,
    Market,
    ProgressFn,
)
from strategies.research.optimizer.runner import default_workers, evaluate_grid, rank

__all__ = [
    "GRID_METRICS",
    "NS_PER_DAY",
    "CancelFn",
    "Canceled",
    "Costs",
    "Evaluation",
    "Fold",
    "Market",
    "ProgressFn",
    "SignalCache",
    "default_workers",
    "evaluate",
    "evaluate_grid",
    "folds_plan",
    "grid_metrics",
    "lean_sleeve",
    "rank",
    "walk_forward",
]
