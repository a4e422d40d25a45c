"""Protective orders: the legs of bracket, OTO and OCO orders, and what happens to them.

A bracket or OTO entry is the parent; its exits (take-profit limit, stop-loss stop or
stop-limit) are legs. An OCO is exit-only: its parent is the take-profit limit order and its one
leg the stop-loss. The rules, for a broker that does not run legs itself (the paper broker;
Alpaca runs them natively and we record what it reports, `BaseBroker.manages_legs`):

- exit legs are `held` until the entry is completely filled, then work (for the entry's filled
  quantity); an entry that ends unfilled or partly filled (canceled, expired, rejected) takes
  its legs with it;
- when one exit of a group fills, its sibling is canceled in the same transaction; a partial
  fill shrinks the sibling to what is left;
- the group's root (the entry, or the OCO's take-profit) is locked before any member, on every
  path (`group_lock`), so two bar-processing runs recording different legs of one group are
  serialized and the second finds its leg already canceled (`state_is_stale`): never both
  filled, and no deadlock.
"""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal

from django.utils import timezone

from core import sql
from streaming import events
from trading import selectors
from trading.brokers.base import BrokerOrder
from trading.models import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    LegRole,
    Order,
    OrderClass,
    OrderStatus,
    OrderType,
)
from trading.services.transitions import order_event, order_transition

logger = logging.getLogger(__name__)

S = OrderStatus


def exit_side(side: str) -> str:
    return "sell" if side == "buy" else "buy"


def _leg_client_id(parent_id: str, role: str) -> str:
    suffix = "-tp" if role == LegRole.TAKE_PROFIT else "-sl"
    if len(parent_id) + len(suffix) <= 128:
        return parent_id + suffix
    return f"trp-{uuid.uuid4().hex}{suffix}"


def legs_build(*, parent: Order, take_profit: dict | None, stop_loss: dict | None) -> list[Order]:
    """The leg rows of a new parent (saved by the caller, in the parent's transaction)."""
    side = parent.side if parent.order_class == OrderClass.OCO else exit_side(parent.side)
    common = {
        "session": parent.session,
        "strategy_config": parent.strategy_config,
        "source": parent.source,
        "symbol": parent.symbol,
        "side": side,
        "qty": parent.qty,
        "time_in_force": parent.time_in_force,
        "order_class": parent.order_class,
        "parent": parent,
        # Never sent by themselves (order_send refuses legs): they go with their parent.
        "status": S.PENDING_SUBMIT,
    }
    legs = []
    if take_profit is not None and parent.order_class != OrderClass.OCO:
        legs.append(
            Order(
                client_order_id=_leg_client_id(parent.client_order_id, LegRole.TAKE_PROFIT),
                leg_role=LegRole.TAKE_PROFIT,
                type=OrderType.LIMIT,
                limit_price=take_profit["limit_price"],
                **common,
            )
        )
    if stop_loss is not None:
        stop_limit = stop_loss.get("limit_price")
        legs.append(
            Order(
                client_order_id=_leg_client_id(parent.client_order_id, LegRole.STOP_LOSS),
                leg_role=LegRole.STOP_LOSS,
                type=OrderType.STOP_LIMIT if stop_limit is not None else OrderType.STOP,
                stop_price=stop_loss["stop_price"],
                limit_price=stop_limit,
                **common,
            )
        )
    return legs


def is_grouped(order: Order | BrokerOrder) -> bool:
    return getattr(order, "order_class", OrderClass.SIMPLE) not in ("", OrderClass.SIMPLE)


def group_lock(order_id) -> None:
    """Lock the root of the order's group (its parent, or itself for a root) before the order
    itself is locked: every path that changes a group member takes the root first."""
    row = Order.objects.filter(pk=order_id).values_list("parent_id", flat=True).first()
    root = row or order_id
    list(Order.objects.select_for_update().filter(pk=root).values_list("pk", flat=True))


def is_exit(order: Order) -> bool:
    """A leg, or an OCO's take-profit parent: an order of a group whose fill cancels its
    sibling."""
    return order.parent_id is not None or (
        order.order_class == OrderClass.OCO and order.parent_id is None
    )


def state_is_stale(order: Order, state: BrokerOrder) -> bool:
    """A report about an exit that this system already closed (its sibling filled, or its
    entry went away) in a run that got the group's lock first: it must not be applied."""
    return (
        is_exit(order)
        and order.status in (S.CANCELED, S.EXPIRED, S.REJECTED)
        and (state.status != order.status or state.filled_qty > order.filled_qty)
    )


def _group_members(order: Order) -> list[Order]:
    """The exits of the order's group other than itself, locked (its root is already)."""
    root_id = order.parent_id or order.pk
    members = Order.objects.select_for_update().filter(parent_id=root_id).order_by("pk")
    found = [m for m in members if m.pk != order.pk]
    if order.parent_id is not None:
        root = Order.objects.get(pk=root_id)
        if root.order_class == OrderClass.OCO:
            found.insert(0, root)
    return found


def _save(order: Order) -> tuple[str, dict]:
    sql.save_existing(order)
    return (events.ORDER_UPDATE, order_event(order))


def _close(order: Order, status: str, reason: str) -> tuple[str, dict]:
    order_transition(order, status)
    order.canceled_at = order.canceled_at or timezone.now()
    order.reject_reason = reason[:255]
    return _save(order)


def _activate(leg: Order, *, qty: Decimal, market_time) -> tuple[str, dict]:
    """A held leg starts working: from `market_time` on, bars (or ticks) may fill it."""
    from trading.services.fills import set_market_times

    order_transition(leg, S.ACCEPTED)
    leg.qty = qty
    if not leg.broker_order_id:
        leg.broker_order_id = f"paper-{uuid.uuid4()}"
    leg.submitted_at = leg.submitted_at or timezone.now()
    leg.market_time = None
    set_market_times(leg, market_time)
    return _save(leg)


