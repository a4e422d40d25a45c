"""Recording the broker's view of an order: new fills (trade, position, cash), then status."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from core import sql
from streaming import events
from streaming.publish import publish_many
from trading import selectors
from trading.brokers.base import BrokerOrder
from trading.models import (
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    TimeInForce,
    Trade,
    TradingSession,
)
from trading.services.transitions import SIX, ZERO, order_event, order_transition

logger = logging.getLogger(__name__)


# A rejection, or a cancel or expiry the broker decided (e.g. the paper broker's day orders at the
# close), carries the broker's reason.
_CLOSED_WITH_REASON = (OrderStatus.REJECTED, OrderStatus.CANCELED, OrderStatus.EXPIRED)


def order_record_broker_state(
    *, order_id, state: BrokerOrder, repair: str = "", market_time=None
) -> Order:
    """Bring our order in line with the broker's view: new fills, then the status.

    The broker's truth wins over a local-only cancel (one the broker never confirmed because
    the order's broker id was unknown at the time): the order is reopened, logged and published,
    then its fills and status are applied. Any other disagreement raises IllegalTransition.
    `market_time` is the market clock's reading, when the caller has it at hand.
    """
    from trading.brokers import broker_manages_legs
    from trading.services import legs

    native_legs = broker_manages_legs()
    with transaction.atomic():
        if legs.is_grouped(state):
            legs.group_lock(order_id)
        order = selectors.order_lock(order_id)
        if _nothing_new(order, state, native_legs=native_legs):
            return order
        filled_before = order.filled_qty
        locally_canceled = order.status == OrderStatus.CANCELED and not order.broker_order_id
        if locally_canceled and (state.status != OrderStatus.CANCELED or state.filled_qty > 0):
            repair = repair or (
                f"broker reports {state.status} for an order canceled locally "
                f"({order.reject_reason}): recording the broker's state"
            )
            logger.warning("order %s: %s", order.client_order_id, repair)
            order.status = OrderStatus.ACCEPTED
            order.canceled_at = None
        # Recorded, so the send is over: release its lease in the same commit.
        order.send_lease_until = None
        if state.broker_order_id and not order.broker_order_id:
            order.broker_order_id = state.broker_order_id
        if order.submitted_at is None:
            order.submitted_at = state.submitted_at or timezone.now()
        if order.market_time is None and order.status != OrderStatus.HELD:
            set_market_times(order, market_time)
        if state.hwm is not None and order.type == OrderType.TRAILING_STOP:
            order.hwm, order.stop_price = state.hwm, state.stop_price
        fill_events: list[tuple[str, dict]] = []
        new_qty = state.filled_qty - order.filled_qty
        if new_qty > 0:
            if state.fills and sum((f.qty for f in state.fills), ZERO) == new_qty:
                price = sum((f.qty * f.price for f in state.fills), ZERO) / new_qty
                fee = sum((f.fee for f in state.fills), ZERO)
                executed_at = state.fills[-1].executed_at
                trade_id = ",".join(f.broker_trade_id for f in state.fills if f.broker_trade_id)
            else:
                # Cumulative fills: the new part's price follows from the averages.
                total = (state.filled_avg_price or ZERO) * state.filled_qty
                already = (order.filled_avg_price or ZERO) * order.filled_qty
                price = (total - already) / new_qty
                fee = ZERO
                executed_at = timezone.now()
                trade_id = ""
            fill_events = _fill_apply(
                order=order,
                qty=new_qty,
                price=price.quantize(SIX),
                fee=fee,
                executed_at=executed_at,
                broker_trade_id=trade_id[:128],
            )
        target = order.status if state.status == OrderStatus.PENDING_SUBMIT else state.status
        order_transition(order, target)
        if target in _CLOSED_WITH_REASON and state.reject_reason:
            order.reject_reason = state.reject_reason[:255]
        if target in (OrderStatus.CANCELED, OrderStatus.EXPIRED) and order.canceled_at is None:
            order.canceled_at = timezone.now()
        sql.save_existing(order)
        if native_legs:
            leg_events = []
            legs.legs_record_reported(state, record=order_record_broker_state)
        else:
            leg_events = legs.legs_after_record(
                order, filled_before=filled_before, market_time=market_time
            )
        publish_many([*fill_events, *leg_events, (events.ORDER_UPDATE, order_event(order, repair))])
        if leg_events or order.parent_id is not None:
            legs.parent_payload_refresh(order)
    return order


def _nothing_new(order: Order, state: BrokerOrder, *, native_legs: bool) -> bool:
    """Whether the broker's `state` is already behind what is recorded (logged; the order, locked
    by the caller, only loses its send lease and learns its broker id): a leg canceled by its
    sibling's fill (trading.services.legs), or a state with less filled than recorded (a stream
    event overtaken by a REST answer, or the other way round; the quantities are cumulative)."""
    from trading.services import legs

    if not native_legs and legs.state_is_stale(order, state):
        logger.info(
            "order %s is %s already (%s); not recording the broker's %s",
            order.client_order_id,
            order.status,
            order.reject_reason,
            state.status,
        )
        return True
    if state.filled_qty < order.filled_qty:
        logger.info(
            "order %s: broker state with %s filled is older than the %s recorded; ignored",
            order.client_order_id,
            state.filled_qty,
            order.filled_qty,
        )
        order.send_lease_until = None  # the send is over all the same
        if state.broker_order_id and not order.broker_order_id:
            order.broker_order_id = state.broker_order_id
        sql.save_existing(order)
        return True
    return False


def set_market_times(order: Order, now=None) -> None:
    """Stamp the market time of acceptance and, for a day order, its expiry at the close."""
    from marketdata import calendar
    from marketdata.selectors import market_now

    now = now or market_now()
    order.market_time = now
    if order.time_in_force == TimeInForce.DAY:
        # The next close strictly after now: an order accepted at or after a close (the
        # simulated clock stands exactly at 16:00 after the day's last bar) is for the next
        # session, as a real broker treats a day order sent after hours.
        order.expires_at = calendar.next_close(now)


def _fill_apply(
    *,
    order: Order,
    qty: Decimal,
    price: Decimal,
    fee: Decimal,
    executed_at,
    broker_trade_id: str = "",
) -> list[tuple[str, dict]]:
    """Record one fill (trade row, position, session cash) in the caller's transaction;
    returns the trade and position events for the caller to publish with the order's."""
    position = selectors.position_lock(order.session_id, order.symbol)
    if position is None:
        position, _ = Position.objects.select_for_update().get_or_create(
            session_id=order.session_id, symbol=order.symbol, defaults={"last_price": price}
        )
    signed = qty if order.side == OrderSide.BUY else -qty
    old_qty, old_avg = position.qty, position.avg_entry_price
    realized = ZERO
    new_qty = old_qty + signed
    if old_qty == 0 or (old_qty > 0) == (signed > 0):
        position.avg_entry_price = ((abs(old_qty) * old_avg + qty * price) / abs(new_qty)).quantize(
            SIX
        )
    else:
        closing = min(abs(old_qty), qty)
        direction = 1 if old_qty > 0 else -1
        realized = (closing * (price - old_avg) * direction).quantize(SIX)
        if new_qty == 0:
            position.avg_entry_price = ZERO
        elif (new_qty > 0) != (old_qty > 0):
            position.avg_entry_price = price  # flipped through zero: the rest opens at this price
    position.qty = new_qty
    position.last_price = price
    position.realized_pnl += realized
    sql.save_existing(position)

    notional = (qty * price).quantize(SIX)
    # An atomic increment: concurrent fills of other symbols need no lock on the session row.
    # (No save signal: the order's own save in this transaction refreshes cached status.)
    _session_cash_add(
        order.session_id, -notional - fee if order.side == OrderSide.BUY else notional - fee
    )

    trade = Trade.objects.create(
        order=order,
        session_id=order.session_id,
        symbol=order.symbol,
        side=order.side,
        qty=qty,
        price=price,
        fee=fee,
        realized_pnl=realized,
        executed_at=executed_at,
        broker_trade_id=broker_trade_id,
    )
    filled_total = order.filled_qty + qty
    order.filled_avg_price = (
        ((order.filled_avg_price or ZERO) * order.filled_qty + qty * price) / filled_total
    ).quantize(SIX)
    order.filled_qty = filled_total
    if filled_total >= order.qty:
        order_transition(order, OrderStatus.FILLED)
        order.filled_at = executed_at
    else:
        order_transition(order, OrderStatus.PARTIALLY_FILLED)

    # No performance_update per fill: the stream's periodic snapshot and each collection's
    # mark-to-market send it; computing it here would cost every order several queries.
    return [
        (events.TRADE_UPDATE, selectors.trade_payload(trade)),
        (events.POSITION_UPDATE, selectors.position_payload(position)),
    ]


def _session_cash_add(session_id: int, amount: Decimal) -> None:
    """Add `amount` to the session's cash in one statement (hand-written: every fill runs it,
    see core.sql)."""
    with transaction.get_connection().cursor() as cursor:
        cursor.execute(
            f"UPDATE {sql.quote(TradingSession._meta.db_table)} SET cash = cash + %s WHERE id = %s",
            [sql.db_value(TradingSession, "cash", amount), session_id],
        )
