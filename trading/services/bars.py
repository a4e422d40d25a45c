"""After each collection: queued orders, resting paper orders, day-order expiry."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from trading import selectors
from trading.brokers import get_broker
from trading.exceptions import DomainError
from trading.models import (
    OPEN_STATUSES,
    Order,
    OrderStatus,
)
from trading.services import legs
from trading.services.fills import order_record_broker_state
from trading.services.order_send import order_send

logger = logging.getLogger(__name__)


@dataclass
class BarsResult:
    sent: list[str] = field(default_factory=list)
    filled: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
    synced: list[str] = field(default_factory=list)


def orders_process_bars() -> BarsResult:
    """Run after every bar collection (marketdata.tasks.collect_bars).

    Sends orders queued for the open once the market is open, then records what the broker
    reports about the open orders: the paper broker fills resting limit/stop orders against the
    bars that started after they were accepted and expires day orders at the close; a live broker
    is asked for each order's state.
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
    # The broker reports what became of the open orders (the paper broker matches resting
    # orders against the new bars and expires day orders; live brokers are asked); we record it.
    open_orders = dict(
        Order.objects.filter(status__in=OPEN_STATUSES)
        .exclude(broker_order_id="")
        .order_by("created_at")
        .values_list("client_order_id", "pk")
    )
    broker = get_broker()
    if broker.manages_legs:
        # Such a broker finds a leg only nested in its parent: ask for the parent, whose state
        # carries its legs' (recorded with it).
        open_orders = legs.orders_to_ask(open_orders)
    for state in broker.orders_after_bars(open_orders, now=now):
        order_id = open_orders.get(state.client_order_id)
        if order_id is None:
            continue  # not one we asked about
        try:
            order = order_record_broker_state(order_id=order_id, state=state)
        except DomainError as exc:
            logger.warning("could not record order %s: %s", order_id, exc.message)
            continue
        result.synced.append(str(order_id))
        if order.status == OrderStatus.FILLED:
            result.filled.append(str(order_id))
        elif order.status == OrderStatus.EXPIRED:
            result.expired.append(str(order_id))
    return result


def orders_at_live_prices(*, prices: list[tuple[str, Decimal, datetime]]) -> list[str]:
    """Live prices arrived (`symbol, price, time`, from the `stream` process's market feed):
    record what the broker reports they did to our open orders (the paper broker's legs and
    trailing stops; nothing for a broker that runs its own). Returns the ids recorded."""
    broker = get_broker()
    recorded = []
    for symbol, price, at in prices:
        for state in broker.orders_at_price(symbol, price, at):
            order_id = (
                Order.objects.filter(client_order_id=state.client_order_id)
                .values_list("pk", flat=True)
                .first()
            )
            if order_id is None:
                continue
            try:
                order_record_broker_state(order_id=order_id, state=state)
            except DomainError as exc:
                logger.warning("could not record order %s: %s", order_id, exc.message)
                continue
            recorded.append(str(order_id))
    return recorded
