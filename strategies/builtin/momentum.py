from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from strategies.base import Param, Strategy


class Momentum(Strategy):
    """Rate-of-change momentum: long while the `lookback`-bar return exceeds `threshold`;
    with `short`, short while it is below `-threshold`."""

    name = "momentum"
    description = "Long while ROC(lookback) > threshold; optionally short below -threshold."
    params = {
        "lookback": Param(int, 20, min=1, max=10_000, help="rate-of-change window in bars"),
        "threshold": Param(
            float, 0.0, min=0.0, max=1.0, help="minimum absolute ROC (fraction) to hold"
        ),
        "short": Param(bool, False, help="short when ROC < -threshold"),
    }
    allow_short = True
    warmup_bars = 20

    @classmethod
    def required_bars(cls, params: dict[str, Any]) -> int:
        return params["lookback"] + 1

    def generate_signals(self, bars: pd.DataFrame, params: dict[str, Any]) -> pd.Series:
        close = bars["close"].astype("float64")
        roc = close / close.shift(params["lookback"]) - 1.0
        signal = np.where(roc > params["threshold"], 1.0, 0.0)
        if params["short"]:
            signal = np.where(roc < -params["threshold"], -1.0, signal)
        return pd.Series(signal, index=bars.index, name="target")
