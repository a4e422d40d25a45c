"""Grid-search benchmark: the optimiser against a plain numpy loop, in the same run.

Run from the repository root:  python bench/optimize.py [--bars 200000] [--workers N]

Work: SMA crossover, fast 5..50 step 5, slow 20..200 step 10, fast < slow (174 combinations),
over the first 200,000 bars of the synthetic provider's SPY path (seeded 5-minute bars in NYSE
hours), no costs, all cash in (allocation 1). The provider draws its path for every session up
to today at once, so the bars (and the best combination) change from one day to the next.

1. Optimiser: `strategies.research.optimizer.evaluate_grid` (shared indicator windows, every
   core, the engine's fills, full metrics per combination), the grid built and checked by
   `strategies.research.grid.search_build`, as research runs do.
2. Reference: for each combination, the simplest single-combination computation in numpy:
   both moving averages from scratch by cumulative sums, the crossover signal, the position
   filled at the next bar's open, and the equity as the running product of per-bar growth
   (open to close on an entry bar, close to close while held, close to open on an exit bar).
   It yields the final equity and the number of closed trades.

Both must agree per combination: closed trades exactly, final equity to the cent
(`mismatches` counts combinations that do not). Rates are combo-bars per second (combinations
times bars over the wall time, best of `--rounds`). `peak_mb` is the largest resident set of
the benchmark process or any worker process it forked (`ru_maxrss`). The last line printed is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from strategies.builtin.sma_crossover import SmaCrossover  # noqa: E402
from strategies.research import optimizer  # noqa: E402
from strategies.research.grid import search_build  # noqa: E402

GRID = {
    "fast": {"start": 5, "stop": 50, "step": 5},
    "slow": {"start": 20, "stop": 200, "step": 10},
}
CASH = 100_000.0


# Every bar the synthetic provider has: from its first session to far in the future.
ALL_BARS_END_NS = np.iinfo(np.int64).max


def synthetic_bars(count: int) -> pd.DataFrame:
    from marketdata.providers.synthetic import bars_between

    path = bars_between("SPY", 42, 0, ALL_BARS_END_NS)
    if path["ts"].shape[0] < count:
        raise SystemExit(f"the synthetic path has only {path['ts'].shape[0]} bars")
    index = pd.DatetimeIndex(path["ts"][:count].astype("datetime64[ns]"), tz="UTC")
    return pd.DataFrame(
        {name: path[name][:count].astype(np.float64) for name in ("open", "high", "low", "close")}
        | {"volume": path["volume"][:count].astype(np.float64)},
        index=index,
    )


def reference(open_: np.ndarray, close: np.ndarray, fast: int, slow: int) -> tuple[float, int]:
    n = close.shape[0]
    csum = np.cumsum(np.concatenate(([0.0], close)))
    fast_ma = np.full(n, np.nan)
    fast_ma[fast - 1 :] = (csum[fast:] - csum[:-fast]) / fast
    slow_ma = np.full(n, np.nan)
    slow_ma[slow - 1 :] = (csum[slow:] - csum[:-slow]) / slow
    signal = fast_ma > slow_ma
    held = np.zeros(n, dtype=bool)
    held[1:] = signal[:-1]
    before = np.zeros(n, dtype=bool)
    before[1:] = held[:-1]
    growth = np.ones(n)
    prev_close = np.empty(n)
    prev_close[0] = close[0]
    prev_close[1:] = close[:-1]
    stay = held & before
    enter = held & ~before
    leave = ~held & before
    growth[stay] = close[stay] / prev_close[stay]
    growth[enter] = close[enter] / open_[enter]
    growth[leave] = open_[leave] / prev_close[leave]
    equity = CASH * np.cumprod(growth)
    return float(equity[-1]), int(np.count_nonzero(leave))


def peak_mb() -> float:
    self_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(self_kb, children_kb) / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=optimizer.default_workers())
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    bars = synthetic_bars(args.bars)
    search = search_build(SmaCrossover, base_params={}, grid=GRID, constraints=["fast < slow"])
    combos = search.combos
    market = optimizer.Market({"SPY": bars})
    costs = optimizer.Costs(initial_cash=CASH)
    open_, close, _ts = market.arrays("SPY")
    work = len(combos) * len(bars)

    opt_times, ref_times = [], []
    rows: list[dict] = []
    ref: list[tuple[float, int]] = []
    for _ in range(args.rounds):  # alternate, so machine noise hits both alike
        t0 = time.perf_counter()
        rows = optimizer.evaluate_grid(SmaCrossover, market, combos, costs, workers=args.workers)
        opt_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ref = [reference(open_, close, c["fast"], c["slow"]) for c in combos]
        ref_times.append(time.perf_counter() - t0)

    mismatches = 0
    for row, (ref_equity, ref_trades) in zip(rows, ref, strict=True):
        if (
            row["trades"] != ref_trades
            or abs(round(row["final_equity"], 2) - round(ref_equity, 2)) > 0.01
        ):
            mismatches += 1
    best = optimizer.rank(search, rows)[0]
    opt, refer = min(opt_times), min(ref_times)
    result = {
        "combos": len(combos),
        "bars": len(bars),
        "workers": args.workers,
        "optimizer_seconds": round(opt, 4),
        "reference_seconds": round(refer, 4),
        "combo_bars_per_s": round(work / opt),
        "reference_combo_bars_per_s": round(work / refer),
        "ratio": round(refer / opt, 3),
        "peak_mb": round(peak_mb(), 1),
        "mismatches": mismatches,
        "best": {"params": combos[best], "sharpe": rows[best]["sharpe"]},
    }
    print(
        f"optimiser {opt:.3f} s ({work / opt / 1e6:.1f} M combo-bars/s), "
        f"reference {refer:.3f} s ({work / refer / 1e6:.1f} M), {mismatches} mismatches"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
