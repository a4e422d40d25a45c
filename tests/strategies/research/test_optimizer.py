"""The optimiser: every grid row equals a single backtest of it; walk-forward never looks
ahead; bad grids are refused naming the parameter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from marketdata.providers.synthetic import bars_between
from strategies.builtin.momentum import Momentum
from strategies.builtin.rsi_mean_reversion import RsiMeanReversion
from strategies.builtin.sma_crossover import SmaCrossover
from strategies.engine import run_backtest
from strategies.exceptions import InvalidStrategyConfig
from strategies.metrics import compute_metrics
from strategies.research import optimizer
from strategies.research.grid import search_build

# Every bar the synthetic provider has: from its first session to far in the future.
ALL_BARS_END_NS = np.iinfo(np.int64).max


def frame(symbol: str, count: int, skip: int = 0) -> pd.DataFrame:
    path = bars_between(symbol, 7, 0, ALL_BARS_END_NS)
    sl = slice(skip, skip + count)
    index = pd.DatetimeIndex(path["ts"][sl].astype("datetime64[ns]"), tz="UTC")
    cols = {k: path[k][sl].astype(np.float64) for k in ("open", "high", "low", "close")}
    return pd.DataFrame(cols | {"volume": path["volume"][sl].astype(np.float64)}, index=index)


def single_backtest(cls, frames: dict[str, pd.DataFrame], params, costs: optimizer.Costs):
    """What strategies.services.strategy_backtest computes for one combination (its sleeves and
    pandas combination, written out here independently of the optimiser)."""
    sleeve_cash = costs.initial_cash / len(frames)
    sleeves, positions, pnls = {}, {}, []
    for symbol, bars in frames.items():
        target = np.asarray(cls().generate_signals(bars, params), dtype=np.float64)
        result = run_backtest(
            bars["open"].to_numpy(),
            bars["close"].to_numpy(),
            target * costs.allocation,
            initial_cash=sleeve_cash,
            fee_bps=costs.fee_bps,
            fee_per_trade=costs.fee_per_trade,
            slippage_bps=costs.slippage_bps,
            allow_short=cls.allow_short,
            timestamps=bars.index,
        )
        sleeves[symbol] = pd.Series(result.equity, index=bars.index)
        positions[symbol] = pd.Series(result.positions, index=bars.index)
        pnls.append(result.closed_trades["pnl"])
    equity_frame = pd.DataFrame(sleeves).sort_index().ffill().fillna(sleeve_cash)
    exposure = pd.DataFrame(positions).reindex(equity_frame.index).ffill().fillna(0.0)
    equity = equity_frame.sum(axis=1)
    return compute_metrics(
        equity.to_numpy(),
        equity.index,
        np.concatenate(pnls),
        (exposure != 0).any(axis=1).to_numpy(),
    )


CASES = [
    (
        SmaCrossover,
        {"fast": [3, 5, 8], "slow": {"start": 10, "stop": 40, "step": 10}},
        ["fast < slow"],
        optimizer.Costs(initial_cash=50_000, fee_bps=1.0, slippage_bps=2.0, fee_per_trade=1.0),
    ),
    (
        RsiMeanReversion,
        {"period": [7, 14], "oversold": [25.0, 30.0]},
        [],
        optimizer.Costs(allocation=0.5, fee_bps=0.5),
    ),
    (
        Momentum,
        {"lookback": [10, 30], "short": [True, False]},
        [],
        optimizer.Costs(fee_per_trade=0.5, slippage_bps=1.0),
    ),
]


@pytest.mark.parametrize(("cls", "grid", "constraints", "costs"), CASES)
@pytest.mark.parametrize("symbols", [["SPY"], ["SPY", "QQQ"]])
def test_every_grid_row_equals_a_single_backtest_of_it(cls, grid, constraints, costs, symbols):
    # QQQ starts later than SPY, so the union of bar times has bars only one sleeve holds.
    frames = {s: frame(s, 3000, skip=200 * i) for i, s in enumerate(symbols)}
    search = search_build(cls, base_params={}, grid=grid, constraints=constraints)
    rows = optimizer.evaluate_grid(cls, optimizer.Market(frames), search.combos, costs)
    assert len(rows) == len(search.combos) >= 4
    traded = 0
    for combo, row in zip(search.combos, rows, strict=True):
        single = single_backtest(cls, frames, combo, costs)
        assert row["trades"] == single["trades"], combo
        assert round(row["final_equity"], 2) == round(single["final_equity"], 2), combo
        for key in (
            "total_return",
            "sharpe",
            "sortino",
            "max_drawdown",
            "profit_factor",
            "exposure",
        ):
            assert row[key] == pytest.approx(single[key], rel=1e-9, abs=1e-12, nan_ok=True), key
        traded += row["trades"] > 0
    assert traded  # the comparison covered real trades


def test_forked_workers_give_the_same_rows_as_one_process():
    frames = {"SPY": frame("SPY", 5000)}
    search = search_build(
        SmaCrossover,
        base_params={},
        grid={"fast": {"start": 2, "stop": 20, "step": 3}, "slow": [25, 50, 90]},
    )
    market = optimizer.Market(frames)
    costs = optimizer.Costs(fee_bps=1.0)
    one = optimizer.evaluate_grid(SmaCrossover, market, search.combos, costs, workers=1)
    seen = []
    two = optimizer.evaluate_grid(
        SmaCrossover, market, search.combos, costs, workers=2, progress=lambda d, t: seen.append(d)
    )
    assert one == two
    assert seen[-1] == len(search.combos) and seen == sorted(seen)


def test_cancel_stops_between_chunks():
    frames = {"SPY": frame("SPY", 3000)}
    search = search_build(
        SmaCrossover, base_params={}, grid={"fast": list(range(1, 60)), "slow": [80]}
    )
    done = []
    with pytest.raises(optimizer.Canceled):
        optimizer.evaluate_grid(
            SmaCrossover,
            optimizer.Market(frames),
            search.combos,
            optimizer.Costs(),
            progress=lambda d, t: done.append(d),
            should_cancel=lambda: bool(done),
        )
    assert done and done[-1] < len(search.combos)


@pytest.mark.parametrize(
    ("grid", "constraints", "field"),
    [
        ({"fast": {"start": 5, "stop": 1, "step": 1}}, [], "grid.fast"),
        ({"fast": {"start": 5, "stop": 10, "step": 0}}, [], "grid.fast"),
        ({"fast": {"start": 5, "stop": 10}}, [], "grid.fast"),
        ({"fast": {"start": 0, "stop": 10, "step": 5}}, [], "grid.fast"),
        ({"fast": [1.5]}, [], "grid.fast"),
        ({"slow": "10..20"}, [], "grid.slow"),
        ({"nope": [1]}, [], "grid.nope"),
        ({"fast": [5]}, ["fast < nope"], "constraints[0]"),
        ({"fast": [5]}, ["fast <> slow"], "constraints[0]"),
        ({"fast": [40, 50]}, ["fast < slow"], "constraints"),
        ({}, [], "grid"),
    ],
)
def test_bad_grids_and_constraints_name_the_field(grid, constraints, field):
    with pytest.raises(InvalidStrategyConfig) as exc:
        search_build(SmaCrossover, base_params={"slow": 30}, grid=grid, constraints=constraints)
    assert exc.value.field == field


def test_constraints_and_the_strategys_own_rules_filter_combinations():
    search = search_build(
        SmaCrossover,
        base_params={},
        grid={
            "fast": {"start": 5, "stop": 50, "step": 5},
            "slow": {"start": 20, "stop": 200, "step": 10},
        },
        constraints=["fast < slow"],
    )
    assert len(search.combos) == 174
    assert all(c["fast"] < c["slow"] for c in search.combos)


def _walk(frames):
    search = search_build(
        SmaCrossover,
        base_params={},
        grid={"fast": [3, 8, 20], "slow": [30, 60]},
        objective="total_return",
    )
    return search, optimizer.walk_forward(
        SmaCrossover,
        optimizer.Market(frames),
        search,
        optimizer.Costs(fee_bps=1.0),
        train_days=40,
        test_days=20,
    )


def test_walk_forward_never_looks_ahead():
    """Fold k's choice uses its train window only: wrecking every bar from fold k's test window
    on changes nothing about folds 0..k's choices or train scores."""
    base = frame("SPY", 78 * 160)
    search, plain = _walk({"SPY": base})
    folds = plain["folds"]
    assert len(folds) >= 4
    assert len({str(f.best_params) for f in folds}) >= 1
    k = 2
    cut = folds[k].train_end
    wrecked = base.copy()
    after = wrecked.index.as_unit("ns").asi8 >= cut
    rng = np.random.default_rng(3)
    noise = np.exp(np.cumsum(rng.normal(0, 0.02, after.sum())))
    for col in ("open", "high", "low", "close"):
        wrecked.loc[after, col] = wrecked.loc[after, col].to_numpy() * noise
    _, changed = _walk({"SPY": wrecked})
    for before, later in zip(folds[: k + 1], changed["folds"][: k + 1], strict=True):
        assert later.best_params == before.best_params
        assert later.train_metrics == before.train_metrics
    # ... and the wrecked data does reach the test scores (the test is not vacuous).
    assert changed["folds"][k].test_metrics != folds[k].test_metrics


