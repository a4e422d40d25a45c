"""Reconciliation: compare local orders and positions with the broker's, repair ours."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from streaming import events
from streaming.publish import publish
from trading import selectors
from trading.brokers import get_broker
from trading.brokers.base import BrokerError, BrokerOrder, BrokerPosition
from trading.exceptions import IllegalTransition
from trading.models import (
    OPEN_STATUSES,
    Order,
    OrderSide,
    OrderSource,
    OrderStatus,
    OrderType,
    Position,
    TimeInForce,
)
from trading.services.fills import order_record_broker_state
from trading.services.legs import legs_cancel_with_parent
from trading.services.order_cancel import cancel_locally, cancel_quietly
from trading.services.order_send import schedule_resubmit
from trading.services.transitions import SIX, ZERO, order_transition, publish_order

logger = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    repairs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"repairs": self.repairs, "errors": self.errors}

    def repaired(self, text: str) -> None:
        logger.warning("reconcile: %s", text)
        self.repairs.append(text)


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
    _reconcile_pending(broker, halted, report)
    _reconcile_open_orders(broker, halted, report)
    _reconcile_positions(broker, report)
    _audit(report)
    publish(events.STATUS, selectors.status_get())
    logger.info(
        "reconcile by %s: %d repairs, %d errors",
        by or "system",
        len(report.repairs),
        len(report.errors),
    )
    return report


def orders_refresh_open(*, by: str = "") -> ReconcileReport:
    """Phase 2 alone: take the broker's truth for open orders (ours it closed meanwhile get their
    final state and fills; its open orders we have no row for are adopted). The stream runs it
    after every (re)connect, before it resumes, and the poll while the stream is down."""
    report = ReconcileReport()
    _reconcile_open_orders(get_broker(), selectors.kill_switch_get().engaged, report)
    _audit(report)
    if report.repairs or report.errors:
        logger.info("open orders refreshed by %s: %s", by or "system", report.as_dict())
    return report


def order_reconcile_unknown(*, state: BrokerOrder) -> ReconcileReport:
    """A broker report (a stream event) about an order we have no row for, by the same rules as
    reconciliation: an order the broker still works is adopted (and canceled if trading is
    halted), as phase 2 does; a closed one is not adopted, but it moved the broker's positions,
    which phase 3 then takes."""
    report = ReconcileReport()
    broker = get_broker()
    if state.status in OPEN_STATUSES:
        _sync_broker_open_order(state, selectors.kill_switch_get().engaged, report)
    else:
        _reconcile_positions(broker, report)
    _audit(report)
    return report


def _audit(report: ReconcileReport) -> None:
    if report.repairs:
        # Beat reconciles every minute: only a run that repaired something is worth an entry.
        from audit.services import audit_record

        with transaction.atomic():
            audit_record(
                action="orders.reconcile",
                target="broker",
                details={"repairs": report.repairs, "errors": report.errors},
            )


# --- phase 1: orders we never heard back about -----------------------------------------------


def _reconcile_pending(broker, halted: bool, report: ReconcileReport) -> None:
    max_age = timedelta(seconds=settings.ORDER_SUBMIT_MAX_AGE_SECONDS)
    # Legs are never sent by themselves: they follow their parent.
    pending = Order.objects.filter(status=OrderStatus.PENDING_SUBMIT, parent__isnull=True)
    for order in pending.order_by("created_at"):
        if order.submit_after is not None and not order.submit_attempts:
            continue  # queued for the open; it has never been sent
        if order.send_lease_until is not None and order.send_lease_until > timezone.now():
            continue  # another process is sending it right now; its answer will be recorded
        try:
            known = broker.order_by_client_id(order.client_order_id)
        except BrokerError as exc:
            report.errors.append(f"lookup of {order.client_order_id} failed: {exc.message}")
            continue
        if known is not None:
            text = f"adopted {order.client_order_id}: the broker has it as {known.status}"
            order = order_record_broker_state(order_id=order.pk, state=known, repair=text)
            report.repaired(text)
            if halted and order.is_open:
                cancel_quietly(order, "kill switch engaged")
        elif halted:
            cancel_locally(order=order, reason="never reached the broker; trading is halted")
            report.repaired(f"canceled {order.client_order_id}: never reached the broker, halted")
        elif timezone.now() - order.created_at > max_age:
            _reject_unconfirmed(order)
            report.repaired(f"rejected {order.client_order_id}: never reached the broker, too old")
        else:
            schedule_resubmit(order)
            report.repairs.append(f"retry scheduled for {order.client_order_id}")


def _reject_unconfirmed(order: Order) -> None:
    """A pending_submit order too old to send: it must not fill hours later."""
    with transaction.atomic():
        locked = Order.objects.select_for_update().get(pk=order.pk)
        if locked.status == OrderStatus.PENDING_SUBMIT:
            order_transition(locked, OrderStatus.REJECTED)
            locked.reject_reason = "submit_unconfirmed: never reached the broker; not resent"
            locked.save(update_fields=["status", "reject_reason", "updated_at"])
            legs_cancel_with_parent(locked, "entry never reached the broker")
            publish_order(locked, "rejected: never reached the broker")


# --- phase 2: open orders on both sides -------------------------------------------------------


def _reconcile_open_orders(broker, halted: bool, report: ReconcileReport) -> None:
    try:
        broker_open = broker.open_orders()
    except BrokerError as exc:
        report.errors.append(f"listing open orders failed: {exc.message}")
        return
    _close_orders_the_broker_closed(broker, {o.client_order_id for o in broker_open}, report)
    for state in broker_open:
        _sync_broker_open_order(state, halted, report)


def _close_orders_the_broker_closed(broker, open_ids: set[str], report: ReconcileReport) -> None:
    """Local open orders the broker no longer lists take its final state (or are closed)."""
    asked: set = set()
    for order in Order.objects.filter(status__in=OPEN_STATUSES).exclude(broker_order_id=""):
        if order.client_order_id in open_ids:
            continue
        if order.parent_id is not None and broker.manages_legs:
            # Such a broker knows a leg only nested in its parent: refresh the parent (legs too).
            if order.parent_id not in asked:
                asked.add(order.parent_id)
                _refresh_parent(broker, order.parent, report)
            continue
        try:
            known = broker.order_by_client_id(order.client_order_id)
        except BrokerError as exc:
            report.errors.append(f"lookup of {order.client_order_id} failed: {exc.message}")
            continue
        if known is None:
            cancel_locally(order=order, reason="unknown to the broker (reconciliation)")
            report.repaired(f"closed {order.client_order_id}: the broker does not know it")
        elif known.status != order.status or known.filled_qty != order.filled_qty:
            text = f"updated {order.client_order_id}: {order.status} -> {known.status}"
            order_record_broker_state(order_id=order.pk, state=known, repair=text)
            report.repaired(text)


def _refresh_parent(broker, parent: Order, report: ReconcileReport) -> None:
    try:
        known = broker.order_by_client_id(parent.client_order_id)
    except BrokerError as exc:
        report.errors.append(f"lookup of {parent.client_order_id} failed: {exc.message}")
        return
    if known is not None:
        order_record_broker_state(order_id=parent.pk, state=known)


def _sync_broker_open_order(state: BrokerOrder, halted: bool, report: ReconcileReport) -> None:
    """An order the broker lists as open: adopt it, or bring ours in line; cancel it if halted."""
    local = Order.objects.filter(client_order_id=state.client_order_id).first()
    if local is None:
        local = _adopt_unknown(state)
        if local is None:
            report.errors.append(f"could not adopt broker order {state.broker_order_id}")
            return
        report.repaired(f"adopted broker order {state.client_order_id} ({state.symbol})")
    elif local.status != state.status or local.filled_qty != state.filled_qty:
        text = f"updated {local.client_order_id}: {local.status} -> {state.status}"
        try:
            local = order_record_broker_state(order_id=local.pk, state=state, repair=text)
            report.repaired(text)
        except IllegalTransition as exc:
            report.errors.append(f"{local.client_order_id}: {exc.message}")
            return
    if local.is_open and (halted or local.reject_reason.startswith("kill switch")):
        cancel_quietly(local, "kill switch engaged (reconciliation)")


# --- phase 3: positions -----------------------------------------------------------------------


def _reconcile_positions(broker, report: ReconcileReport) -> None:
    """Live brokers' positions win (the paper broker's positions are ours: nothing to repair)."""
    session = selectors.session_current() or selectors.session_latest()
    if session is None or not broker.positions_are_independent:
        return
    try:
        theirs = {p.symbol: p for p in broker.positions(session_id=session.pk)}
    except BrokerError as exc:
        report.errors.append(f"listing positions failed: {exc.message}")
        return
    ours = {p.symbol: p for p in Position.objects.filter(session=session)}
    for symbol in sorted(set(theirs) | set(ours)):
        broker_pos = theirs.get(symbol)
        qty = broker_pos.qty if broker_pos else ZERO
        local = ours.get(symbol)
        if (local is not None and local.qty == qty) or (local is None and qty == 0):
            continue
        before = _position_set(session, symbol, broker_pos)
        report.repaired(f"position {symbol}: {before} -> {qty} to match the broker")


def _position_set(session, symbol: str, broker_pos: BrokerPosition | None) -> Decimal:
    """Set our position to the broker's; returns the quantity it had before."""
    qty = broker_pos.qty if broker_pos else ZERO
    avg = broker_pos.avg_entry_price if broker_pos else ZERO
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
    return before


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
