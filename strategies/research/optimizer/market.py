"""The bars of a search (`Market`, with its arrays and cross-symbol alignments computed once),
its costs, and the callbacks and exception the grid runners share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

ProgressFn = Callable[[int, int], None]  # (done, total)
CancelFn = Callable[[], bool]
NS_PER_DAY = 86_400 * 1_000_000_000


class Canceled(Exception):
    """The caller asked to stop; raised between chunks of work."""


@dataclass(frozen=True)
class Costs:
    initial_cash: float = 100_000.0
    fee_bps: float = 0.0
    fee_per_trade: float = 0.0
    slippage_bps: float = 0.0
    allocation: float = 1.0


@dataclass
class Market:
    """The bars of a search: one OHLCV frame per symbol (UTC DatetimeIndex), in symbol order."""

    frames: dict[str, pd.DataFrame]
    # Per-symbol arrays and cross-symbol alignments, computed once per market.
    _arrays: dict[Any, Any] = field(default_factory=dict, repr=False)

    def arrays(self, symbol: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(open, close, timestamps in ns) of one symbol, converted once."""
        if symbol not in self._arrays:
            frame = self.frames[symbol]
            self._arrays[symbol] = (
                frame["open"].to_numpy(dtype=np.float64),
                frame["close"].to_numpy(dtype=np.float64),
                frame.index.as_unit("ns").asi8,
            )
        return self._arrays[symbol]

    @property
    def symbols(self) -> list[str]:
        return list(self.frames)

    def bounds(self) -> tuple[int, int]:
        """First and last bar time over all symbols, in ns."""
        firsts = [self.arrays(s)[2][0] for s in self.frames if len(self.frames[s])]
        lasts = [self.arrays(s)[2][-1] for s in self.frames if len(self.frames[s])]
        return int(min(firsts)), int(max(lasts))

    def alignment(
        self, symbols: tuple[str, ...]
    ) -> tuple[np.ndarray, dict[str, tuple[np.ndarray, np.ndarray]]]:
        """The union of the symbols' bar times, and per symbol (has a bar at or before, index of
        its last bar at or before) each union time: computed once, shared by every combination."""
        key = ("alignment", symbols)
        if key not in self._arrays:
            all_ts = [self.arrays(s)[2] for s in symbols]
            union = np.unique(np.concatenate(all_ts)) if all_ts else np.empty(0, np.int64)
            per_symbol = {}
            for symbol, ts in zip(symbols, all_ts, strict=True):
                where = np.searchsorted(ts, union, side="right") - 1
                per_symbol[symbol] = (where >= 0, np.maximum(where, 0))
            self._arrays[key] = (union, per_symbol)  # type: ignore[assignment]
        return self._arrays[key]  # type: ignore[return-value]

    def slice(self, start_ns: int, end_ns: int) -> Market:
        """Bars with start <= time < end (a symbol may end up with none)."""
        out = {}
        for symbol, frame in self.frames.items():
            ts = self.arrays(symbol)[2]
            lo, hi = np.searchsorted(ts, [start_ns, end_ns], side="left")
            out[symbol] = frame.iloc[lo:hi]
        return Market(out)
