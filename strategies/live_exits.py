"""Live execution of a strategy that declares protective exits (strategies.protective).

An entry from flat goes out as a bracket (stop-loss and take-profit) or an OTO (one of them),
market entry, good till canceled; with `trailing_pct`, a trailing stop follows the entry once it
has filled (a trailing stop cannot be a leg). Leaving or reversing cancels the open exits first,
then closes the position. After a protective exit filled, the strategy stays flat until its
target changes: the backtest engine's rule (strategies.protective.apply_exits), so live and
backtest take the same trades.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
from django.db.models import Q

from strategies.protective import Exits, levels


def _exit_orders(config, symbol: str):
    from trading.models import Order, OrderType

    return Order.objects.filter(strategy_config=config, symbol=symbol).filter(
        Q(parent__isnull=False) | Q(type=OrderType.TRAILING_STOP) | Q(order_class="oco")
    )


def _run_start(cls, bars, own: dict[str, Any]):
    """The bar whose signal started the current run of equal targets (its close decided it)."""
    raw = np.asarray(cls().generate_signals(bars, own), dtype=np.float64)
    raw = np.nan_to_num(raw, nan=0.0)
    clipped = np.clip(raw, -1.0 if cls.allow_short else 0.0, 1.0)
    changed = np.flatnonzero(clipped[1:] != clipped[:-1])
    return bars.index[int(changed[-1]) + 1 if changed.shape[0] else 0]


def stopped_out(config, symbol: str, cls, bars, own: dict[str, Any]) -> bool:
    """Whether a protective exit of this config filled in a bar after the one whose signal
    started the current run (an exit in that very bar belonged to the run before)."""
    from marketdata import calendar
    from marketdata.models import Bar
    from marketdata.selectors import bars_recent
    from trading.models import OrderStatus

    last_exit = (
        _exit_orders(config, symbol)
        .filter(status=OrderStatus.FILLED, filled_at__isnull=False)
        .order_by("-filled_at")
        .values_list("filled_at", flat=True)
        .first()
    )
    if last_exit is None:
        return False
    # The signal's history must reach back before the exit to tell when the run began.
    since = Bar.objects.filter(
        symbol=symbol, timeframe="5Min", timestamp__gte=last_exit - 2 * calendar.BAR
    ).count()
    needed = since + max(cls.history_bars(own), cls.required_bars(own))
    if needed > len(bars):
        bars = bars_recent(symbol, needed)
    start = _run_start(cls, bars, own)
    return last_exit > start + calendar.BAR


def symbol_execute(
    *,
    config,
    cls,
    own: dict[str, Any],
    exits: Exits,
    symbol: str,
    bars,
    desired: Decimal,
    current: Decimal,
    price: Decimal,
    session,
) -> tuple[str | None, str, str]:
    """Move one symbol toward `desired` with its exits: (order id, note, error). A refusal
    (risk limit, ...) is the symbol's error; a halt stops the run."""
    from trading.exceptions import DomainError, TradingHalted

    try:
        order_id, note = _move(
            config=config, cls=cls, own=own, exits=exits, symbol=symbol, bars=bars,
            desired=desired, current=current, price=price, session=session,
        )  # fmt: skip
    except TradingHalted:
        raise
    except DomainError as exc:
        return exc.details.get("order_id"), "order refused", f"{symbol}: {exc.code}: {exc.message}"
    return order_id, note, ""


def _move(
    *, config, cls, own, exits, symbol, bars, desired, current, price, session
) -> tuple[str | None, str]:
    from trading.models import OPEN_STATUSES, OrderSource
    from trading.services import order_cancel, order_submit

    bar_time = bars.index[-1]
    base_id = f"s{config.pk}-{symbol}-{bar_time:%Y%m%dT%H%M}"
    common = {
        "symbol": symbol,
        "source": OrderSource.STRATEGY,
        "strategy_config": config,
        "session": session,
    }
    same_side = (desired > 0 and current > 0) or (desired < 0 and current < 0)
    working = _exit_orders(config, symbol).filter(status__in=OPEN_STATUSES)
    if same_side:
        if (
            exits.trailing_pct is not None
            and not working.exists()
            and not stopped_out(config, symbol, cls, bars, own)
        ):
            return _trailing(common, exits, current, base_id)
        return None, "no change"
    closed = None
    if current != 0:
        for order in working:
            order_cancel(order=order, reason="the strategy leaves the position")
        closed = order_submit(
            side="sell" if current > 0 else "buy",
            qty=abs(current),
            client_order_id=f"{base_id}-close",
            **common,
        )
        if desired == 0:
            return str(closed.order.pk), _note(closed)
    if desired == 0:
        return None, "no change"
    if stopped_out(config, symbol, cls, bars, own):
        return None, "stopped out: waiting for a new signal"
    side = "buy" if desired > 0 else "sell"
    if exits.trailing_pct is not None:
        entry = order_submit(side=side, qty=abs(desired), client_order_id=base_id, **common)
        if entry.order.filled_qty > 0:
            signed = entry.order.filled_qty if side == "buy" else -entry.order.filled_qty
            _trailing(common, exits, signed, base_id)
        return str(entry.order.pk), _note(entry)
    take_profit, stop = levels(price, desired > 0, exits)
    entry = order_submit(
        side=side,
        qty=abs(desired),
        client_order_id=base_id,
        time_in_force="gtc",
        order_class="bracket" if take_profit is not None and stop is not None else "oto",
        take_profit={"limit_price": take_profit} if take_profit is not None else None,
        stop_loss={"stop_price": stop} if stop is not None else None,
        **common,
    )
    return str(entry.order.pk), _note(entry)


def _note(result) -> str:
    return "ordered" if result.created else "already ordered for this bar"


def _trailing(common: dict, exits: Exits, held: Decimal, base_id: str) -> tuple[str, str]:
    from trading.services import order_submit

    result = order_submit(
        side="sell" if held > 0 else "buy",
        qty=abs(held),
        type="trailing_stop",
        trail_percent=Decimal(str(exits.trailing_pct)),
        time_in_force="gtc",
        client_order_id=f"{base_id}-trail",
        **common,
    )
    return str(result.order.pk), "trailing stop placed"