def legs_after_record(
    order: Order, *, filled_before: Decimal, market_time=None
) -> list[tuple[str, dict]]:
    """Apply the group rules after `order`'s new state was recorded (same transaction, the
    group's root locked). Returns the events of the legs it changed."""
    if not is_grouped(order):
        return []
    if order.parent_id is None and order.order_class in (OrderClass.BRACKET, OrderClass.OTO):
        return _entry_changed(order, market_time)
    changed: list[tuple[str, dict]] = []
    if order.parent_id is None and order.order_class == OrderClass.OCO:
        changed += _oco_root_changed(order, market_time)
    if order.filled_qty > filled_before:
        changed += _exit_filled(order)
    return changed


def _entry_changed(entry: Order, market_time) -> list[tuple[str, dict]]:
    changed = []
    for leg in Order.objects.select_for_update().filter(parent_id=entry.pk).order_by("pk"):
        if leg.status not in OPEN_STATUSES:
            continue
        if entry.status == S.FILLED:
            if leg.status in (S.PENDING_SUBMIT, S.HELD):
                changed.append(_activate(leg, qty=entry.filled_qty, market_time=market_time))
        elif entry.status in FINAL_STATUSES:
            changed.append(_close(leg, S.CANCELED, f"entry order {entry.status}"))
        elif leg.status == S.PENDING_SUBMIT and entry.status != S.PENDING_SUBMIT:
            order_transition(leg, S.HELD)
            changed.append(_save(leg))
    return changed


def _oco_root_changed(root: Order, market_time) -> list[tuple[str, dict]]:
    changed = []
    for leg in Order.objects.select_for_update().filter(parent_id=root.pk).order_by("pk"):
        if leg.status == S.PENDING_SUBMIT and root.status in (S.NEW, S.ACCEPTED):
            changed.append(_activate(leg, qty=root.qty, market_time=market_time))
        elif leg.status in OPEN_STATUSES and root.status in (S.CANCELED, S.EXPIRED, S.REJECTED):
            changed.append(_close(leg, S.CANCELED, f"take-profit order {root.status}"))
    return changed


def _exit_filled(order: Order) -> list[tuple[str, dict]]:
    """One exit filled (wholly or partly): cancel or shrink its sibling."""
    changed = []
    left = order.qty - order.filled_qty
    for sibling in _group_members(order):
        if sibling.status not in OPEN_STATUSES:
            continue
        if order.status == S.FILLED:
            role = order.leg_role or "exit"
            changed.append(_close(sibling, S.CANCELED, f"one-cancels-other: {role} filled"))
        else:
            # Only what the filled part left may still be closed by the sibling.
            sibling.qty = sibling.filled_qty + left
            changed.append(_save(sibling))
    return changed


def legs_cancel_with_parent(parent: Order, reason: str) -> None:
    """Canceling a parent cancels its open legs (locally: a broker that runs legs itself
    cancels them with their parent). Runs inside the parent's cancel transaction."""
    from streaming.publish import publish_many

    if parent.parent_id is not None or parent.order_class == OrderClass.SIMPLE:
        return
    changed = []
    for leg in Order.objects.select_for_update().filter(parent_id=parent.pk).order_by("pk"):
        if leg.status in OPEN_STATUSES:
            changed.append(_close(leg, S.CANCELED, f"parent canceled: {reason}"))
    publish_many(changed)


def leg_states(state: BrokerOrder) -> list[tuple[Order, BrokerOrder]]:
    """Our leg rows matched to the legs a broker reported for their parent (by role)."""
    if not state.legs:
        return []
    ours = {
        leg.leg_role: leg
        for leg in Order.objects.filter(parent__client_order_id=state.client_order_id)
    }
    matched = []
    for leg_state in state.legs:
        role = leg_state.leg_role or (
            LegRole.TAKE_PROFIT if leg_state.type == OrderType.LIMIT else LegRole.STOP_LOSS
        )
        leg = ours.get(role)
        if leg is not None:
            matched.append((leg, leg_state))
    return matched


def legs_record_reported(state: BrokerOrder, *, record) -> None:
    """Record each leg a broker that runs legs itself reported with its parent (`record` is
    fills.order_record_broker_state). Each is a savepoint: one leg the broker surprises us
    with spoils nothing else."""
    from trading.exceptions import DomainError

    for leg, leg_state in leg_states(state):
        try:
            record(order_id=leg.pk, state=leg_state)
        except DomainError as exc:
            logger.warning("leg %s not recorded: %s", leg.client_order_id, exc.message)


def orders_to_ask(open_orders: dict[str, object]) -> dict[str, object]:
    """For a broker that runs legs itself: the legs are read through their parent (Alpaca
    finds a leg only nested in its parent), so ask for the parent instead of each leg."""
    leg_ids = [pk for pk in open_orders.values()]
    parents = dict(
        Order.objects.filter(pk__in=leg_ids, parent__isnull=False).values_list(
            "parent__client_order_id", "parent_id"
        )
    )
    leg_coids = set(
        Order.objects.filter(pk__in=leg_ids, parent__isnull=False).values_list(
            "client_order_id", flat=True
        )
    )
    asked = {coid: pk for coid, pk in open_orders.items() if coid not in leg_coids}
    asked.update(parents)
    return asked


def parent_payload_refresh(order: Order) -> None:
    """After a leg changed, its parent's nested `legs` changed too: publish the parent."""
    if order.parent_id is None:
        return
    from streaming.publish import publish

    parent = Order.objects.get(pk=order.parent_id)
    publish(events.ORDER_UPDATE, selectors.order_payload(parent))
