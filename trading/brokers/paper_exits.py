"""The paper broker's protective exits: bracket/OTO/OCO legs and trailing stops, matched by
the rules in `core.protective` (the backtest engine uses the same ones).

Matching is a function of a price path: `exits_on_path` takes one bar, or one price
(`PricePath.tick`) for a live quote. The exits of one group are matched together, so that on a
path that crosses both the stop and the take-profit exactly one fills (the stop, unless the path
opened through the take-profit); the sibling is canceled when the fill is recorded
(trading.services.legs).
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

from core import protective
from core.protective import PricePath
from marketdata import calendar
from trading.brokers.base import BrokerOrder

CENT = Decimal("0.0001")
SIX = Decimal("0.000001")
WORKING = ("new", "accepted", "partially_filled")


def is_exit_order(order) -> bool:
    """A leg, an OCO's take-profit, or a trailing stop: matched by the exit rules."""
    return (
        order.parent_id is not None or order.order_class == "oco" or order.type == "trailing_stop"
    )


def exit_group(order) -> list:
    """The working exits of the order's group (itself alone for a trailing stop)."""
    from trading.models import Order

    if order.type == "trailing_stop" and order.parent_id is None:
        return [order]
    root = order.parent_id or order.pk
    members = Order.objects.filter(status__in=WORKING, market_time__isnull=False).filter(
        parent_id=root
    ) | Order.objects.filter(
        pk=root, order_class="oco", status__in=WORKING, market_time__isnull=False
    )
    return list(members.order_by("pk"))


def _role(order) -> str:
    if order.leg_role:
        return order.leg_role
    return protective.TAKE_PROFIT if order.type == "limit" else protective.STOP_LOSS


def exits_on_path(
    broker, members: list, path: PricePath, executed_at: datetime
) -> BrokerOrder | None:
    """Match one group of working exits against one price path; the filled exit's state, or
    None. A trailing stop's mark and a stop-limit's trigger are kept on the order rows."""
    from trading.models import Order

    if not members:
        return None
    side = members[0].side
    if len(members) == 1 and members[0].type == "trailing_stop":
        order = members[0]
        mark = order.hwm if order.hwm is not None else Decimal(path.open)
        hit, mark, level = protective.trailing_step(
            side=side,
            mark=mark,
            path=path,
            trail_price=order.trail_price,
            trail_percent=order.trail_percent,
        )
        order.hwm, order.stop_price = mark, level.quantize(SIX, rounding=ROUND_HALF_UP)
        Order.objects.filter(pk=order.pk).update(hwm=order.hwm, stop_price=order.stop_price)
        winner = order if hit.role else None
    else:
        by_role = {_role(m): m for m in members}
        take_profit = by_role.get(protective.TAKE_PROFIT)
        stop = by_role.get(protective.STOP_LOSS)
        hit = protective.exit_hit(
            side=side,
            path=path,
            take_profit=take_profit.limit_price if take_profit else None,
            stop=stop.stop_price if stop else None,
            stop_limit=stop.limit_price if stop and stop.type == "stop_limit" else None,
            stop_triggered=bool(stop and stop.stop_triggered),
        )
        if stop is not None and hit.stop_triggered != stop.stop_triggered:
            stop.stop_triggered = hit.stop_triggered
            Order.objects.filter(pk=stop.pk).update(stop_triggered=hit.stop_triggered)
        winner = by_role.get(hit.role) if hit.role else None
    if winner is None:
        return None
    refused = _exceeds_position(winner)
    if refused is not None:
        return refused
    base = Decimal(hit.price)
    price = (
        broker.fill_price(base, winner.side)
        if hit.market
        else base.quantize(CENT, rounding=ROUND_HALF_UP)
    )
    return broker._fill(winner, price, executed_at)


def _exceeds_position(order) -> BrokerOrder | None:
    """An exit only closes: one larger than what is left of the position (closed meanwhile by
    another order) is canceled instead of opening the other side, as a broker refuses it."""
    from trading.brokers.paper import _resting_state
    from trading.models import Position

    held = (
        Position.objects.filter(session_id=order.session_id, symbol=order.symbol)
        .values_list("qty", flat=True)
        .first()
    ) or Decimal("0")
    closable = held if order.side == "sell" else -held
    if closable >= order.qty - order.filled_qty:
        return None
    return _resting_state(
        order,
        status="canceled",
        reject_reason=f"exit of {order.qty - order.filled_qty} exceeds the position ({held})",
    )


def exits_at_price(broker, symbol: str, price: Decimal, at: datetime):
    """The working exits of `symbol` against one price (a live quote): yields the state of each
    exit that fills, one per group, for the caller to record (order_record_broker_state), as
    `orders_after_bars` does for bars."""
    from trading.models import Order

    seen: set = set()
    working = Order.objects.filter(
        symbol=symbol, status__in=WORKING, market_time__isnull=False, market_time__lte=at
    ).order_by("created_at")
    for order in working:
        if not is_exit_order(order):
            continue
        group = order.parent_id or order.pk
        if group in seen:
            continue
        seen.add(group)
        members = exit_group(order)
        marks = [(m.hwm, m.stop_price) for m in members]
        state = exits_on_path(broker, members, PricePath.tick(Decimal(price)), at)
        moved = len(members) == 1 and marks[0] != (members[0].hwm, members[0].stop_price)
        if state is None and moved:
            # A trailing stop whose mark moved: reported, so it is recorded and published.
            from trading.brokers.paper import _resting_state

            state = _resting_state(members[0])
        if state is not None:
            yield state


def match_exit_bars(broker, order) -> BrokerOrder | None:
    """The group's state after the bars it has not seen yet, or None when no exit fills."""
    from marketdata.models import Bar
    from trading.models import Order

    members = exit_group(order)
    if not members:
        return None
    start = min(m.market_time for m in members)
    bars = Bar.objects.filter(symbol=order.symbol, timeframe="5Min", timestamp__gte=start)
    expiries = [m.expires_at for m in members if m.expires_at is not None]
    if expiries:
        bars = bars.filter(timestamp__lt=min(expiries))
    marks = [(m.hwm, m.stop_price) for m in members]
    for bar in bars.order_by("timestamp"):
        path = PricePath(Decimal(bar.open), Decimal(bar.high), Decimal(bar.low), Decimal(bar.close))
        seen = bar.timestamp + calendar.BAR
        Order.objects.filter(pk__in=[m.pk for m in members]).update(market_time=seen)
        state = exits_on_path(broker, members, path, seen)
        if state is not None:
            return state
    if len(members) == 1 and marks[0] != (members[0].hwm, members[0].stop_price):
        # A trailing stop that moved: reported, so its new mark is recorded and published.
        from trading.brokers.paper import _resting_state

        return _resting_state(members[0])
    return None
