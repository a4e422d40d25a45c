"""The built-in strategies: signals in range, sensible behaviour, no look-ahead, param errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from strategies import registry
from strategies.base import ParamError
from strategies.builtin.bollinger_breakout import BollingerBreakout
from strategies.builtin.momentum import Momentum
from strategies.builtin.rsi_mean_reversion import RsiMeanReversion
from strategies.builtin.sma_crossover import SmaCrossover


def bars_from_close(close) -> pd.DataFrame:
    close = np.asarray(close, dtype=np.float64)
    index = pd.date_range("2024-03-04 14:30", periods=close.size, freq="5min", tz="UTC")
    return pd.DataFrame(
        {"open": close, "high": close * 1.001, "low": close * 0.999, "close": close, "volume": 1e3},
        index=index,
    )


def random_walk(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return bars_from_close(100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n))))


CASES = [
    (SmaCrossover, {"fast": 3, "slow": 12}),
    (RsiMeanReversion, {"period": 6, "oversold": 35.0, "exit": 55.0}),
    (BollingerBreakout, {"window": 10, "num_std": 1.5, "short": True}),
    (BollingerBreakout, {"window": 10, "num_std": 1.5}),
    (Momentum, {"lookback": 8, "threshold": 0.002, "short": True}),
]


def test_the_four_builtins_are_loaded():
    loaded = set(registry.get_registry().strategies)
    assert {"sma_crossover", "rsi_mean_reversion", "bollinger_breakout", "momentum"} <= loaded


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_no_look_ahead_future_bars_never_change_past_signals(cls, params):
    bars = random_walk(600, seed=11)
    params = cls.validate_params(params)
    full = cls().generate_signals(bars, params).to_numpy()
    assert full.shape == (600,)
    low = -1.0 if cls.allow_short else 0.0
    assert np.nanmin(full) >= low and np.nanmax(full) <= 1.0
    assert len(np.unique(full[~np.isnan(full)])) > 1, "the strategy never changed its mind"
    for cut in (50, 300, 599):
        truncated = cls().generate_signals(bars.iloc[:cut], params).to_numpy()
        np.testing.assert_array_equal(truncated, full[:cut])
        # Wildly different future bars: the past is unchanged.
        shocked = bars.copy()
        shocked.iloc[cut:, :4] *= 3.0
        np.testing.assert_array_equal(
            cls().generate_signals(shocked, params).to_numpy()[:cut], full[:cut]
        )


def test_rsi_buys_after_a_selloff_and_exits_on_the_rebound():
    close = [100.0] * 5 + [100 - i for i in range(1, 11)] + [90 + 2 * i for i in range(1, 11)]
    params = RsiMeanReversion.validate_params({"period": 3, "oversold": 30.0, "exit": 60.0})
    signal = RsiMeanReversion().generate_signals(bars_from_close(close), params).to_numpy()
    assert signal[:5].tolist() == [0.0] * 5
    assert signal[14] == 1.0  # deep in the sell-off: long
    assert signal[-1] == 0.0  # recovered: flat again


def test_bollinger_goes_long_on_a_breakout_and_short_only_when_allowed():
    flat = [100.0, 100.5] * 10
    up = bars_from_close(flat + [110.0, 111.0])
    down = bars_from_close(flat + [90.0, 89.0])
    long_only = BollingerBreakout.validate_params({"window": 10})
    both = BollingerBreakout.validate_params({"window": 10, "short": True})
    assert BollingerBreakout().generate_signals(up, long_only).iloc[-1] == 1.0
    assert BollingerBreakout().generate_signals(down, long_only).iloc[-1] == 0.0
    assert BollingerBreakout().generate_signals(down, both).iloc[-1] == -1.0


def test_momentum_follows_the_rate_of_change():
    rising = bars_from_close(np.linspace(100, 120, 30))
    falling = bars_from_close(np.linspace(120, 100, 30))
    params = Momentum.validate_params({"lookback": 5, "short": True})
    assert Momentum().generate_signals(rising, params).iloc[-1] == 1.0
    assert Momentum().generate_signals(falling, params).iloc[-1] == -1.0
    assert Momentum().generate_signals(rising, params).iloc[:5].tolist() == [0.0] * 5


@pytest.mark.parametrize(
    ("cls", "values", "param"),
    [
        (RsiMeanReversion, {"period": "14"}, "period"),
        (RsiMeanReversion, {"oversold": 60.0, "exit": 50.0}, "oversold"),
        (BollingerBreakout, {"num_std": 0}, "num_std"),
        (BollingerBreakout, {"short": 1}, "short"),
        (Momentum, {"lookback": 0}, "lookback"),
        (Momentum, {"speed": 3}, "speed"),
        (SmaCrossover, {"fast": 30, "slow": 10}, "fast"),
    ],
)
def test_bad_params_name_the_parameter(cls, values, param):
    with pytest.raises(ParamError) as excinfo:
        cls.validate_params(values)
    assert excinfo.value.param == param
    assert str(excinfo.value).startswith(f"{param}: ")
