"""Every state change of the trading domain: one function per use case.

API views, strategies, admin actions and tasks all come through here, so the kill switch, the
risk checks, idempotency and the events hold on every path.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal

from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from streaming import events
from streaming.publish import publish
from trading import risk, selectors
from trading.brokers import get_broker
from trading.brokers.base import BrokerError, BrokerOrder, OrderRequest
from trading.exceptions import (
    IllegalTransition,
    InsufficientBuyingPower,
    InvalidOrder,
    NoRunningSession,
    OrderRejected,
    TradingHalted,
    UnknownSymbol,
)
from trading.models import (
    OPEN_STATUSES,
    EquitySnapshot,
    KillSwitch,
    Order,
    OrderSide,
    OrderSource,
    OrderStatus,
    OrderType,
    Position,
    SessionMode,
    SessionStatus,
    TimeInForce,
    Trade,
    TradingSession,
)

logger = logging.getLogger(__name__)

ZERO = Decimal("0")
SIX = Decimal("0.000001")

S = OrderStatus
# Which status may follow which. Anything else is a bug or a broker surprise, and raises.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING_SUBMIT: frozenset(
        {S.NEW, S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.REJECTED, S.CANCELED}
    ),
    S.NEW: frozenset({S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.REJECTED}),
    S.ACCEPTED: frozenset({S.NEW, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.REJECTED}),
    S.PARTIALLY_FILLED: frozenset({S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED}),
    S.FILLED: frozenset(),
    S.CANCELED: frozenset(),
    S.EXPIRED: frozenset(),
    S.REJECTED: frozenset(),
}


def order_transition(order: Order, status: str) -> None:
    if status == order.status:
        return
    if status not in TRANSITIONS[order.status]:
        raise IllegalTransition(
            f"order {order.id} cannot go from {order.status} to {status}",
            details={"from": order.status, "to": status},
        )
    order.status = status


# --- sessions -------------------------------------------------------------------------------------


def session_start(
    *, mode: str = SessionMode.PAPER, starting_cash: Decimal | None = None
) -> TradingSession:
    """Start a new session; refuses while another one runs."""
    cash = settings.PAPER_STARTING_CASH if starting_cash is None else starting_cash
    try:
        with transaction.atomic():
            session = TradingSession.objects.create(
                mode=mode,
                broker=settings.BROKER,
                status=SessionStatus.RUNNING,
                starting_cash=cash,
                starting_equity=cash,
                cash=cash,
            )
    except IntegrityError as exc:
        raise InvalidOrder("a session is already running", code="session_running") from exc
    publish(events.STATUS, selectors.status_get())
    return session


def session_ensure_running() -> TradingSession:
    """The running session, starting a paper session if there is none (first run)."""
    session = selectors.session_current()
    if session is not None:
        return session
    try:
        return session_start()
    except InvalidOrder:
        return selectors.session_current()


def session_stop(*, session: TradingSession, reason: str = "") -> TradingSession:
    """Stop a session: its open orders are canceled first."""
    for order in Order.objects.filter(session=session, status__in=OPEN_STATUSES):
        order_cancel(order=order, reason="session stopped")
    with transaction.atomic():
        session = TradingSession.objects.select_for_update().get(pk=session.pk)
        if session.status != SessionStatus.STOPPED:
            session.status = SessionStatus.STOPPED
            session.stopped_at = timezone.now()
            session.stop_reason = reason
            session.save(update_fields=["status", "stopped_at", "stop_reason"])
    publish(events.STATUS, selectors.status_get())
    return session


# --- kill switch -----------------------------------------------------------------------------------


def trading_halt(*, reason: str, by: str = "", flatten: bool = False) -> KillSwitch:
    """Engage the kill switch: refuse new orders, cancel open ones, optionally flatten."""
    with transaction.atomic():
        switch, _ = KillSwitch.objects.select_for_update().get_or_create(pk=1)
        switch.engaged = True
        switch.reason = reason[:255] or "halted"
        switch.changed_at = timezone.now()
        switch.changed_by = by[:150]
        switch.save()
    for order in Order.objects.filter(status__in=OPEN_STATUSES):
        try:
            order_cancel(order=order, reason=f"kill switch: {switch.reason}")
        except IllegalTransition:
            logger.warning("order %s changed state while the kill switch canceled it", order.pk)
    if flatten:
        positions_flatten(reason=switch.reason)
    publish(events.STATUS, selectors.status_get())
    return switch


def trading_resume(*, by: str = "") -> KillSwitch:
    with transaction.atomic():
        switch, _ = KillSwitch.objects.select_for_update().get_or_create(pk=1)
        switch.engaged = False
        switch.reason = ""
        switch.changed_at = timezone.now()
        switch.changed_by = by[:150]
        switch.save()
    publish(events.STATUS, selectors.status_get())
    return switch


def positions_flatten(*, reason: str) -> list[Order]:
    """Close every open position of the current session with market orders (kill switch path)."""
    session = selectors.session_current() or selectors.session_latest()
    if session is None:
        return []
    orders = []
    for position in Position.objects.filter(session=session).exclude(qty=0):
        side = OrderSide.SELL if position.qty > 0 else OrderSide.BUY
        result = order_submit(
            symbol=position.symbol,
            side=side,
            qty=abs(position.qty),
            source=OrderSource.ADMIN,
            client_order_id=f"flatten-{position.symbol}-{uuid.uuid4().hex[:12]}",
            session=session,
            bypass_halt=True,
        )
        orders.append(result.order)
    return orders


# --- orders ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmitResult:
    order: Order
    created: bool


def _validate(
    *,
    symbol: str,
    side: str,
    qty: Decimal,
    type: str,
    time_in_force: str,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    client_order_id: str | None,
) -> None:
    if side not in OrderSide.values:
        raise InvalidOrder(f"side must be one of {OrderSide.values}", details={"field": "side"})
    if type not in OrderType.values:
        raise InvalidOrder(f"type must be one of {OrderType.values}", details={"field": "type"})
    if time_in_force not in TimeInForce.values:
        raise InvalidOrder(
            f"time_in_force must be one of {TimeInForce.values}", details={"field": "time_in_force"}
        )
    if not isinstance(qty, Decimal) or not qty.is_finite() or qty <= 0:
        raise InvalidOrder("qty must be a positive number", details={"field": "qty"})
    if qty.as_tuple().exponent < -6 or qty >= Decimal("1e12"):
        raise InvalidOrder("qty has too many digits", details={"field": "qty"})
    if type in (OrderType.LIMIT, OrderType.STOP_LIMIT) and (
        limit_price is None or limit_price <= 0
    ):
        raise InvalidOrder(
            "limit_price is required and must be positive", details={"field": "limit_price"}
        )
    if type in (OrderType.STOP, OrderType.STOP_LIMIT) and (stop_price is None or stop_price <= 0):
        raise InvalidOrder(
            "stop_price is required and must be positive", details={"field": "stop_price"}
        )
    if client_order_id is not None and not (1 <= len(client_order_id) <= 128):
        raise InvalidOrder(
            "client_order_id must be 1 to 128 characters", details={"field": "client_order_id"}
        )


def order_submit(
    *,
    symbol: str,
    side: str,
    qty: Decimal,
    type: str = OrderType.MARKET,
    time_in_force: str = TimeInForce.DAY,
    limit_price: Decimal | None = None,
    stop_price: Decimal | None = None,
    client_order_id: str | None = None,
    source: str = OrderSource.API,
    strategy_config=None,
    session: TradingSession | None = None,
    bypass_halt: bool = False,
) -> SubmitResult:
    """Validate, refuse when halted, check risk, commit the order, send it, record the answer.

    The same client_order_id returns the existing order and never reaches the broker twice: the
    database's unique constraint decides, so concurrent retries cannot both insert.
    """
    symbol = symbol.upper().strip()
    _validate(
        symbol=symbol,
        side=side,
        qty=qty,
        type=type,
        time_in_force=time_in_force,
        limit_price=limit_price,
        stop_price=stop_price,
        client_order_id=client_order_id,
    )
    if client_order_id:
        existing = Order.objects.filter(client_order_id=client_order_id).first()
        if existing is not None:
            return SubmitResult(existing, created=False)
    if not bypass_halt and selectors.kill_switch_get().engaged:
        raise TradingHalted(
            "trading is halted by the kill switch",
            details={"reason": selectors.kill_switch_get().reason},
        )
    session = session or selectors.session_current()
    if session is None:
        raise NoRunningSession("no trading session is running")
    from marketdata.selectors import last_price

    price = last_price(symbol)
    if price is None:
        raise UnknownSymbol(
            f"unknown symbol {symbol!r}: no market data", details={"symbol": symbol}
        )
    risk.check_order(
        session=session, symbol=symbol, side=side, qty=qty, price=price, order_type=type
    )

    client_order_id = client_order_id or f"trp-{uuid.uuid4().hex}"
    try:
        with transaction.atomic():
            order = Order.objects.create(
                client_order_id=client_order_id,
                session=session,
                strategy_config=strategy_config,
                source=source,
                symbol=symbol,
                side=side,
                type=type,
                qty=qty,
                limit_price=limit_price,
                stop_price=stop_price,
                time_in_force=time_in_force,
                status=OrderStatus.PENDING_SUBMIT,
            )
    except IntegrityError:
        # A concurrent request with the same client_order_id won the insert.
        return SubmitResult(Order.objects.get(client_order_id=client_order_id), created=False)

    publish(events.ORDER_UPDATE, selectors.order_payload(order))
    order = order_send(order=order, bypass_halt=bypass_halt)
    return SubmitResult(order, created=True)


def order_send(*, order: Order, bypass_halt: bool = False) -> Order:
    """Send a committed pending_submit order to the broker and record the answer.

    A transient broker failure leaves the order pending_submit (it is never forgotten) and
    schedules a retry that looks the order up by client_order_id before resending anything.
    """
    if not bypass_halt and selectors.kill_switch_get().engaged:
        return order_cancel(order=order, reason="kill switch engaged before submission")
    request = OrderRequest(
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        qty=order.qty,
        time_in_force=order.time_in_force,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        session_id=order.session_id,
    )
    Order.objects.filter(pk=order.pk).update(submit_attempts=order.submit_attempts + 1)
    broker = get_broker()
    try:
        answer = async_to_sync(broker.submit_order)(request)
    except BrokerError as exc:
        if exc.permanent:
            order = order_reject(order=order, reason=exc.message, code=exc.code)
            if exc.code == "insufficient_buying_power":
                raise InsufficientBuyingPower(
                    exc.message, details={"order_id": str(order.pk)}
                ) from exc
            raise OrderRejected(
                exc.message, details={"order_id": str(order.pk)}, code=exc.code
            ) from exc
        logger.warning("order %s left pending_submit: %s", order.client_order_id, exc.message)
        _schedule_resubmit(order)
        order.refresh_from_db()
        return order
    return order_record_broker_state(order_id=order.pk, state=answer)


def _schedule_resubmit(order: Order) -> None:
    from trading.tasks import order_resubmit

    transaction.on_commit(lambda: _enqueue(order_resubmit, str(order.pk)))


def _enqueue(task, *args) -> None:
    try:
        task.apply_async(args=args, countdown=2)
    except Exception:  # noqa: BLE001 - the reconciler finds pending_submit orders anyway
        logger.warning("could not enqueue %s%s", task.name, args, exc_info=True)


def order_resubmit(*, order_id: uuid.UUID | str) -> Order:
    """Retry a pending_submit order: first ask the broker whether it has it, then resend."""
    order = Order.objects.get(pk=order_id)
    if order.status != OrderStatus.PENDING_SUBMIT:
        return order
    broker = get_broker()
    try:
        known = async_to_sync(broker.get_order_by_client_id)(order.client_order_id)
    except BrokerError as exc:
        logger.warning("lookup of %s failed: %s", order.client_order_id, exc.message)
        _schedule_resubmit(order)
        return order
    if known is not None:
        return order_record_broker_state(order_id=order.pk, state=known)
    try:
        return order_send(order=order)
    except (OrderRejected, InsufficientBuyingPower):
        order.refresh_from_db()
        return order


def order_reject(*, order: Order, reason: str, code: str = "rejected") -> Order:
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        order_transition(order, OrderStatus.REJECTED)
        order.reject_reason = f"{code}: {reason}"[:255]
        order.save(update_fields=["status", "reject_reason", "updated_at"])
        publish(events.ORDER_UPDATE, selectors.order_payload(order))
    return order


def order_cancel(*, order: Order, reason: str = "canceled") -> Order:
    """Cancel an open order at the broker and locally; a final order is left as it is."""
    if order.status not in OPEN_STATUSES:
        raise IllegalTransition(
            f"order {order.pk} is {order.status} and cannot be canceled",
            details={"status": order.status},
        )
    if order.broker_order_id:
        try:
            async_to_sync(get_broker().cancel_order)(order.broker_order_id)
        except BrokerError as exc:
            if not exc.permanent:
                raise
            logger.info("broker refused cancel of %s: %s", order.pk, exc.message)
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status in OPEN_STATUSES:
            order_transition(order, OrderStatus.CANCELED)
            order.canceled_at = timezone.now()
            order.reject_reason = reason[:255]
            order.save(update_fields=["status", "canceled_at", "reject_reason", "updated_at"])
            publish(events.ORDER_UPDATE, selectors.order_payload(order))
    return order


def order_record_broker_state(*, order_id, state: BrokerOrder) -> Order:
    """Bring our order in line with the broker's view: new fills, then the status."""
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order_id)
        if state.broker_order_id and not order.broker_order_id:
            order.broker_order_id = state.broker_order_id
        if order.submitted_at is None:
            order.submitted_at = state.submitted_at or timezone.now()
        new_qty = state.filled_qty - order.filled_qty
        if new_qty > 0:
            if state.fills and sum((f.qty for f in state.fills), ZERO) == new_qty:
                price = sum((f.qty * f.price for f in state.fills), ZERO) / new_qty
                fee = sum((f.fee for f in state.fills), ZERO)
                executed_at = state.fills[-1].executed_at
            else:
                # The broker reports cumulative fills: the new part's price follows from the averages.
                total = (state.filled_avg_price or ZERO) * state.filled_qty
                already = (order.filled_avg_price or ZERO) * order.filled_qty
                price = (total - already) / new_qty
                fee = ZERO
                executed_at = timezone.now()
            _fill_apply(
                order=order,
                qty=new_qty,
                price=price.quantize(SIX),
                fee=fee,
                executed_at=executed_at,
            )
        if state.status == OrderStatus.PENDING_SUBMIT:
            target = order.status
        else:
            target = state.status
        order_transition(order, target)
        if target == OrderStatus.REJECTED and state.reject_reason:
            order.reject_reason = state.reject_reason[:255]
        order.save()
        publish(events.ORDER_UPDATE, selectors.order_payload(order))
    return order


