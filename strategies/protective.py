"""Protective exits a strategy may declare in its params: `stop_loss_pct`, `take_profit_pct`
(percent from the entry's reference price), `trailing_pct` (percent behind the best price).

One declaration, two executions that cannot drift apart:

- live (strategies.live_exits): an entry from flat is sent as a bracket (both levels) or an OTO
  (one), or followed by a trailing stop; the paper broker runs them by `core.protective`;
- backtests (`apply_exits`, used by strategies.engine.run_backtest only when exits are
  declared): the same `core.protective` rules, bar by bar, on the same levels.

The reference price of both levels is the close of the bar whose signal opened the trade (live:
the last close when the order is sent; backtest: the close before the entry bar), rounded to the
cent as a broker takes them. Exits work from the bar after the signal bar. After a protective
exit the strategy stays flat until its target changes (it does not re-enter the same signal).
A trailing stop cannot be a leg (Alpaca's rule), so `trailing_pct` excludes the two others.
No Django here: the engine imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np

from core import protective as rules
from core.protective import PricePath

KEYS = ("stop_loss_pct", "take_profit_pct", "trailing_pct")
CENT = Decimal("0.01")


class ExitsError(ValueError):
    def __init__(self, param: str, message: str) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.message = message


@dataclass(frozen=True)
class Exits:
    stop_loss_pct: float | None = None
    take_profit_pct: float | None = None
    trailing_pct: float | None = None

    @property
    def any(self) -> bool:
        return any(
            v is not None for v in (self.stop_loss_pct, self.take_profit_pct, self.trailing_pct)
        )


def clean(values: dict[str, Any]) -> dict[str, float]:
    """The protective keys of `values`, checked: numbers in (0, 100); trailing alone."""
    cleaned = {}
    for key in KEYS:
        if key not in values or values[key] is None:
            continue
        value = values[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not (0 < value < 100):
            raise ExitsError(key, f"must be a percentage in (0, 100), got {value!r}")
        cleaned[key] = float(value)
    if "trailing_pct" in cleaned and len(cleaned) > 1:
        raise ExitsError(
            "trailing_pct", "a trailing stop cannot be combined with stop_loss_pct/take_profit_pct"
        )
    return cleaned


def split(params: dict[str, Any]) -> tuple[dict[str, Any], Exits]:
    """(the strategy's own params, the declared exits)."""
    own = {k: v for k, v in params.items() if k not in KEYS}
    return own, Exits(**{k: params[k] for k in KEYS if params.get(k) is not None})


def levels(reference: Any, long: bool, exits: Exits) -> tuple[Decimal | None, Decimal | None]:
    """(take-profit limit, stop) for a trade opened at `reference`, rounded to the cent."""
    ref = Decimal(str(reference))
    up = 1 if long else -1

    def at(pct: float | None, direction: int) -> Decimal | None:
        if pct is None:
            return None
        price = ref * (1 + direction * Decimal(str(pct)) / 100)
        return price.quantize(CENT, rounding=ROUND_HALF_UP)

    return at(exits.take_profit_pct, up), at(exits.stop_loss_pct, -up)


def apply_exits(
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    held: np.ndarray,
    exits: Exits,
    slip: float,
) -> tuple[np.ndarray, np.ndarray]:
    """The held exposure with protective exits applied, and the exit prices per bar.

    Returns (held, exit_open): a trade whose exit fires on bar b is flat from bar b + 1 until the
    target next changes, and its exit is booked at bar b + 1's slot at the exit's price
    (`exit_open[b + 1]`, pre-divided by the engine's slippage for a limit exit, which the paper
    broker fills without slippage). The equity curve therefore shows the position through bar
    b's close; cash and the trade's P&L are exact. An exit on the last bar is booked on it.
    """
    n = held.shape[0]
    held = held.copy()
    exit_open = open_.astype(np.float64, copy=True)
    changes = np.flatnonzero(held[1:] != held[:-1]) + 1 if n > 1 else np.empty(0, np.int64)
    bounds = np.concatenate((changes, [n]))
    for k, entry in enumerate(changes):
        sign = held[entry]
        if sign == 0 or entry == 0:
            continue
        end = int(bounds[k + 1])
        long = sign > 0
        side = "sell" if long else "buy"
        take_profit, stop = levels(close[entry - 1], long, exits)
        tp = float(take_profit) if take_profit is not None else None
        sl = float(stop) if stop is not None else None
        mark = float(close[entry - 1])  # a trailing stop starts from the last price
        for bar in range(entry, end):
            path = PricePath(open_[bar], high[bar], low[bar], close[bar])
            if exits.trailing_pct is not None:
                hit, mark, _level = rules.trailing_step(
                    side=side, mark=mark, path=path, trail_percent=exits.trailing_pct
                )
            else:
                hit = rules.exit_hit(side=side, path=path, take_profit=tp, stop=sl)
            if hit.role is None:
                continue
            slot = bar + 1 if bar + 1 < n else bar
            if slot == entry:
                break  # entered and hit on the very last bar: no slot to book it in
            held[slot:end] = 0.0
            direction = 1.0 if long else -1.0
            exit_open[slot] = hit.price if hit.market else hit.price / (1.0 - slip * direction)
            break
    return held, exit_open
