"""Causal indicators from pandas: every value at bar t uses only bars <= t."""

from __future__ import annotations

import numpy as np
import pandas as pd


def rsi(close: pd.Series, period: int) -> pd.Series:
    """Wilder's RSI (exponential smoothing with alpha = 1/period); NaN during the warm-up."""
    delta = close.diff()
    gain = delta.clip(lower=0.0)
    loss = -delta.clip(upper=0.0)
    avg_gain = gain.ewm(alpha=1.0 / period, adjust=False, min_periods=period).mean()
    avg_loss = loss.ewm(alpha=1.0 / period, adjust=False, min_periods=period).mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        rs = avg_gain / avg_loss
    out = 100.0 - 100.0 / (1.0 + rs)
    # No losses at all in the window: RSI is 100 (rs is inf, the formula gives 100 already);
    # no movement at all (0/0) stays NaN: no opinion.
    return out


def latch(enter: pd.Series, exit_: pd.Series, value: float) -> pd.Series:
    """`value` from a bar where `enter` holds until a bar where `exit_` holds, else 0.

    Vectorized hysteresis: mark entries and exits, carry the last mark forward. On a bar where
    both hold, the exit wins (the conservative choice).
    """
    state = pd.Series(np.nan, index=enter.index)
    state[enter.to_numpy(dtype=bool)] = value
    state[exit_.to_numpy(dtype=bool)] = 0.0
    return state.ffill().fillna(0.0)
