"""Backtest engine throughput: SMA(10/30) crossover over 1,000,000 synthetic 5-minute bars.

Run from the repository root:  python bench/backtest.py [--bars N] [--repeat R]

Timed (engine): signals + fills + trade list + per-bar equity + metrics, i.e.
`sma_crossover_signal` followed by `run_backtest(..., timestamps=...)`.
Timed (reference): the simplest numpy computation of the same strategy's equity curve with
next-bar-open fills and no costs: signals, shifted one bar, compounded open-to-open returns,
marked at each close. No trades, no metrics.

Also timed, apart (not part of the target): the same backtest with protective exits declared
(stop-loss 0.3 %, take-profit 0.5 %), which leaves the fast path for the paper broker's
bar-by-bar exit rules (strategies.protective); highs and lows are synthetic (±0.05 % around the
bar's open and close).

Speeds use the *best* of `--repeat` runs (the least disturbed by other processes). Peak memory
is measured in a separate, untimed run under tracemalloc so tracing does not slow the timing.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from strategies.builtin.sma_crossover import sma_crossover_signal  # noqa: E402
from strategies.engine import run_backtest  # noqa: E402
from strategies.protective import Exits  # noqa: E402

FAST, SLOW = 10, 30
INITIAL_CASH = 100_000.0


def synthetic_bars(n: int, seed: int = 42) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(open, close, timestamps) of a seeded geometric random walk on a 5-minute grid."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n)))
    # Each open gaps a little from the previous close, so open-based fills differ from closes.
    prev_close = np.concatenate(([100.0], close[:-1]))
    open_ = prev_close * (1.0 + rng.normal(0.0, 0.0002, n))
    start = np.datetime64("2020-01-01T14:30:00", "ns")
    timestamps = start + np.arange(n, dtype=np.int64) * np.timedelta64(5, "m")
    return open_, close, timestamps


def engine_run(open_: np.ndarray, close: np.ndarray, timestamps: np.ndarray):
    target = sma_crossover_signal(close, FAST, SLOW)
    return run_backtest(open_, close, target, initial_cash=INITIAL_CASH, timestamps=timestamps)


def reference_run(open_: np.ndarray, close: np.ndarray) -> np.ndarray:
    target = sma_crossover_signal(close, FAST, SLOW)
    held = np.concatenate(([0.0], target[:-1]))
    # Equity at each open, then marked to the close with the exposure held during the bar.
    open_growth = 1.0 + held[:-1] * (open_[1:] / open_[:-1] - 1.0)
    equity_at_open = INITIAL_CASH * np.concatenate(([1.0], np.cumprod(open_growth)))
    return equity_at_open * (1.0 + held * (close / open_ - 1.0))


def protective_run(open_: np.ndarray, close: np.ndarray, timestamps: np.ndarray):
    target = sma_crossover_signal(close, FAST, SLOW)
    return run_backtest(
        open_,
        close,
        target,
        initial_cash=INITIAL_CASH,
        timestamps=timestamps,
        high=np.maximum(open_, close) * 1.0005,
        low=np.minimum(open_, close) * 0.9995,
        exits=Exits(stop_loss_pct=0.3, take_profit_pct=0.5),
    )


def run_times(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def peak_mb(fn) -> float:
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()

    open_, close, timestamps = synthetic_bars(args.bars)

    # Untimed warm-up and cross-check: with no costs and 0/1 exposure the engine's equity must
    # equal the reference's, or the speed comparison is between different computations.
    result = engine_run(open_, close, timestamps)
    reference = reference_run(open_, close)
    max_rel_diff = float(np.max(np.abs(result.equity / reference - 1.0)))

    engine_times = run_times(lambda: engine_run(open_, close, timestamps), args.repeat)
    reference_times = run_times(lambda: reference_run(open_, close), args.repeat)
    engine_s, reference_s = min(engine_times), min(reference_times)
    protective_s = min(run_times(lambda: protective_run(open_, close, timestamps), 2))
    engine_peak = peak_mb(lambda: engine_run(open_, close, timestamps))
    reference_peak = peak_mb(lambda: reference_run(open_, close))

    engine_bps = args.bars / engine_s
    reference_bps = args.bars / reference_s
    print(f"bars: {args.bars:,}  trades: {result.trades.shape[0]:,}  timing: best of {args.repeat}")
    print(
        f"engine:    {engine_s * 1e3:8.1f} ms  {engine_bps:14,.0f} bars/s  "
        f"peak {engine_peak:.1f} MB"
    )
    print(
        f"reference: {reference_s * 1e3:8.1f} ms  {reference_bps:14,.0f} bars/s  "
        f"peak {reference_peak:.1f} MB"
    )
    print(f"engine vs reference final equity: max relative difference {max_rel_diff:.2e}")
    print(
        f"with protective exits: {protective_s * 1e3:8.1f} ms  "
        f"{args.bars / protective_s:14,.0f} bars/s (off the fast path)"
    )
    print(
        json.dumps(
            {
                "bars": args.bars,
                "trades": int(result.trades.shape[0]),
                "timing": f"best of {args.repeat}",
                "engine_seconds": engine_s,
                "reference_seconds": reference_s,
                "engine_median_seconds": float(np.median(engine_times)),
                "reference_median_seconds": float(np.median(reference_times)),
                "engine_bars_per_s": engine_bps,
                "reference_bars_per_s": reference_bps,
                "ratio_to_reference": engine_bps / reference_bps,
                "peak_mb": engine_peak,
                "reference_peak_mb": reference_peak,
                "equity_max_rel_diff_vs_reference": max_rel_diff,
                "meets_10m_bars_per_s": engine_bps >= 10_000_000,
                "meets_one_fifth_of_reference": engine_bps >= reference_bps / 5,
                "protective_exits_seconds": protective_s,
                "protective_exits_bars_per_s": args.bars / protective_s,
            }
        )
    )


if __name__ == "__main__":
    main()
