"""Sending a committed pending_submit order to the broker, and retrying one whose answer
never came.

A send is claimed with a lease (one conditional UPDATE), so of several senders only one calls
the broker; a temporary failure leaves the order pending_submit and schedules a retry that looks
the order up at the broker by client_order_id before resending anything.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from core import sql
from trading import selectors
from trading.brokers import get_broker
from trading.brokers.base import BrokerError, OrderRequest
from trading.exceptions import (
    BrokerUnavailable,
    InsufficientBuyingPower,
    OrderRejected,
)
from trading.models import (
    KillSwitch,
    LegRole,
    Order,
    OrderClass,
    OrderStatus,
    OrderType,
)
from trading.services.fills import order_record_broker_state
from trading.services.order_cancel import cancel_locally, cancel_quietly, order_reject

logger = logging.getLogger(__name__)


def order_send(
    *, order: Order, bypass_halt: bool = False, market_time=None, schedule_retry: bool = True
) -> Order:
    """Send a committed pending_submit order to the broker and record the answer.

    A temporary broker failure leaves the order pending_submit (it is never forgotten) and
    schedules the retry task, which looks the order up by client_order_id before resending
    anything; the retry task itself passes `schedule_retry=False` and gets BrokerUnavailable
    instead (its own policy decides when to try again). `market_time`, when the caller already
    read the market clock, stamps the order's acceptance.
    """
    if order.parent_id is not None:
        return order  # a leg goes to the broker with its parent, never by itself
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
        **_protective_fields(order),
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
            return cancel_locally(order=order, reason="kill switch engaged before submission")
        return order
    order.submit_attempts = attempt
    broker = get_broker()
    release = Order.objects.filter(pk=order.pk)
    try:
        answer = broker.submit(request)
    except BrokerError as exc:
        release.update(send_lease_until=None)
        if exc.permanent and attempt > 1:
            # A retry refused (e.g. "client_order_id must be unique") may mean an earlier
            # attempt did arrive after all: the broker's record wins over our rejection.
            try:
                known = broker.order_by_client_id(order.client_order_id)
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
        if not schedule_retry:
            raise BrokerUnavailable(
                f"the broker could not be reached: {exc.message}",
                details={"order_id": str(order.pk)},
            ) from exc
        schedule_resubmit(order)
        order.refresh_from_db()
        return order
    # Recording the answer releases the lease, in the same transaction: until then the order
    # still looks pending_submit, and another sender must not take it.
    order = order_record_broker_state(order_id=order.pk, state=answer, market_time=market_time)
    if not bypass_halt and order.is_open and selectors.kill_switch_get().engaged:
        # The halt came while the broker call was in flight and could only cancel locally.
        order = cancel_quietly(order, "kill switch engaged during submission")
    return order


def _protective_fields(order: Order) -> dict:
    """The OrderRequest fields of a protective order: its legs' prices, its trail."""
    fields: dict = {}
    if order.type == OrderType.TRAILING_STOP:
        fields.update(trail_price=order.trail_price, trail_percent=order.trail_percent)
    if order.order_class == OrderClass.SIMPLE:
        return fields
    fields["order_class"] = order.order_class
    for leg in order.legs.all():
        if leg.leg_role == LegRole.TAKE_PROFIT:
            fields["take_profit_limit_price"] = leg.limit_price
        elif leg.leg_role == LegRole.STOP_LOSS:
            fields["stop_loss_stop_price"] = leg.stop_price
            fields["stop_loss_limit_price"] = leg.limit_price
    if order.order_class == OrderClass.OCO:
        fields["take_profit_limit_price"] = order.limit_price
    return fields


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


def schedule_resubmit(order: Order) -> None:
    from trading.tasks import order_resubmit

    transaction.on_commit(lambda: _enqueue(order_resubmit, str(order.pk)))


def _enqueue(task, *args) -> None:
    try:
        task.delay(*args)  # when it runs again after a failure: the task's retry policy
    except Exception as exc:  # noqa: BLE001 - reconciliation finds pending_submit orders anyway
        from tradingrobot import redis_outage

        redis_outage.failure(f"enqueue {task.name}", exc)


def order_resubmit(*, order_id: uuid.UUID | str) -> Order:
    """Retry a pending_submit order: first ask the broker whether it has it, then resend.

    While the kill switch is set nothing is sent: the order is adopted if the broker has it
    (and then canceled there), else canceled locally. A broker that cannot be reached raises
    BrokerUnavailable, for the task's retry policy (trading.tasks.order_resubmit).
    """
    order = Order.objects.get(pk=order_id)
    if order.status != OrderStatus.PENDING_SUBMIT or order.parent_id is not None:
        return order
    broker = get_broker()
    try:
        known = broker.order_by_client_id(order.client_order_id)
    except BrokerError as exc:
        logger.warning("lookup of %s failed: %s", order.client_order_id, exc.message)
        if not exc.permanent:
            raise BrokerUnavailable(
                f"the broker could not be reached: {exc.message}",
                details={"order_id": str(order.pk)},
            ) from exc
        return order
    halted = selectors.kill_switch_get().engaged
    if known is not None:
        order = order_record_broker_state(order_id=order.pk, state=known)
        if halted and order.is_open:
            order = cancel_quietly(order, "kill switch engaged")
        return order
    if halted:
        return cancel_locally(order=order, reason="kill switch engaged before submission")
    try:
        return order_send(order=order, schedule_retry=False)
    except (OrderRejected, InsufficientBuyingPower):
        order.refresh_from_db()
        return order