def _fill_apply(*, order: Order, qty: Decimal, price: Decimal, fee: Decimal, executed_at) -> Trade:
    """Record one fill: the trade row, the position, the session's cash, in the caller's transaction."""
    session = TradingSession.objects.select_for_update().get(pk=order.session_id)
    position, _ = Position.objects.select_for_update().get_or_create(
        session=session, symbol=order.symbol, defaults={"last_price": price}
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
    position.save()

    notional = (qty * price).quantize(SIX)
    session.cash += -notional - fee if order.side == OrderSide.BUY else notional - fee
    session.save(update_fields=["cash"])

    trade = Trade.objects.create(
        order=order,
        session=session,
        symbol=order.symbol,
        side=order.side,
        qty=qty,
        price=price,
        fee=fee,
        realized_pnl=realized,
        executed_at=executed_at,
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

    publish(events.TRADE_UPDATE, selectors.trade_payload(trade))
    publish(events.POSITION_UPDATE, selectors.position_payload(position))
    publish(events.PERFORMANCE_UPDATE, selectors.performance_get(session))
    return trade


# --- marking to market ------------------------------------------------------------------------------


def session_mark_to_market(
    *, session: TradingSession | None = None, at=None
) -> EquitySnapshot | None:
    """Price open positions at the latest bars, snapshot equity, publish the changes."""
    from marketdata.selectors import last_price, market_now

    session = session or selectors.session_current()
    if session is None:
        return None
    with transaction.atomic():
        equity = session.cash
        for position in Position.objects.select_for_update().filter(session=session).exclude(qty=0):
            price = last_price(position.symbol)
            if price is not None and price != position.last_price:
                position.last_price = price
                position.save(update_fields=["last_price", "updated_at"])
                publish(events.POSITION_UPDATE, selectors.position_payload(position))
            equity += position.qty * position.last_price
        snapshot = EquitySnapshot.objects.create(
            session=session, timestamp=at or market_now(), cash=session.cash, equity=equity
        )
        publish(events.PERFORMANCE_UPDATE, selectors.performance_get(session))
    return snapshot
