from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from strategies.base import Param, ParamError, Strategy


class SmaCrossover(Strategy):
    """Long while the fast simple moving average is above the slow one, flat otherwise."""

    name = "sma_crossover"
    description = "Fully long while SMA(fast) > SMA(slow); flat otherwise."
    params = {
        "fast": Param(int, 10, min=1, max=10_000, help="fast SMA window in bars"),
        "slow": Param(int, 30, min=2, max=10_000, help="slow SMA window in bars"),
    }

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        if params["fast"] >= params["slow"]:
            raise ParamError("fast", "must be smaller than slow")

    @classmethod
    def required_bars(cls, params: dict[str, Any]) -> int:
        return params["slow"] + 1

    def generate_signals(self, bars: pd.DataFrame, params: dict[str, Any]) -> pd.Series:
        close = bars["close"].to_numpy(dtype=np.float64)
        signal = sma_crossover_signal(close, params["fast"], params["slow"])
        return pd.Series(signal, index=bars.index, name="target")

    def signals_cached(
        self, bars: pd.DataFrame, params: dict[str, Any], cache: dict[Any, Any]
    ) -> np.ndarray:
        # One cumulative sum per frame and one average per window, shared by every combination.
        if "csum" not in cache:
            close = bars["close"].to_numpy(dtype=np.float64)
            cache["csum"] = np.cumsum(np.concatenate(([0.0], close)))
        fast_ma = _cached_sma(cache, params["fast"])
        slow_ma = _cached_sma(cache, params["slow"])
        return fast_ma > slow_ma  # bool: all in or out

    def plot(self, bars: pd.DataFrame, params: dict[str, Any]) -> dict[str, pd.Series]:
        close = bars["close"].to_numpy(dtype=np.float64)
        return {
            f"SMA {params['fast']}": pd.Series(sma(close, params["fast"]), index=bars.index),
            f"SMA {params['slow']}": pd.Series(sma(close, params["slow"]), index=bars.index),
        }


def sma(values: np.ndarray, window: int) -> np.ndarray:
    """Simple moving average by cumulative sums; NaN until `window` values exist."""
    return sma_from_csum(np.cumsum(np.concatenate(([0.0], values))), window)


def sma_from_csum(csum: np.ndarray, window: int) -> np.ndarray:
    """`sma` given `cumsum([0, *values])`: the same floats, the sum shared across windows."""
    out = np.full(csum.shape[0] - 1, np.nan)
    if csum.shape[0] - 1 >= window:
        out[window - 1 :] = (csum[window:] - csum[:-window]) / window
    return out


def _cached_sma(cache: dict[Any, Any], window: int) -> np.ndarray:
    key = ("sma", window)
    if key not in cache:
        cache[key] = sma_from_csum(cache["csum"], window)
    return cache[key]


def sma_crossover_signal(close: np.ndarray, fast: int, slow: int) -> np.ndarray:
    fast_ma = sma(close, fast)
    slow_ma = sma(close, slow)
    # NaN comparisons are False, so the warm-up is flat.
    return (fast_ma > slow_ma).astype(np.float64)
