"""The exit rules of protective orders, shared by the paper broker (Decimal prices) and the
backtest engine (floats), so that the two cannot drift apart.

Everything is a function of a price path: one bar (open, high, low, close) or a single price
(`PricePath.tick(price)`, for live quotes). Within a bar the order of the high and the low is
unknown, so the rules are the conservative ones most backtesters use:

- the open comes first: a bar that opens through the stop fills the stop at the open (a gap
  down for a long), and one that opens through the take-profit fills the take-profit at the open;
- otherwise, when the bar's range reaches both the stop and the take-profit, **the stop fills**
  (the worse outcome is assumed) and the take-profit is canceled;
- a stop fills at its stop price (or the open when it gapped through), as a market order, so the
  caller adds its slippage; a take-profit fills at its limit (or the better open) with none;
- a stop-limit's stop triggers first; it fills at once when its limit is still reachable from the
  trigger price, else it rests as a limit order (`stop_triggered`) for later paths;
- a trailing stop trails the best price seen: the open moves its mark before the stop is checked
  (it is the first price of the bar), the bar's high (low, for a buy-to-cover) only after,
  for the next path.

Exactly one exit fills per path; `Hit.role` says which.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TAKE_PROFIT = "take_profit"
STOP_LOSS = "stop_loss"


@dataclass(frozen=True)
class PricePath:
    open: Any
    high: Any
    low: Any
    close: Any

    @classmethod
    def tick(cls, price: Any) -> PricePath:
        return cls(price, price, price, price)


@dataclass(frozen=True)
class Hit:
    role: str | None  # TAKE_PROFIT, STOP_LOSS or None (nothing filled)
    price: Any  # the base fill price (before the caller's slippage), or None
    stop_triggered: bool  # a stop-limit's stop has been reached (it now rests as a limit)
    # Whether the fill is a stop that became a market order (the caller adds slippage).
    market: bool = False


def exit_hit(
    *,
    side: str,
    path: PricePath,
    take_profit: Any = None,
    stop: Any = None,
    stop_limit: Any = None,
    stop_triggered: bool = False,
) -> Hit:
    """Which exit of a group fills on `path`, and at what price. `side` is the exits' side:
    "sell" closes a long, "buy" covers a short. Either exit may be None (an OTO's one leg)."""
    sell = side == "sell"
    o, hi, lo = path.open, path.high, path.low

    def through(level: Any, price: Any) -> bool:  # the price is at or beyond a stop
        return price <= level if sell else price >= level

    def reaches(limit: Any, price: Any) -> bool:  # a limit exit can fill at this price
        return price >= limit if sell else price <= limit

    best = hi if sell else lo  # the path's best price for the exit
    worst = lo if sell else hi
    if stop is not None and not stop_triggered and through(stop, o):
        # Gapped through the stop at the open.
        if stop_limit is None:
            return Hit(STOP_LOSS, o, True, market=True)
        if reaches(stop_limit, o):
            return Hit(STOP_LOSS, o, True)
        stop_triggered = True
    if take_profit is not None and reaches(take_profit, o):
        return Hit(TAKE_PROFIT, o, stop_triggered)
    if stop is not None and not stop_triggered and through(stop, worst):
        if stop_limit is None:
            return Hit(STOP_LOSS, stop, True, market=True)
        stop_triggered = True
        if reaches(stop_limit, stop):
            return Hit(STOP_LOSS, stop, True)
    if stop_triggered and stop_limit is not None and reaches(stop_limit, best):
        # The stop-limit rests at its limit; both limits reachable: the stop's (nearer) first.
        return Hit(STOP_LOSS, stop_limit, True)
    if take_profit is not None and reaches(take_profit, best):
        return Hit(TAKE_PROFIT, take_profit, stop_triggered)
    return Hit(None, None, stop_triggered)


def trail_level(*, side: str, mark: Any, trail_price: Any = None, trail_percent: Any = None) -> Any:
    """The stop of a trailing stop whose best price so far is `mark`."""
    sell = side == "sell"
    if trail_price is not None:
        return mark - trail_price if sell else mark + trail_price
    hundred = type(trail_percent)(100)
    return mark * (1 - trail_percent / hundred) if sell else mark * (1 + trail_percent / hundred)


def trail_mark(*, side: str, mark: Any, price: Any) -> Any:
    """The best price seen: the high-water mark for a sell, the low-water mark for a buy."""
    if mark is None:
        return price
    return max(mark, price) if side == "sell" else min(mark, price)


def trailing_step(
    *, side: str, mark: Any, path: PricePath, trail_price: Any = None, trail_percent: Any = None
) -> tuple[Hit, Any, Any]:
    """One path of a trailing stop: (the hit, the new mark, the stop after the path)."""
    mark = trail_mark(side=side, mark=mark, price=path.open)
    level = trail_level(side=side, mark=mark, trail_price=trail_price, trail_percent=trail_percent)
    hit = exit_hit(side=side, path=path, stop=level)
    if hit.role is not None:
        return hit, mark, level
    mark = trail_mark(side=side, mark=mark, price=path.high if side == "sell" else path.low)
    level = trail_level(side=side, mark=mark, trail_price=trail_price, trail_percent=trail_percent)
    return hit, mark, level
