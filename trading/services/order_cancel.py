"""Canceling and rejecting orders: at the broker when it may hold them, then locally."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record, records_refusals
from trading.brokers import get_broker
from trading.brokers.base import BrokerError
from trading.exceptions import (
    BrokerUnavailable,
    DomainError,
    OrderNotCancelable,
)
from trading.models import (
    OPEN_STATUSES,
    Order,
    OrderStatus,
)
from trading.services.fills import order_record_broker_state
from trading.services.legs import legs_cancel_with_parent, parent_payload_refresh
from trading.services.transitions import order_transition, publish_order

logger = logging.getLogger(__name__)


def cancel_all(
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
            if exc.details.get("status") == OrderStatus.CANCELED and order.parent_id:
                # A leg canceled with its parent, earlier in this same list.
                order.refresh_from_db()
                canceled.append(order)
                continue
            logger.warning("could not cancel order %s: %s", order.pk, exc.message)
            failed.append({"order_id": str(order.pk), "code": exc.code, "message": exc.message})
        except DomainError as exc:
            logger.warning("could not cancel order %s: %s", order.pk, exc.message)
            failed.append({"order_id": str(order.pk), "code": exc.code, "message": exc.message})
    return canceled, failed


def cancel_quietly(order: Order, reason: str) -> Order:
    try:
        return order_cancel(order=order, reason=reason)
    except DomainError as exc:
        logger.error("could not cancel order %s after a halt: %s", order.pk, exc.message)
        order.refresh_from_db()
        return order


def order_reject(*, order: Order, reason: str, code: str = "rejected") -> Order:
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        order_transition(order, OrderStatus.REJECTED)
        order.reject_reason = f"{code}: {reason}"[:255]
        order.save(update_fields=["status", "reject_reason", "updated_at"])
        legs_cancel_with_parent(order, f"entry rejected: {code}")
        publish_order(order)
    return order


def cancel_locally(*, order: Order, reason: str, status: str = OrderStatus.CANCELED) -> Order:
    with transaction.atomic():
        order = Order.objects.select_for_update().get(pk=order.pk)
        if order.status in OPEN_STATUSES:
            order_transition(order, status)
            order.canceled_at = timezone.now()
            order.reject_reason = reason[:255]
            order.save(update_fields=["status", "canceled_at", "reject_reason", "updated_at"])
            legs_cancel_with_parent(order, reason)
            publish_order(order)
            parent_payload_refresh(order)  # a leg: its parent's nested legs changed too
    return order


def _cancel_recorded(order: Order, reason: str) -> Order:
    with transaction.atomic():
        # Locked first: a concurrent cancel that got there before us is not recorded twice.
        was_open = (
            Order.objects.select_for_update().filter(pk=order.pk, status__in=OPEN_STATUSES).exists()
        )
        order = cancel_locally(order=order, reason=reason)
        if was_open:
            audit_record(
                action="order.cancel",
                target=order.pk,
                details={
                    "client_order_id": order.client_order_id,
                    "symbol": order.symbol,
                    "reason": reason,
                    "status": order.status,
                },
            )
    return order


@records_refusals(
    "order.cancel",
    target=lambda kwargs: kwargs["order"].pk,
    details=lambda kwargs: {
        "client_order_id": kwargs["order"].client_order_id,
        "reason": kwargs.get("reason", "canceled"),
    },
)
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
            known = broker.order_by_client_id(order.client_order_id)
            if known is None:
                return _cancel_recorded(order, reason)
            order = order_record_broker_state(order_id=order.pk, state=known)
            if not order.is_open:
                raise OrderNotCancelable(
                    f"order {order.pk} is {order.status} at the broker",
                    details={"status": order.status},
                )
        broker.cancel(order.broker_order_id)
    except BrokerError as exc:
        if not exc.permanent:
            raise BrokerUnavailable(
                f"the broker could not be reached to cancel: {exc.message}",
                details={"order_id": str(order.pk)},
            ) from exc
        logger.info("broker refused cancel of %s: %s", order.pk, exc.message)
        try:
            known = broker.order_by_client_id(order.client_order_id)
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
    return _cancel_recorded(order, reason)