def test_walk_forward_windows_follow_each_other_and_stitch_the_equity():
    search, out = _walk({"SPY": frame("SPY", 78 * 160)})
    folds = out["folds"]
    for a, b in zip(folds, folds[1:], strict=False):
        assert b.train_end == a.test_end and b.train_start > a.train_start  # rolling
    ts, equity = out["oos_equity"]
    assert np.all(np.diff(ts) > 0)
    assert ts[0] >= folds[0].train_end
    assert out["oos_metrics"]["final_equity"] == pytest.approx(equity[-1])
    anchored = optimizer.folds_plan(
        0, 10 * optimizer.NS_PER_DAY, train_days=4, test_days=2, anchored=True
    )
    assert [f.train_start for f in anchored] == [0, 0, 0, 0]


def test_strategies_declare_their_indicator_lines():
    bars = frame("SPY", 300)
    sma = SmaCrossover().plot(bars, {"fast": 5, "slow": 20})
    assert set(sma) == {"SMA 5", "SMA 20"}
    assert sma["SMA 5"].iloc[-1] == pytest.approx(bars["close"].iloc[-5:].mean())
    from strategies.builtin.bollinger_breakout import BollingerBreakout

    bands = BollingerBreakout().plot(bars, {"window": 20, "num_std": 2.0, "short": False})
    assert set(bands) == {"middle", "upper", "lower"}
    assert (bands["upper"] >= bands["lower"]).iloc[20:].all()
