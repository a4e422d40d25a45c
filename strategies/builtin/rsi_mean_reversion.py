from __future__ import annotations

from typing import Any

import pandas as pd

from strategies.base import Param, ParamError, Strategy
from strategies.builtin.indicators import latch, rsi


class RsiMeanReversion(Strategy):
    """Buy the dip: go long when RSI falls below `oversold`, exit when it rises above `exit`."""

    name = "rsi_mean_reversion"
    description = "Long from RSI < oversold until RSI > exit; flat otherwise."
    params = {
        "period": Param(int, 14, min=2, max=1000, help="RSI period in bars"),
        "oversold": Param(float, 30.0, min=0.0, max=100.0, help="enter long below this RSI"),
        "exit": Param(float, 55.0, min=0.0, max=100.0, help="exit the long above this RSI"),
    }
    warmup_bars = 14

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        if params["oversold"] >= params["exit"]:
            raise ParamError("oversold", "must be smaller than exit")

    @classmethod
    def required_bars(cls, params: dict[str, Any]) -> int:
        return params["period"] + 2

    @classmethod
    def history_bars(cls, params: dict[str, Any]) -> int:
        # Wilder smoothing converges slowly and the position is latched: load a long tail so
        # the live signal matches a backtest over the full history.
        return max(500, params["period"] * 20)

    def generate_signals(self, bars: pd.DataFrame, params: dict[str, Any]) -> pd.Series:
        value = rsi(bars["close"].astype("float64"), params["period"])
        signal = latch(value < params["oversold"], value > params["exit"], 1.0)
        return signal.rename("target")
