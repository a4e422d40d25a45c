"""strategies.engine against an independent bar-by-bar implementation, plus edge cases."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest

from strategies.base import Param, Strategy
from strategies.builtin.sma_crossover import SmaCrossover
from strategies.engine import backtest_strategy, result_to_dict, run_backtest


def random_bars(n: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * (1.0 + rng.normal(0.0, 0.001, n))
    high = np.maximum(open_, close) * 1.001
    low = np.minimum(open_, close) * 0.999
    index = pd.date_range("2024-03-04 14:30", periods=n, freq="5min", tz="UTC")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": 1000.0}, index=index
    )


# --- an independent implementation: plain Python, one bar at a time -------------------------


def loop_sma(values: list[float], window: int) -> list[float | None]:
    out: list[float | None] = []
    for i in range(len(values)):
        if i + 1 < window:
            out.append(None)
        else:
            out.append(sum(values[i + 1 - window : i + 1]) / window)
    return out


def loop_crossover_targets(close: list[float], fast: int, slow: int) -> list[float]:
    f, s = loop_sma(close, fast), loop_sma(close, slow)
    return [
        1.0 if a is not None and b is not None and a > b else 0.0 for a, b in zip(f, s, strict=True)
    ]


def loop_band_targets(close: list[float], fast: int, slow: int, band: float) -> list[float]:
    """-1/0/1: long above the slow SMA by more than `band`, short below it, flat in between."""
    f, s = loop_sma(close, fast), loop_sma(close, slow)
    out = []
    for a, b in zip(f, s, strict=True):
        if a is None or b is None:
            out.append(0.0)
        elif a > b * (1 + band):
            out.append(1.0)
        elif a < b * (1 - band):
            out.append(-1.0)
        else:
            out.append(0.0)
    return out


def loop_backtest(
    open_: list[float],
    close: list[float],
    target: list[float],
    *,
    cash: float,
    fee_bps: float,
    fee_per_trade: float,
    slippage_bps: float,
    allow_short: bool,
) -> tuple[list[float], list[dict[str, Any]]]:
    fee, slip = fee_bps / 1e4, slippage_bps / 1e4
    low = -1.0 if allow_short else 0.0
    units = 0.0
    held = 0.0
    equity: list[float] = []
    trades: list[dict[str, Any]] = []
    current: dict[str, Any] | None = None
    for i in range(len(close)):
        wanted = 0.0
        if i > 0:
            wanted = target[i - 1]
            wanted = 0.0 if math.isnan(wanted) else min(max(wanted, low), 1.0)
        if wanted != held:
            o = open_[i]
            if units != 0.0:
                side = 1.0 if units > 0 else -1.0
                price = o * (1 - slip * side)
                cash += units * price - fee * abs(units) * price - fee_per_trade
                current.update(exit_index=i, exit_price=price, pnl=cash - current["cash"])
                trades.append(current)
                current = None
            units, held = 0.0, 0.0
            if wanted != 0.0 and cash > fee_per_trade:
                side = 1.0 if wanted > 0 else -1.0
                price = o * (1 + slip * side)
                notional = abs(wanted) * (cash - fee_per_trade) / (1 + fee)
                current = {"entry_index": i, "entry_price": price, "cash": cash, "side": side}
                units = side * notional / price
                cash -= side * notional + fee * notional + fee_per_trade
                held = wanted
        equity.append(cash + units * close[i])
    return equity, trades


def assert_same_as_loop(result, loop_equity, loop_trades):
    closed = result.closed_trades
    assert len(closed) == len(loop_trades) > 10
    assert closed["entry_index"].tolist() == [t["entry_index"] for t in loop_trades]
    assert closed["exit_index"].tolist() == [t["exit_index"] for t in loop_trades]
    assert closed["side"].tolist() == [t["side"] for t in loop_trades]
    np.testing.assert_allclose(
        closed["entry_price"], [t["entry_price"] for t in loop_trades], rtol=1e-12
    )
    np.testing.assert_allclose(
        closed["exit_price"], [t["exit_price"] for t in loop_trades], rtol=1e-12
    )
    np.testing.assert_allclose(closed["pnl"], [t["pnl"] for t in loop_trades], rtol=1e-9)
    assert result.equity[-1] == pytest.approx(loop_equity[-1], rel=1e-9)
    np.testing.assert_allclose(result.equity, loop_equity, rtol=1e-9)


def test_long_only_sma_crossover_matches_bar_by_bar_loop_with_costs():
    bars = random_bars(4000)
    costs = {"fee_bps": 5.0, "fee_per_trade": 1.5, "slippage_bps": 3.0}
    result = backtest_strategy(SmaCrossover(), bars, {"fast": 5, "slow": 20}, **costs)

    open_, close = bars["open"].tolist(), bars["close"].tolist()
    targets = loop_crossover_targets(close, 5, 20)
    equity, trades = loop_backtest(
        open_, close, targets, cash=100_000.0, allow_short=False, **costs
    )
    assert_same_as_loop(result, equity, trades)
    # Costs really were charged: the same run without them ends richer.
    free = backtest_strategy(SmaCrossover(), bars, {"fast": 5, "slow": 20})
    assert free.equity[-1] > result.equity[-1]


class BandStrategy(Strategy):
    name = "test_band"
    allow_short = True
    params = {
        "fast": Param(int, 5),
        "slow": Param(int, 20),
        "band": Param(float, 0.001),
    }

    def generate_signals(self, bars: pd.DataFrame, params: dict[str, Any]) -> pd.Series:
        close = bars["close"].to_numpy()
        fast = close_sma(close, params["fast"])
        slow = close_sma(close, params["slow"])
        target = np.where(
            fast > slow * (1 + params["band"]),
            1.0,
            np.where(fast < slow * (1 - params["band"]), -1.0, 0.0),
        )
        return pd.Series(target, index=bars.index)


def close_sma(values: np.ndarray, window: int) -> np.ndarray:
    return pd.Series(values).rolling(window).mean().to_numpy()


def test_long_short_strategy_matches_bar_by_bar_loop():
    bars = random_bars(3000, seed=11)
    costs = {"fee_bps": 2.0, "fee_per_trade": 0.75, "slippage_bps": 4.0}
    result = backtest_strategy(BandStrategy(), bars, {"band": 0.0005}, **costs)

    open_, close = bars["open"].tolist(), bars["close"].tolist()
    targets = loop_band_targets(close, 5, 20, 0.0005)
    equity, trades = loop_backtest(open_, close, targets, cash=100_000.0, allow_short=True, **costs)
    assert_same_as_loop(result, equity, trades)
    sides = {t["side"] for t in trades}
    assert sides == {1.0, -1.0}
    # Direct long <-> short flips happen and are two fills on the same open.
    exits = {t["exit_index"] for t in trades}
    assert any(t["entry_index"] in exits for t in trades)
    assert set(np.unique(result.positions)) == {-1.0, 0.0, 1.0}


def test_shorts_are_dropped_when_not_allowed():
    bars = random_bars(3000, seed=11)
    result = backtest_strategy(BandStrategy(), bars, {"band": 0.0005}, allow_short=False)
    assert result.positions.min() == 0.0
    assert (result.trades["side"] == 1).all()


def test_no_look_ahead_changing_the_future_changes_nothing_before_it():
    bars = random_bars(2000, seed=5)
    k = 1200
    altered = bars.copy()
    rng = np.random.default_rng(99)
    tail = altered.iloc[k + 1 :].to_numpy()
    altered.iloc[k + 1 :] = tail[rng.permutation(len(tail))] * 1.3

    params = {"fast": 5, "slow": 20}
    kw = {"fee_bps": 1.0, "slippage_bps": 2.0}
    strategy = SmaCrossover()
    sig_a = strategy.generate_signals(bars, strategy.validate_params(params))
    sig_b = strategy.generate_signals(altered, strategy.validate_params(params))
    a = backtest_strategy(strategy, bars, params, **kw)
    b = backtest_strategy(strategy, altered, params, **kw)

    assert (sig_a.iloc[: k + 1] == sig_b.iloc[: k + 1]).all()
    assert (sig_a.iloc[k + 1 :] != sig_b.iloc[k + 1 :]).any()  # the change did matter later
    np.testing.assert_array_equal(a.equity[: k + 1], b.equity[: k + 1])
    # The position for bar k+1 was decided at bar k's close, so it is unchanged too.
    np.testing.assert_array_equal(a.positions[: k + 2], b.positions[: k + 2])
    np.testing.assert_array_equal(a.units[: k + 1], b.units[: k + 1])
    done_a = a.trades[a.trades["exit_index"] <= k]
    done_b = b.trades[b.trades["exit_index"] <= k]
    assert len(done_a) > 5
    np.testing.assert_array_equal(done_a, done_b)
    open_a = a.trades[a.trades["entry_index"] <= k]["entry_price"]
    open_b = b.trades[b.trades["entry_index"] <= k]["entry_price"]
    np.testing.assert_array_equal(open_a, open_b)


def test_fill_is_at_the_next_open_with_slippage_and_fees():
    open_ = np.array([10.0, 11.0, 12.0, 13.0, 14.0])
    close = np.array([10.5, 11.5, 12.5, 13.5, 14.5])
    target = np.array([1.0, 1.0, 0.0, 0.0, 0.0])
    r = run_backtest(
        open_, close, target, initial_cash=1000.0, fee_bps=10.0, fee_per_trade=1.0, slippage_bps=50
    )
    (trade,) = r.trades
    assert trade["entry_index"] == 1 and trade["exit_index"] == 3
    assert trade["entry_price"] == pytest.approx(11.0 * 1.005)
    assert trade["exit_price"] == pytest.approx(13.0 * 0.995)
    notional = (1000.0 - 1.0) / 1.001
    qty = notional / (11.0 * 1.005)
    assert trade["qty"] == pytest.approx(qty)
    exit_value = qty * 13.0 * 0.995
    final = exit_value * (1 - 0.001) - 1.0
    assert r.equity[-1] == pytest.approx(final)
    assert trade["pnl"] == pytest.approx(final - 1000.0)
    assert trade["fees"] == pytest.approx(0.001 * notional + 1 + 0.001 * exit_value + 1)
    assert r.equity[0] == 1000.0
    assert r.equity[1] == pytest.approx(qty * 11.5)  # fully invested: no cash left
    assert r.positions.tolist() == [0.0, 1.0, 1.0, 0.0, 0.0]


def test_flat_signal_makes_no_trades():
    bars = random_bars(500)
    r = run_backtest(bars["open"], bars["close"], np.zeros(500), initial_cash=5000.0)
    assert len(r.trades) == 0
    assert (r.equity == 5000.0).all()
    assert r.metrics["trades"] == 0
    assert r.metrics["total_return"] == 0.0
    assert r.metrics["exposure"] == 0.0
    assert r.metrics["win_rate"] is None


def test_fewer_bars_than_the_warm_up_stay_flat():
    bars = random_bars(25)
    r = backtest_strategy(SmaCrossover(), bars, {"fast": 10, "slow": 30})
    assert len(r.trades) == 0
    assert (r.equity == 100_000.0).all()
    assert len(r.equity) == 25


def test_nan_target_means_flat():
    bars = random_bars(400, seed=8)
    rng = np.random.default_rng(1)
    target = rng.choice([0.0, 1.0], size=400)
    holes = rng.random(400) < 0.2
    with_nan = np.where(holes, np.nan, target)
    zeroed = np.where(holes, 0.0, target)
    kw = {"fee_bps": 3.0, "timestamps": bars.index}
    a = run_backtest(bars["open"], bars["close"], with_nan, **kw)
    b = run_backtest(bars["open"], bars["close"], zeroed, **kw)
    np.testing.assert_array_equal(a.equity, b.equity)
    np.testing.assert_array_equal(a.trades, b.trades)
    assert len(a.trades) > 10
    assert not np.isnan(a.positions).any()


def test_signal_on_the_last_bar_is_not_filled():
    bars = random_bars(50)
    target = np.zeros(50)
    target[-1] = 1.0
    r = run_backtest(bars["open"], bars["close"], target)
    assert len(r.trades) == 0
    assert (r.positions == 0).all()
    assert (r.equity == 100_000.0).all()


def test_position_still_held_at_the_end_is_an_open_trade_marked_at_the_close():
    bars = random_bars(50)
    target = np.zeros(50)
    target[-2] = 1.0
    r = run_backtest(bars["open"], bars["close"], target, fee_bps=10.0)
    (trade,) = r.trades
    assert trade["is_open"]
    assert trade["entry_index"] == 49
    assert trade["exit_price"] == bars["close"].iloc[-1]
    assert trade["pnl"] == pytest.approx(r.equity[-1] - 100_000.0)
    assert r.metrics["trades"] == 0  # metrics count closed trades only
    assert len(r.closed_trades) == 0


def test_account_that_cannot_pay_the_fixed_fee_never_trades():
    bars = random_bars(200)
    target = np.tile([0.0, 1.0], 100)
    r = run_backtest(bars["open"], bars["close"], target, initial_cash=10.0, fee_per_trade=20.0)
    assert len(r.trades) == 0
    assert (r.equity == 10.0).all()
    assert (r.positions == 0).all()


def test_fractional_targets_and_clipping():
    open_ = np.array([10.0, 10.0, 20.0, 20.0])
    close = np.array([10.0, 10.0, 20.0, 20.0])
    r = run_backtest(open_, close, np.array([0.5, 0.5, 3.0, 3.0]), initial_cash=1000.0)
    assert r.positions.tolist() == [0.0, 0.5, 0.5, 1.0]
    # Half invested while the price doubles: +50%, then re-sized to the whole account.
    assert r.equity[2] == pytest.approx(1500.0)
    assert r.trades["target"].tolist() == [0.5, 1.0]
    assert r.trades["qty"][1] == pytest.approx(1500.0 / 20.0)


def test_mismatched_lengths_are_rejected():
    with pytest.raises(ValueError, match="same length"):
        run_backtest(np.ones(3), np.ones(3), np.ones(4))


def test_result_to_dict_is_json_safe_and_downsampled():
    bars = random_bars(3000)
    r = backtest_strategy(SmaCrossover(), bars, {"fast": 5, "slow": 20}, fee_bps=1.0)
    out = json.loads(json.dumps(result_to_dict(r, max_points=100, max_trades=3), allow_nan=False))
    curve = out["equity_curve"]
    assert len(curve) == 100
    assert curve[0]["t"] == "2024-03-04T14:30:00+00:00"
    assert curve[-1]["t"] == bars.index[-1].isoformat()
    assert curve[-1]["equity"] == pytest.approx(r.equity[-1])
    assert out["trades_total"] == len(r.trades) > 3
    assert len(out["trades"]) == 3
    last = out["trades"][-1]
    assert last["entry_time"] == bars.index[last["entry_index"]].isoformat()
    assert out["metrics"]["trades"] == r.metrics["trades"]
    assert out["params"]["strategy_params"] == {"fast": 5, "slow": 20}


def test_engine_does_not_import_django():
    import subprocess
    import sys

    code = "import sys, strategies.engine, strategies.metrics; print('django' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="."
    )
    assert done.stdout.strip() == "False"


def test_fixed_fees_that_ruin_the_account_mid_run_match_the_loop():
    bars = random_bars(4000, seed=21)
    costs = {"fee_bps": 0.0, "fee_per_trade": 3.0, "slippage_bps": 1.0}
    result = backtest_strategy(
        SmaCrossover(), bars, {"fast": 5, "slow": 20}, initial_cash=200.0, **costs
    )
    close = bars["close"].tolist()
    targets = loop_crossover_targets(close, 5, 20)
    equity, trades = loop_backtest(
        bars["open"].tolist(), close, targets, cash=200.0, allow_short=False, **costs
    )
    assert_same_as_loop(result, equity, trades)
    # Trading stopped well before the signals did, and the account then stays flat.
    assert result.trades["exit_index"][-1] < 3000
    assert result.equity[-1] <= 3.0
    assert (result.positions[result.trades["exit_index"][-1] :] == 0).all()


def test_short_losing_more_than_the_account_ends_trading():
    price = np.array([10.0, 10.0, 30.0, 30.0, 30.0, 30.0])
    target = np.array([-1.0, 0.0, -1.0, 0.0, 0.0, 0.0])
    r = run_backtest(price, price, target, initial_cash=100.0, allow_short=True)
    # Short 10 units at 10, bought back at 30: a loss of twice the account, no margin call.
    (trade,) = r.trades
    assert trade["pnl"] == pytest.approx(-200.0)
    assert r.equity.tolist() == pytest.approx([100.0, 100.0, -100.0, -100.0, -100.0, -100.0])
    assert (r.positions[2:] == 0).all()  # the second short signal is never filled
