"""After each collection: queued orders, resting paper orders, day-order expiry."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal

from trading import selectors
from trading.brokers import get_broker
from trading.brokers.base import BrokerError, BrokerOrder, Fill
from trading.exceptions import DomainError
from trading.models import (
    OPEN_STATUSES,
    Order,
    OrderSide,
    OrderStatus,
    TradingSession,
)
from trading.services.fills import order_record_broker_state
from trading.services.order_cancel import _cancel_locally
from trading.services.order_send import order_send
from trading.services.transitions import ZERO

logger = logging.getLogger(__name__)


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
