"""The kill switch: halt (refuse new orders, cancel open ones, maybe flatten) and resume."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from streaming import events
from streaming.publish import publish
from trading import selectors
from trading.exceptions import DomainError
from trading.models import (
    OPEN_STATUSES,
    KillSwitch,
    Order,
    OrderSide,
    OrderSource,
    Position,
)
from trading.services.order_cancel import cancel_all
from trading.services.order_submit import order_submit

logger = logging.getLogger(__name__)


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
        audit_record(
            action="trading.halt",
            target="kill_switch",
            details={"reason": switch.reason, "flatten": flatten},
        )
    logger.warning("kill switch engaged by %s: %s", by or "system", switch.reason)
    result = HaltResult(switch=switch)
    result.canceled, result.cancel_failed = cancel_all(
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
        audit_record(action="trading.resume", target="kill_switch")
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
    # Each flatten order has its own order.submit entry; this one says why they were sent.
    with transaction.atomic():
        audit_record(
            action="positions.flatten",
            target=f"session:{session.pk}",
            details={
                "reason": reason,
                "orders": [str(order.pk) for order in orders],
                "failed": failed,
            },
            outcome="error" if failed else "ok",
        )
    return orders, failed
