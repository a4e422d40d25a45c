from __future__ import annotations

from typing import Any

import pandas as pd

from strategies.base import Param, Strategy
from strategies.builtin.indicators import latch


class BollingerBreakout(Strategy):
    """Trade breakouts from Bollinger bands: long on a close above the upper band until the
    close falls back below the middle band; with `short`, the mirror image below the lower band.
    """

    name = "bollinger_breakout"
    description = "Long above the upper band until back under the middle (short: mirrored)."
    params = {
        "window": Param(int, 20, min=2, max=10_000, help="moving-average window in bars"),
        "num_std": Param(float, 2.0, min=0.1, max=10.0, help="band width in standard deviations"),
        "short": Param(bool, False, help="also short breakouts below the lower band"),
    }
    allow_short = True
    warmup_bars = 20

    @classmethod
    def required_bars(cls, params: dict[str, Any]) -> int:
        return params["window"] + 1

    @classmethod
    def history_bars(cls, params: dict[str, Any]) -> int:
        # The position is latched between a band break and the middle band: load a long tail.
        return max(500, params["window"] * 10)

    def generate_signals(self, bars: pd.DataFrame, params: dict[str, Any]) -> pd.Series:
        close = bars["close"].astype("float64")
        rolling = close.rolling(params["window"], min_periods=params["window"])
        middle = rolling.mean()
        width = rolling.std(ddof=0) * params["num_std"]
        upper, lower = middle + width, middle - width
        # NaN comparisons are False: the warm-up is flat.
        signal = latch(close > upper, close < middle, 1.0)
        if params["short"]:
            signal = signal + latch(close < lower, close > middle, -1.0)
        return signal.clip(-1.0, 1.0).rename("target")

    def plot(self, bars: pd.DataFrame, params: dict[str, Any]) -> dict[str, pd.Series]:
        close = bars["close"].astype("float64")
        rolling = close.rolling(params["window"], min_periods=params["window"])
        middle = rolling.mean()
        width = rolling.std(ddof=0) * params["num_std"]
        return {"middle": middle, "upper": middle + width, "lower": middle - width}
