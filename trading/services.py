"""Every state change of the trading domain: one function per use case.

API views, strategies, admin actions and tasks all come through here, so the kill switch, the
risk checks, idempotency and the events hold on every path.

Reliability rules (DESIGN.md §11) and how they hold here:

- An order row is committed as pending_submit before the broker is called. A temporary broker
  failure leaves it pending_submit; the retry task and reconciliation both look it up by
  client_order_id at the broker before anything could be sent again.
- One client_order_id, one order: the database's unique constraint decides, not a prior read.
- The kill switch and the broker's truth. The halt cancels open orders; an order whose broker
  call is in flight at that moment cannot be canceled at the broker yet (we do not know its
  broker id), so the halt cancels it locally. When the broker's answer then arrives, the broker
  wins: a fill is recorded (trade, position, cash) and the order takes the broker's status, with
  the override logged and published. If the broker left it open, `order_send` cancels it at the
  broker right away because the kill switch is set. Reconciliation applies the same rule to any
  order the broker still holds that we canceled locally. So an order is never silently lost and
  a fill is never dropped.
"""

from __future__ import annotations

import logging
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from marketdata.selectors import last_price_and_clock, one_market_reading
from streaming import events
from streaming.publish import publish, publish_many
from trading import risk, selectors
from trading.brokers import get_broker
from trading.brokers.base import BrokerError, BrokerOrder, Fill, OrderRequest
from trading.exceptions import (
    BrokerUnavailable,
    DomainError,
    IllegalTransition,
    InsufficientBuyingPower,
    InvalidOrder,
    NoRunningSession,
    OrderNotCancelable,
    OrderRejected,
    RiskLimitExceeded,
    SessionRunning,
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
from tradingrobot import sql

logger = logging.getLogger(__name__)

ZERO = Decimal("0")
SIX = Decimal("0.000001")

S = OrderStatus
# Which status may follow which. Anything else is a bug or a broker surprise, and raises.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING_SUBMIT: frozenset(
        {S.NEW, S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.REJECTED, S.CANCELED, S.EXPIRED}
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


def _order_event(order: Order, repair: str = "") -> dict:
    payload = selectors.order_payload(order)
    if repair:
        payload["repair"] = repair
    return payload


def _publish_order(order: Order, repair: str = "") -> None:
    publish(events.ORDER_UPDATE, _order_event(order, repair))


# --- sessions -------------------------------------------------------------------------------------


def session_start(
    *,
    mode: str = SessionMode.PAPER,
    starting_cash: Decimal | None = None,
    risk_limits: dict | None = None,
    allow_loosen: bool = False,
) -> TradingSession:
    """Start a new session; refuses (409 session_running) while another one runs, and risk
    limits looser than the settings (403) unless `allow_loosen` (admin only)."""
    if mode not in SessionMode.values:
        raise InvalidOrder(f"mode must be one of {SessionMode.values}", details={"field": "mode"})
    cash = settings.PAPER_STARTING_CASH if starting_cash is None else starting_cash
    if not isinstance(cash, Decimal) or not cash.is_finite() or cash < 0 or cash >= Decimal("1e13"):
        raise InvalidOrder("starting_cash must be a non-negative number", details={"field": "cash"})
    limits = risk.limits_validate(risk_limits, allow_loosen=allow_loosen)
    try:
        with transaction.atomic():
            session = TradingSession.objects.create(
                mode=mode,
                broker=settings.BROKER,
                status=SessionStatus.RUNNING,
                starting_cash=cash,
                starting_equity=cash,
                cash=cash,
                risk_limits=limits,
            )
    except IntegrityError as exc:
        running = selectors.session_current()
        raise SessionRunning(
            "a session is already running; stop it first",
            details={"session_id": running.pk if running else None},
        ) from exc
    publish(events.STATUS, selectors.status_get())
    return session


def session_ensure_running() -> TradingSession:
    """The running session, starting a paper session if there is none (first run)."""
    session = selectors.session_current()
    if session is not None:
        return session
    try:
        return session_start()
    except SessionRunning:
        return selectors.session_current()


def session_stop(*, session: TradingSession, reason: str = "") -> TradingSession:
    """Stop a session: its open orders are canceled first."""
    _cancel_all(Order.objects.filter(session=session, status__in=OPEN_STATUSES), "session stopped")
    with transaction.atomic():
        session = TradingSession.objects.select_for_update().get(pk=session.pk)
        if session.status != SessionStatus.STOPPED:
            session.status = SessionStatus.STOPPED
            session.stopped_at = timezone.now()
            session.stop_reason = reason[:255]
            session.save(update_fields=["status", "stopped_at", "stop_reason"])
    publish(events.STATUS, selectors.status_get())
    return session


def _cancel_all(
    orders, reason: str, filled: list[Order] | None = None
) -> tuple[list[Order], list[dict]]:
    """Cancel each order; one failure (broker down, already filled) never stops the rest.

    An order that filled between the listing and its cancel is not a failure: it goes to
    `filled` (when given) with its fill recorded, as the broker reported it.
    """
    canceled, failed = [], []
    for order in list(orders):
        try:
            canceled.append(order_cancel(order=order, reason=reason))
        except OrderNotCancelable as exc:
            if filled is not None and exc.details.get("status") == OrderStatus.FILLED:
                order.refresh_from_db()
                filled.append(order)
                continue
            logger.warning("could not cancel order %s: %s", order.pk, exc.message)
            failed.append({"order_id": str(order.pk), "code": exc.code, "message": exc.message})
        except DomainError as exc:
            logger.warning("could not cancel order %s: %s", order.pk, exc.message)
            failed.append({"order_id": str(order.pk), "code": exc.code, "message": exc.message})
    return canceled, failed


# --- kill switch ----------------------------------------------------------------------------------


@dataclass
class HaltResult:
    switch: KillSwitch
    canceled: list[Order] = field(default_factory=list)
    cancel_failed: list[dict] = field(default_factory=list)
    # Filled between the listing and the cancel: reported as filled, not as failures.
    filled: list[Order] = field(default_factory=list)
    flatten_orders: list[Order] = field(default_factory=list)
    flatten_failed: list[dict] = field(default_factory=list)


def trading_halt(*, reason: str, by: str = "", flatten: bool = False) -> HaltResult:
    """Engage the kill switch: refuse new orders, cancel open ones, optionally flatten.

    The flag is committed first, so every path refuses new orders before the cancels start.
    """
    with transaction.atomic():
        switch, _ = KillSwitch.objects.select_for_update().get_or_create(pk=1)
        switch.engaged = True
        switch.reason = (reason or "halted")[:255]
        switch.changed_at = timezone.now()
        switch.changed_by = by[:150]
        switch.save()
    logger.warning("kill switch engaged by %s: %s", by or "system", switch.reason)
    result = HaltResult(switch=switch)
    result.canceled, result.cancel_failed = _cancel_all(
        Order.objects.filter(status__in=OPEN_STATUSES).order_by("created_at"),
        f"kill switch: {switch.reason}",
        result.filled,
    )
    if flatten:
        result.flatten_orders, result.flatten_failed = positions_flatten(reason=switch.reason)
    publish(events.STATUS, selectors.status_get())
    return result


def trading_resume(*, by: str = "") -> KillSwitch:
    with transaction.atomic():
        switch, _ = KillSwitch.objects.select_for_update().get_or_create(pk=1)
        switch.engaged = False
        switch.reason = ""
        switch.changed_at = timezone.now()
        switch.changed_by = by[:150]
        switch.save()
    logger.warning("kill switch released by %s", by or "system")
    publish(events.STATUS, selectors.status_get())
    return switch


def positions_flatten(*, reason: str) -> tuple[list[Order], list[dict]]:
    """Close every open position of the current session with market orders (kill switch path)."""
    session = selectors.session_current() or selectors.session_latest()
    if session is None:
        return [], []
    orders, failed = [], []
    for position in Position.objects.filter(session=session).exclude(qty=0):
        side = OrderSide.SELL if position.qty > 0 else OrderSide.BUY
        try:
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
        except DomainError as exc:
            logger.warning("could not flatten %s: %s", position.symbol, exc.message)
            failed.append({"symbol": position.symbol, "code": exc.code, "message": exc.message})
    return orders, failed


# --- orders ---------------------------------------------------------------------------------------


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
    if not symbol or len(symbol) > 16 or not symbol.replace(".", "").isalnum():
        raise InvalidOrder("symbol must be a ticker such as SPY", details={"field": "symbol"})
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
    for name, value, needed in (
        ("limit_price", limit_price, type in (OrderType.LIMIT, OrderType.STOP_LIMIT)),
        ("stop_price", stop_price, type in (OrderType.STOP, OrderType.STOP_LIMIT)),
    ):
        if needed and value is None:
            raise InvalidOrder(f"{name} is required for {type} orders", details={"field": name})
        if value is not None and (
            not isinstance(value, Decimal)
            or not value.is_finite()
            or value <= 0
            or value >= Decimal("1e13")
            or value.as_tuple().exponent < -6
        ):
            raise InvalidOrder(f"{name} must be a positive price", details={"field": name})
    if client_order_id is not None and not (1 <= len(client_order_id) <= 128):
        raise InvalidOrder(
            "client_order_id must be 1 to 128 characters", details={"field": "client_order_id"}
        )


@one_market_reading()
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
    `bypass_halt` is only for the kill switch's own flatten orders.
    """
    from marketdata import calendar

    symbol = (symbol or "").upper().strip()
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
    gate = selectors.trading_gate(client_order_id)
    if gate.existing is not None:
        return SubmitResult(gate.existing, created=False)
    if not bypass_halt and gate.halted:
        raise TradingHalted(
            "trading is halted by the kill switch", details={"reason": gate.halt_reason}
        )
    session = session or gate.session
    if session is None or session.status != SessionStatus.RUNNING:
        raise NoRunningSession("no trading session is running")

    price, clock = last_price_and_clock(symbol)
    if price is None:
        raise UnknownSymbol(
            f"unknown symbol {symbol!r}: no market data", details={"symbol": symbol}
        )
    if not bypass_halt:
        breached, loss = risk.daily_loss_breached(session=session, at=clock["market_time"])
        if breached:
            trading_halt(reason=f"daily loss limit reached (lost {loss:.2f} today)", by="risk")
            raise RiskLimitExceeded(
                f"the daily loss limit is reached (lost {loss:.2f} today); trading is halted",
                code="daily_loss_limit",
                details={"loss": str(loss)},
            )
    risk.check_order(
        session=session,
        symbol=symbol,
        side=side,
        qty=qty,
        price=price,
        order_type=type,
        limit_price=limit_price,
        reduces_only=bypass_halt,
    )
    limits = risk.limits_for(session)
    submit_after = None
    if limits.enforce_market_hours and not clock["market_open"]:
        next_open = calendar.next_open(clock["market_time"])
        if not limits.queue_when_closed:
            raise RiskLimitExceeded(
                f"the market is closed; it opens at {next_open.isoformat()}",
                code="market_closed",
                details={"next_open": events.iso_utc(next_open)},
            )
        submit_after = next_open

    client_order_id = client_order_id or f"trp-{uuid.uuid4().hex}"
    order = Order(
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
        submit_after=submit_after,
    )
    try:
        # A lone INSERT commits by itself; inside a caller's transaction a savepoint keeps a
        # lost race from breaking that transaction.
        with (
            transaction.atomic() if transaction.get_connection().in_atomic_block else nullcontext()
        ):
            order.save(force_insert=True)
    except IntegrityError:
        # A concurrent request with the same client_order_id won the insert.
        return SubmitResult(Order.objects.get(client_order_id=client_order_id), created=False)

    if submit_after is not None:
        logger.info("order %s queued until the open at %s", order.client_order_id, submit_after)
        _publish_order(order)
        return SubmitResult(order, created=True)
    order = order_send(order=order, bypass_halt=bypass_halt, market_time=clock["market_time"])
    if order.status == OrderStatus.PENDING_SUBMIT:
        # Every other outcome published its own order_update with the final state.
        _publish_order(order)
    return SubmitResult(order, created=True)


def order_send(*, order: Order, bypass_halt: bool = False, market_time=None) -> Order:
    """Send a committed pending_submit order to the broker and record the answer.

    A temporary broker failure leaves the order pending_submit (it is never forgotten) and
    schedules a retry that looks the order up by client_order_id before resending anything.
    `market_time`, when the caller already read the market clock, stamps the order's
    acceptance.
    """
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
    # Claim the send with a lease: of several senders racing (retry tasks, reconciliation's
    # retry, a queued order), only the one whose conditional update wins calls the broker, and
    # nobody else may while its call is in flight. A crashed sender's lease runs out; the next
    # sender looks the order up by client_order_id first (order_resubmit). The claim also
    # fails while the kill switch is set, checked in the same statement, so a halt that
    # committed after order_submit's own check still stops the send.
    attempt = _claim_send(order, refuse_when_halted=not bypass_halt)
    if attempt is None:
        order.refresh_from_db()
        if (
            not bypass_halt
            and order.status == OrderStatus.PENDING_SUBMIT
            and selectors.kill_switch_get().engaged
        ):
            return _cancel_locally(order=order, reason="kill switch engaged before submission")
        return order
    order.submit_attempts = attempt
    broker = get_broker()
    release = Order.objects.filter(pk=order.pk)
    try:
        answer = broker.call("submit_order", request)
    except BrokerError as exc:
        release.update(send_lease_until=None)
        if exc.permanent and attempt > 1:
            # A retry refused (e.g. "client_order_id must be unique") may mean an earlier
            # attempt did arrive after all: the broker's record wins over our rejection.
            try:
                known = broker.call("get_order_by_client_id", order.client_order_id)
            except BrokerError:
                known = None
            if known is not None:
                return order_record_broker_state(order_id=order.pk, state=known)
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
    # Recording the answer releases the lease, in the same transaction: until then the order
    # still looks pending_submit, and another sender must not take it.
    order = order_record_broker_state(order_id=order.pk, state=answer, market_time=market_time)
    if not bypass_halt and order.is_open and selectors.kill_switch_get().engaged:
        # The halt came while the broker call was in flight and could only cancel locally.
        order = _cancel_quietly(order, "kill switch engaged during submission")
    return order


def _claim_send(order: Order, *, refuse_when_halted: bool) -> int | None:
    """Take the send lease of a pending_submit order; returns the attempt number, or None when
    another sender holds the lease, the order is no longer pending_submit, or (if asked) the
    kill switch is set. One statement: UPDATE ... RETURNING."""
    now = timezone.now()
    table, killswitch = sql.quote(Order._meta.db_table), sql.quote(KillSwitch._meta.db_table)
    halt_clause = (
        f" AND NOT EXISTS (SELECT 1 FROM {killswitch} WHERE engaged)" if refuse_when_halted else ""
    )
    lease_until = now + timedelta(seconds=settings.ORDER_SEND_LEASE_SECONDS)
    with transaction.get_connection().cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} "
            "SET submit_attempts = submit_attempts + 1, send_lease_until = %s "
            "WHERE id = %s AND status = %s "
            "AND (send_lease_until IS NULL OR send_lease_until < %s)"
            f"{halt_clause} RETURNING submit_attempts",
            [
                sql.db_value(Order, "send_lease_until", lease_until),
                sql.db_value(Order, "id", order.pk),
                OrderStatus.PENDING_SUBMIT,
                sql.db_value(Order, "send_lease_until", now),
            ],
        )
        row = cursor.fetchone()
    return row[0] if row else None


def _cancel_quietly(order: Order, reason: str) -> Order:
    try:
        return order_cancel(order=order, reason=reason)
    except DomainError as exc:
        logger.error("could not cancel order %s after a halt: %s", order.pk, exc.message)
        order.refresh_from_db()
        return order


def _schedule_resubmit(order: Order) -> None:
    from trading.tasks import order_resubmit

    transaction.on_commit(lambda: _enqueue(order_resubmit, str(order.pk)))


def _enqueue(task, *args) -> None:
    try:
        task.apply_async(args=args, countdown=2)
    except Exception as exc:  # noqa: BLE001 - reconciliation finds pending_submit orders anyway
        from tradingrobot import redis_outage

        redis_outage.failure(f"enqueue {task.name}", exc)


def order_resubmit(*, order_id: uuid.UUID | str) -> Order:
    """Retry a pending_submit order: first ask the broker whether it has it, then resend.

    While the kill switch is set nothing is sent: the order is adopted if the broker has it
    (and then canceled there), else canceled locally.
    """
    order = Order.objects.get(pk=order_id)
    if order.status != OrderStatus.PENDING_SUBMIT:
        return order
    broker = get_broker()
    try:
        known = broker.call("get_order_by_client_id", order.client_order_id)
    except BrokerError as exc:
        logger.warning("lookup of %s failed: %s", order.client_order_id, exc.message)
        if not exc.permanent:
            _schedule_resubmit(order)
        return order
    halted = selectors.kill_switch_get().engaged
    if known is not None:
        order = order_record_broker_state(order_id=order.pk, state=known)
        if halted and order.is_open:
            order = _cancel_quietly(order, "kill switch engaged")
        return order
    if halted:
        return _cancel_locally(order=order, reason="kill switch engaged before submission")
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
        _publish_order(order)
    return order


def _cancel_locally(*, order: Order, reason: str, status: str = OrderStatus.CANCELED) -> Order:
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status in OPEN_STATUSES:
            order_transition(order, status)
            order.canceled_at = timezone.now()
            order.reject_reason = reason[:255]
            order.save(update_fields=["status", "canceled_at", "reject_reason", "updated_at"])
            _publish_order(order)
    return order


def order_cancel(*, order: Order, reason: str = "canceled") -> Order:
    """Cancel an open order at the broker, then locally.

    A pending_submit order may have reached the broker although we never heard back: it is
    looked up by client_order_id first. If the broker refuses the cancel because the order is
    already done, the broker's state is recorded (its fill is never dropped) and
    OrderNotCancelable is raised. A broker that cannot be reached raises BrokerUnavailable and
    changes nothing.
    """
    order.refresh_from_db()
    if order.status not in OPEN_STATUSES:
        raise OrderNotCancelable(
            f"order {order.pk} is {order.status} and cannot be canceled",
            details={"status": order.status},
        )
    broker = get_broker()
    try:
        if not order.broker_order_id:
            known = broker.call("get_order_by_client_id", order.client_order_id)
            if known is None:
                return _cancel_locally(order=order, reason=reason)
            order = order_record_broker_state(order_id=order.pk, state=known)
            if not order.is_open:
                raise OrderNotCancelable(
                    f"order {order.pk} is {order.status} at the broker",
                    details={"status": order.status},
                )
        broker.call("cancel_order", order.broker_order_id)
    except BrokerError as exc:
        if not exc.permanent:
            raise BrokerUnavailable(
                f"the broker could not be reached to cancel: {exc.message}",
                details={"order_id": str(order.pk)},
            ) from exc
        logger.info("broker refused cancel of %s: %s", order.pk, exc.message)
        try:
            known = broker.call("get_order_by_client_id", order.client_order_id)
        except BrokerError:
            known = None
        if known is not None:
            order = order_record_broker_state(order_id=order.pk, state=known)
        if order.is_open and known is not None:
            raise OrderNotCancelable(exc.message, details={"status": order.status}) from exc
        if not order.is_open:
            raise OrderNotCancelable(
                f"order {order.pk} is {order.status} at the broker",
                details={"status": order.status},
            ) from exc
    return _cancel_locally(order=order, reason=reason)


def order_record_broker_state(
    *, order_id, state: BrokerOrder, repair: str = "", market_time=None
) -> Order:
    """Bring our order in line with the broker's view: new fills, then the status.

    The broker's truth wins over a local-only cancel (one the broker never confirmed because
    the order's broker id was unknown at the time): the order is reopened, logged and published,
    then its fills and status are applied. Any other disagreement raises IllegalTransition.
    `market_time` is the market clock's reading, when the caller has it at hand.
    """
    with transaction.atomic():
        order = selectors.order_lock(order_id)
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
        if order.market_time is None:
            _set_market_times(order, market_time)
        fill_events: list[tuple[str, dict]] = []
        new_qty = state.filled_qty - order.filled_qty
        if new_qty > 0:
            if state.fills and sum((f.qty for f in state.fills), ZERO) == new_qty:
                price = sum((f.qty * f.price for f in state.fills), ZERO) / new_qty
                fee = sum((f.fee for f in state.fills), ZERO)
                executed_at = state.fills[-1].executed_at
            else:
                # Cumulative fills: the new part's price follows from the averages.
                total = (state.filled_avg_price or ZERO) * state.filled_qty
                already = (order.filled_avg_price or ZERO) * order.filled_qty
                price = (total - already) / new_qty
                fee = ZERO
                executed_at = timezone.now()
            fill_events = _fill_apply(
                order=order,
                qty=new_qty,
                price=price.quantize(SIX),
                fee=fee,
                executed_at=executed_at,
            )
        target = order.status if state.status == OrderStatus.PENDING_SUBMIT else state.status
        order_transition(order, target)
        if target == OrderStatus.REJECTED and state.reject_reason:
            order.reject_reason = state.reject_reason[:255]
        if target in (OrderStatus.CANCELED, OrderStatus.EXPIRED) and order.canceled_at is None:
            order.canceled_at = timezone.now()
        sql.save_existing(order)
        publish_many([*fill_events, (events.ORDER_UPDATE, _order_event(order, repair))])
    return order


def _set_market_times(order: Order, now=None) -> None:
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
    *, order: Order, qty: Decimal, price: Decimal, fee: Decimal, executed_at
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
    see tradingrobot.sql)."""
    with transaction.get_connection().cursor() as cursor:
        cursor.execute(
            f"UPDATE {sql.quote(TradingSession._meta.db_table)} SET cash = cash + %s WHERE id = %s",
            [sql.db_value(TradingSession, "cash", amount), session_id],
        )


# --- after each collection: queued orders, resting paper orders, day-order expiry -----------------


@dataclass
class BarsResult:
    sent: list[str] = field(default_factory=list)
    filled: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    synced: list[str] = field(default_factory=list)


def orders_process_bars() -> BarsResult:
    """Run after every bar collection (marketdata.tasks.collect_bars).

    Sends orders queued for the open once the market is open; on the paper broker, fills resting
    limit/stop orders against bars that started after they were accepted and expires day orders
    at the close; on other brokers, refreshes open orders from the broker.
    """
    from marketdata.selectors import market_clock

    result = BarsResult()
    clock = market_clock()
    now = clock["market_time"]
    if clock["market_open"] and not selectors.kill_switch_get().engaged:
        queued = Order.objects.filter(
            status=OrderStatus.PENDING_SUBMIT, submit_after__isnull=False, submit_after__lte=now
        ).order_by("created_at")
        for order in queued:
            try:
                order_send(order=order)
            except DomainError as exc:
                logger.info("queued order %s not sent: %s", order.pk, exc.message)
            result.sent.append(str(order.pk))
    broker = get_broker()
    if broker.name == "paper":
        _paper_match(broker, now, result)
    else:
        for order in Order.objects.filter(
            status__in=OPEN_STATUSES, submit_after__isnull=True
        ).exclude(broker_order_id=""):
            try:
                state = broker.call("get_order_by_client_id", order.client_order_id)
            except BrokerError as exc:
                logger.warning("could not refresh order %s: %s", order.pk, exc.message)
                continue
            if state is not None:
                order_record_broker_state(order_id=order.pk, state=state)
                result.synced.append(str(order.pk))
    return result


def _paper_match(broker, now, result: BarsResult) -> None:
    from marketdata import calendar
    from marketdata.models import Bar

    resting = Order.objects.filter(
        status__in=(OrderStatus.NEW, OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED),
        market_time__isnull=False,
    ).order_by("created_at")
    for order in resting:
        bars = Bar.objects.filter(
            symbol=order.symbol, timeframe="5Min", timestamp__gte=order.market_time
        ).order_by("timestamp")
        if order.expires_at is not None:
            bars = bars.filter(timestamp__lt=order.expires_at)
        for bar in bars:
            match = broker.match_bar(
                side=order.side,
                type=order.type,
                limit_price=order.limit_price,
                stop_price=order.stop_price,
                stop_triggered=order.stop_triggered,
                bar=bar,
            )
            Order.objects.filter(pk=order.pk).update(
                market_time=bar.timestamp + calendar.BAR, stop_triggered=match.triggered
            )
            order.stop_triggered = match.triggered
            if match.price is None:
                continue
            if _paper_fill(broker, order, match.price, bar.timestamp + calendar.BAR):
                result.filled.append(str(order.pk))
            break
        order.refresh_from_db()
        if order.is_open and order.expires_at is not None and order.expires_at <= now:
            _cancel_locally(
                order=order, reason="day order expired at the close", status=OrderStatus.EXPIRED
            )
            result.expired.append(str(order.pk))


def _paper_fill(broker, order: Order, price: Decimal, executed_at) -> bool:
    remaining = order.qty - order.filled_qty
    fee = broker.fee_per_order if order.filled_qty == 0 else ZERO
    if order.side == OrderSide.BUY:
        cash = TradingSession.objects.values_list("cash", flat=True).get(pk=order.session_id)
        if remaining * price + fee > cash:
            _cancel_locally(
                order=order,
                reason=f"insufficient_buying_power: fill at {price} needs "
                f"{remaining * price + fee:.2f}, cash is {cash:.2f}",
            )
            return False
    state = BrokerOrder(
        client_order_id=order.client_order_id,
        broker_order_id=order.broker_order_id,
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        qty=order.qty,
        status=OrderStatus.FILLED,
        filled_qty=order.qty,
        filled_avg_price=price,
        fills=[Fill(qty=remaining, price=price, fee=fee, executed_at=executed_at)],
    )
    order_record_broker_state(order_id=order.pk, state=state)
    return True


# --- reconciliation -------------------------------------------------------------------------------


@dataclass
class ReconcileReport:
    repairs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"repairs": self.repairs, "errors": self.errors}


