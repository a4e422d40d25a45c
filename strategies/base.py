"""The strategy interface (DESIGN.md §7).

A strategy is a class with a unique `name`, typed default `params`, and a vectorized
`generate_signals(bars, params)` returning the target exposure in [-1, 1] for every bar. Live
trading uses the last bar's value; backtests use all of them: one method, so they cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from strategies import protective


class ParamError(ValueError):
    """A strategy parameter is unknown, of the wrong type or out of range."""

    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


@dataclass(frozen=True)
class Param:
    """One typed parameter with its default and optional bounds."""

    type: type
    default: Any
    min: float | None = None
    max: float | None = None
    help: str = ""

    def clean(self, name: str, value: Any) -> Any:
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and self.type is not bool or not isinstance(value, self.type):
            raise ParamError(name, f"must be of type {self.type.__name__}, got {value!r}")
        if self.min is not None and value < self.min:
            raise ParamError(name, f"must be >= {self.min}, got {value!r}")
        if self.max is not None and value > self.max:
            raise ParamError(name, f"must be <= {self.max}, got {value!r}")
        return value

    def schema(self) -> dict[str, Any]:
        json_type = {int: "integer", float: "number", bool: "boolean", str: "string"}.get(
            self.type, "string"
        )
        out: dict[str, Any] = {"type": json_type, "default": self.default}
        if self.min is not None:
            out["minimum"] = self.min
        if self.max is not None:
            out["maximum"] = self.max
        if self.help:
            out["description"] = self.help
        return out


class Strategy:
    """Base class for strategy plugins."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    params: ClassVar[dict[str, Param]] = {}
    # Whether negative exposure (short) is allowed; long-only strategies clip at 0.
    allow_short: ClassVar[bool] = False
    # How many bars generate_signals needs before its output means anything.
    warmup_bars: ClassVar[int] = 0

    @classmethod
    def validate_params(cls, values: dict[str, Any] | None) -> dict[str, Any]:
        """Defaults overlaid with `values`, each checked; raises ParamError naming the param."""
        values = dict(values or {})
        # Protective exits (stop_loss_pct, take_profit_pct, trailing_pct) are every strategy's:
        # checked here, kept only when given, and never passed to the strategy's own rules.
        exits = {key: values.pop(key) for key in protective.KEYS if key in values}
        unknown = sorted(set(values) - set(cls.params))
        if unknown:
            raise ParamError(unknown[0], "unknown parameter")
        merged = {key: spec.default for key, spec in cls.params.items()} | values
        # Defaults are checked too: a plugin with an out-of-range default fails to load.
        cleaned = {key: cls.params[key].clean(key, value) for key, value in merged.items()}
        cls.check_params(cleaned)
        try:
            cleaned |= protective.clean(exits)
        except protective.ExitsError as exc:
            raise ParamError(exc.param, exc.message) from None
        return cleaned

    @classmethod
    def check_params(cls, params: dict[str, Any]) -> None:
        """Cross-parameter rules (fast < slow, ...); raise ParamError."""

    @classmethod
    def params_schema(cls) -> dict[str, Any]:
        return {key: spec.schema() for key, spec in cls.params.items()}

    @classmethod
    def required_bars(cls, params: dict[str, Any]) -> int:
        """How many trailing bars live execution loads to compute the last signal."""
        return max(cls.warmup_bars, 2) + 1

    @classmethod
    def history_bars(cls, params: dict[str, Any]) -> int:
        """How many trailing bars live execution loads (>= required_bars). Strategies whose
        position depends on older history (latched entries, slow smoothing) ask for more, so
        the live signal matches a backtest over the full history."""
        return cls.required_bars(params)

    def generate_signals(self, bars: pd.DataFrame, params: dict[str, Any]) -> pd.Series:
        """Target exposure in [-1, 1] per bar; `bars` has open/high/low/close/volume columns
        indexed by UTC timestamp. Must use only data up to each bar (no look-ahead)."""
        raise NotImplementedError

    def signals_cached(
        self, bars: pd.DataFrame, params: dict[str, Any], cache: dict[Any, Any]
    ) -> np.ndarray:
        """`generate_signals` as a numpy array, for parameter searches: `cache` is one dict per
        bars frame, shared by every combination evaluated on it, so a strategy can compute each
        indicator window once (SmaCrossover does). Must equal `generate_signals` exactly;
        float64, or bool for a strategy that is only ever fully in (True) or out."""
        return np.asarray(self.generate_signals(bars, params), dtype=np.float64)

    def plot(self, bars: pd.DataFrame, params: dict[str, Any]) -> dict[str, pd.Series]:
        """Indicator lines to draw over the price chart (label -> one value per bar, NaN where
        undefined). Research result pages draw them; none by default."""
        return {}
