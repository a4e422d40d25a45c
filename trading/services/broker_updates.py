"""Order updates the broker pushes (its stream), and the polling that stands in while the stream
is down. Recorded through `order_record_broker_state` like every other broker answer."""

from __future__ import annotations

import logging

from django.utils.module_loading import import_string

from trading.brokers import get_broker
from trading.brokers.base import BrokerOrder
from trading.exceptions import DomainError
from trading.models import Order
from trading.services.fills import order_record_broker_state
from trading.services.reconcile import (
    ReconcileReport,
    order_reconcile_unknown,
    orders_refresh_open,
)

logger = logging.getLogger(__name__)


def order_record_update(*, state: BrokerOrder, event: str = "") -> Order | ReconcileReport | None:
    """Record one pushed order update. Idempotent: the broker's cumulative filled quantity is
    compared with ours under the order's row lock, so the same execution sent twice (or also
    seen by a REST refresh) books one fill, and an update older than what is recorded changes
    nothing. An order we never placed follows the reconciliation rules. Returns the order, the
    reconciliation report, or None when the update could not be applied (logged)."""
    order_id = (
        Order.objects.filter(client_order_id=state.client_order_id)
        .values_list("pk", flat=True)
        .first()
    )
    if order_id is None and state.broker_order_id:
        order_id = (
            Order.objects.filter(broker_order_id=state.broker_order_id)
            .values_list("pk", flat=True)
            .first()
        )
    if order_id is None:
        return order_reconcile_unknown(state=state)
    try:
        return order_record_broker_state(order_id=order_id, state=state)
    except DomainError as exc:
        # An update that contradicts what is recorded (e.g. a live status after a terminal
        # one): the next REST refresh or reconciliation settles it from the broker's truth.
        logger.warning(
            "order %s: %s update not applied: %s", state.client_order_id, event, exc.message
        )
        return None


def orders_poll() -> ReconcileReport | None:
    """The fallback while the broker's stream is not live: refresh open orders over REST.
    Nothing to do when the broker streams and the stream is live, or when it has no stream
    (its orders are refreshed after each collection: `orders_process_bars`)."""
    from realtime.state import stream_is_live

    broker = get_broker()
    if not broker.stream_source:
        return None
    if stream_is_live(import_string(broker.stream_source).name):
        return None
    return orders_refresh_open(by="poll")