def reconcile(*, by: str = "") -> ReconcileReport:
    """Compare local open orders and positions with the broker's and repair the local side.

    Never sends an order. A pending_submit order the broker has is adopted; one it does not have
    is handed back to the retry task (which looks it up again first) while it is younger than
    ORDER_SUBMIT_MAX_AGE_SECONDS, and rejected when older (a stale order must not fill hours
    later). Every repair is logged and published.
    """
    report = ReconcileReport()
    broker = get_broker()
    halted = selectors.kill_switch_get().engaged

    def repaired(text: str) -> None:
        logger.warning("reconcile: %s", text)
        report.repairs.append(text)

    # 1. Orders we never heard back about.
    max_age = timedelta(seconds=settings.ORDER_SUBMIT_MAX_AGE_SECONDS)
    for order in Order.objects.filter(status=OrderStatus.PENDING_SUBMIT).order_by("created_at"):
        if order.submit_after is not None and not order.submit_attempts:
            continue  # queued for the open; it has never been sent
        if order.send_lease_until is not None and order.send_lease_until > timezone.now():
            continue  # another process is sending it right now; its answer will be recorded
        try:
            known = broker.call("get_order_by_client_id", order.client_order_id)
        except BrokerError as exc:
            report.errors.append(f"lookup of {order.client_order_id} failed: {exc.message}")
            continue
        if known is not None:
            text = f"adopted {order.client_order_id}: the broker has it as {known.status}"
            order = order_record_broker_state(order_id=order.pk, state=known, repair=text)
            repaired(text)
            if halted and order.is_open:
                _cancel_quietly(order, "kill switch engaged")
        elif halted:
            _cancel_locally(order=order, reason="never reached the broker; trading is halted")
            repaired(f"canceled {order.client_order_id}: never reached the broker, halted")
        elif timezone.now() - order.created_at > max_age:
            with transaction.atomic():
                locked = Order.objects.select_for_update().get(pk=order.pk)
                if locked.status == OrderStatus.PENDING_SUBMIT:
                    order_transition(locked, OrderStatus.REJECTED)
                    locked.reject_reason = (
                        "submit_unconfirmed: never reached the broker; not resent"
                    )
                    locked.save(update_fields=["status", "reject_reason", "updated_at"])
                    _publish_order(locked, "rejected: never reached the broker")
            repaired(f"rejected {order.client_order_id}: never reached the broker, too old")
        else:
            _schedule_resubmit(order)
            report.repairs.append(f"retry scheduled for {order.client_order_id}")

    # 2. Open orders on both sides.
    try:
        broker_open = broker.call("get_orders", status="open")
    except BrokerError as exc:
        report.errors.append(f"listing open orders failed: {exc.message}")
        broker_open = None
    if broker_open is not None:
        open_ids = {o.client_order_id for o in broker_open}
        for order in Order.objects.filter(status__in=OPEN_STATUSES).exclude(broker_order_id=""):
            if order.client_order_id in open_ids:
                continue
            try:
                known = broker.call("get_order_by_client_id", order.client_order_id)
            except BrokerError as exc:
                report.errors.append(f"lookup of {order.client_order_id} failed: {exc.message}")
                continue
            if known is None:
                _cancel_locally(order=order, reason="unknown to the broker (reconciliation)")
                repaired(f"closed {order.client_order_id}: the broker does not know it")
            elif known.status != order.status or known.filled_qty != order.filled_qty:
                text = f"updated {order.client_order_id}: {order.status} -> {known.status}"
                order_record_broker_state(order_id=order.pk, state=known, repair=text)
                repaired(text)
        for state in broker_open:
            local = Order.objects.filter(client_order_id=state.client_order_id).first()
            if local is None:
                local = _adopt_unknown(state)
                if local is None:
                    report.errors.append(f"could not adopt broker order {state.broker_order_id}")
                    continue
                repaired(f"adopted broker order {state.client_order_id} ({state.symbol})")
            elif local.status != state.status or local.filled_qty != state.filled_qty:
                text = f"updated {local.client_order_id}: {local.status} -> {state.status}"
                try:
                    local = order_record_broker_state(order_id=local.pk, state=state, repair=text)
                    repaired(text)
                except IllegalTransition as exc:
                    report.errors.append(f"{local.client_order_id}: {exc.message}")
                    continue
            if local.is_open and (halted or local.reject_reason.startswith("kill switch")):
                _cancel_quietly(local, "kill switch engaged (reconciliation)")

    # 3. Positions (the paper broker's positions are ours, so this only repairs live brokers).
    session = selectors.session_current() or selectors.session_latest()
    if session is not None and broker.name != "paper":
        try:
            theirs = {p.symbol: p for p in broker.call("get_positions", session_id=session.pk)}
        except BrokerError as exc:
            report.errors.append(f"listing positions failed: {exc.message}")
            theirs = None
        if theirs is not None:
            ours = {p.symbol: p for p in Position.objects.filter(session=session)}
            for symbol in sorted(set(theirs) | set(ours)):
                broker_pos = theirs.get(symbol)
                qty = broker_pos.qty if broker_pos else ZERO
                avg = broker_pos.avg_entry_price if broker_pos else ZERO
                local = ours.get(symbol)
                if local is not None and local.qty == qty:
                    continue
                if local is None and qty == 0:
                    continue
                with transaction.atomic():
                    position, _ = Position.objects.select_for_update().get_or_create(
                        session=session, symbol=symbol, defaults={"last_price": avg}
                    )
                    before = position.qty
                    position.qty, position.avg_entry_price = qty, avg
                    if broker_pos and broker_pos.market_value is not None and qty:
                        position.last_price = (broker_pos.market_value / qty).quantize(SIX)
                    position.save()
                    payload = selectors.position_payload(position)
                    payload["repair"] = f"qty {before} -> {qty} (broker)"
                    publish(events.POSITION_UPDATE, payload)
                repaired(f"position {symbol}: {before} -> {qty} to match the broker")
    publish(events.STATUS, selectors.status_get())
    logger.info(
        "reconcile by %s: %d repairs, %d errors",
        by or "system",
        len(report.repairs),
        len(report.errors),
    )
    return report


