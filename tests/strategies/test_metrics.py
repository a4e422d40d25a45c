"""strategies.metrics against values worked out by hand on tiny series."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from strategies.metrics import compute_metrics

# Returns +10%, -10%, +10%, +10%: mean 0.05, sample std 0.1 (squared deviations sum to 0.03,
# divided by n-1 = 3), downside deviation sqrt(0.1**2 / 4) = 0.05.
EQUITY = np.array([100.0, 110.0, 99.0, 108.9, 119.79])
PNLS = np.array([50.0, -25.0, 100.0, -25.0, 0.0])


def test_return_and_risk_metrics_without_timestamps():
    m = compute_metrics(EQUITY, None, PNLS, periods_per_year=4)
    assert m["bars"] == 5
    assert m["final_equity"] == pytest.approx(119.79)
    assert m["total_return"] == pytest.approx(0.1979)
    # 4 returns at 4 periods a year is exactly one year.
    assert m["cagr"] == pytest.approx(0.1979)
    assert m["volatility"] == pytest.approx(0.1 * 2)
    assert m["sharpe"] == pytest.approx(0.05 / 0.1 * 2)
    assert m["sortino"] == pytest.approx(0.05 / 0.05 * 2)
    assert m["max_drawdown"] == pytest.approx(0.1)  # 110 -> 99
    # Bars 2 and 3 are below the high of bar 1; bar 4 makes a new high.
    assert m["max_drawdown_duration_bars"] == 2
    assert m["max_drawdown_duration_seconds"] is None
    assert m["calmar"] == pytest.approx(0.1979 / 0.1)


def test_trade_metrics():
    m = compute_metrics(EQUITY, None, PNLS, exposure=np.array([0, 1, 1, -1, 0]))
    assert m["trades"] == 5
    assert m["win_rate"] == pytest.approx(2 / 5)  # a zero P&L is not a win
    assert m["profit_factor"] == pytest.approx(150 / 50)
    assert m["expectancy"] == pytest.approx(100 / 5)
    assert m["exposure"] == pytest.approx(3 / 5)  # shorts count as exposure


def test_cagr_and_drawdown_seconds_use_calendar_time():
    start = pd.Timestamp("2024-01-01", tz="UTC")
    days = [0.0, 1.0, 2.0, 3.0, 2 * 365.25]  # the last value is exactly two years later
    ts = pd.DatetimeIndex([start + pd.Timedelta(days=d) for d in days])
    m = compute_metrics(EQUITY, ts, PNLS)
    assert m["cagr"] == pytest.approx(1.1979**0.5 - 1)
    assert m["calmar"] == pytest.approx((1.1979**0.5 - 1) / 0.1)
    # High on day 1, last underwater value on day 3.
    assert m["max_drawdown_duration_seconds"] == pytest.approx(2 * 86400)
    # A datetime64 array (any unit) gives the same answer as the DatetimeIndex.
    m2 = compute_metrics(EQUITY, ts.tz_localize(None).to_numpy().astype("datetime64[s]"), PNLS)
    assert m2["cagr"] == pytest.approx(m["cagr"])
    assert m2["max_drawdown_duration_seconds"] == m["max_drawdown_duration_seconds"]


def test_unrecovered_drawdown_runs_to_the_end():
    m = compute_metrics(np.array([100.0, 120.0, 90.0, 100.0, 110.0]), None, [])
    assert m["max_drawdown"] == pytest.approx(0.25)
    assert m["max_drawdown_duration_bars"] == 3


def test_flat_curve_and_no_trades_are_json_safe():
    m = compute_metrics(np.full(10, 1000.0), None, np.array([]), exposure=np.zeros(10))
    assert m["total_return"] == 0.0
    assert m["volatility"] == 0.0
    assert m["sharpe"] is None
    assert m["sortino"] is None
    assert m["max_drawdown"] == 0.0
    assert m["max_drawdown_duration_bars"] == 0
    assert m["calmar"] is None
    assert m["trades"] == 0
    assert m["win_rate"] is None
    assert m["profit_factor"] is None
    assert m["expectancy"] is None
    assert m["exposure"] == 0.0
    json.dumps(m, allow_nan=False)


def test_no_losing_trade_gives_no_profit_factor_rather_than_infinity():
    m = compute_metrics(EQUITY, None, np.array([10.0, 5.0]))
    assert m["profit_factor"] is None
    assert m["win_rate"] == 1.0


def test_wiped_out_account_is_json_safe():
    m = compute_metrics(np.array([100.0, 50.0, 0.0, 0.0]), None, np.array([-100.0]))
    assert m["total_return"] == -1.0
    assert m["cagr"] == -1.0
    assert m["max_drawdown"] == 1.0
    assert m["sharpe"] is None  # the 0 -> 0 return is undefined
    assert m["profit_factor"] == 0.0  # no gross profit over a real loss
    json.dumps(m, allow_nan=False)


def test_short_series():
    one = compute_metrics(np.array([100.0]), None, [])
    assert one["total_return"] == 0.0
    assert one["cagr"] is None and one["sharpe"] is None
    empty = compute_metrics(np.array([]), None, [])
    assert empty["bars"] == 0
    assert empty["total_return"] is None and empty["max_drawdown"] is None
    json.dumps(empty, allow_nan=False)


def test_timestamps_must_match_equity():
    with pytest.raises(ValueError, match="timestamps"):
        compute_metrics(EQUITY, pd.date_range("2024-01-01", periods=3, tz="UTC"), [])


def test_sharpe_matches_textbook_formula_on_random_series():
    rng = np.random.default_rng(7)
    equity = 1000.0 * np.cumprod(1 + rng.normal(0.0005, 0.01, 500))
    r = [equity[i] / equity[i - 1] - 1 for i in range(1, len(equity))]
    mean = sum(r) / len(r)
    std = math.sqrt(sum((x - mean) ** 2 for x in r) / (len(r) - 1))
    down = math.sqrt(sum(min(x, 0.0) ** 2 for x in r) / len(r))
    m = compute_metrics(equity, None, [], periods_per_year=252)
    assert m["sharpe"] == pytest.approx(mean / std * math.sqrt(252), rel=1e-9)
    assert m["sortino"] == pytest.approx(mean / down * math.sqrt(252), rel=1e-9)
    peak, worst = equity[0], 0.0
    for value in equity:
        peak = max(peak, value)
        worst = max(worst, 1 - value / peak)
    assert m["max_drawdown"] == pytest.approx(worst, rel=1e-12)
