"""Order status transitions and the order_update event every order change publishes."""

from __future__ import annotations

import logging
from decimal import Decimal

from streaming import events
from streaming.publish import publish
from trading import selectors
from trading.exceptions import IllegalTransition
from trading.models import (
    Order,
    OrderStatus,
)

logger = logging.getLogger(__name__)

ZERO = Decimal("0")
SIX = Decimal("0.000001")

S = OrderStatus
# Which status may follow which. Anything else is a bug or a broker surprise, and raises.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.PENDING_SUBMIT: frozenset(
        {S.HELD, S.NEW, S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.REJECTED, S.CANCELED}
        | {S.EXPIRED}
    ),
    # A held exit leg starts working when its entry has filled, or goes with the entry.
    S.HELD: frozenset(
        {S.NEW, S.ACCEPTED, S.PARTIALLY_FILLED, S.FILLED, S.CANCELED, S.EXPIRED, S.REJECTED}
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


def order_event(order: Order, repair: str = "") -> dict:
    payload = selectors.order_payload(order)
    if repair:
        payload["repair"] = repair
    return payload


def publish_order(order: Order, repair: str = "") -> None:
    publish(events.ORDER_UPDATE, order_event(order, repair))