def _adopt_unknown(state: BrokerOrder) -> Order | None:
    """Record an order the broker holds that we have no row for (placed outside this system)."""
    session = selectors.session_current() or selectors.session_latest()
    if session is None or not state.client_order_id:
        return None
    try:
        with transaction.atomic():
            order = Order.objects.create(
                client_order_id=state.client_order_id[:128],
                broker_order_id=state.broker_order_id,
                session=session,
                source=OrderSource.RECONCILE,
                symbol=state.symbol,
                side=state.side if state.side in OrderSide.values else OrderSide.BUY,
                type=state.type if state.type in OrderType.values else OrderType.MARKET,
                qty=state.qty,
                limit_price=state.limit_price,
                stop_price=state.stop_price,
                time_in_force=state.time_in_force
                if state.time_in_force in TimeInForce.values
                else TimeInForce.DAY,
                status=OrderStatus.PENDING_SUBMIT,
                submitted_at=state.submitted_at,
                reject_reason="adopted from the broker by reconciliation",
            )
    except IntegrityError:
        return Order.objects.filter(client_order_id=state.client_order_id).first()
    return order_record_broker_state(
        order_id=order.pk, state=state, repair="adopted from the broker by reconciliation"
    )


# --- marking to market ----------------------------------------------------------------------------


def session_mark_to_market(
    *, session: TradingSession | None = None, at=None
) -> EquitySnapshot | None:
    """Price open positions at the latest bars, snapshot equity, publish the changes."""
    from marketdata.selectors import last_price, market_now

    session = session or selectors.session_current()
    if session is None:
        return None
    with transaction.atomic():
        # Fresh cash: the caller's session object may predate fills.
        session = TradingSession.objects.get(pk=session.pk)
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
    # The daily loss limit trips the kill switch by itself, not only when an order is tried.
    breached, loss = risk.daily_loss_breached(session=session, at=snapshot.timestamp)
    if breached and not selectors.kill_switch_get().engaged:
        trading_halt(reason=f"daily loss limit reached (lost {loss:.2f} today)", by="risk")
    return snapshot
