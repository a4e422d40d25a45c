from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db.models import Q, QuerySet, Sum

from core import sql
from core.shapes import flat_encoder
from trading.api import serializers as s
from trading.brokers.base import BrokerOrder
from trading.models import (
    OPEN_STATUSES,
    EquitySnapshot,
    KillSwitch,
    Order,
    OrderClass,
    Position,
    SessionStatus,
    Trade,
    TradingSession,
)

ZERO = Decimal("0")


def session_current() -> TradingSession | None:
    """The running session, or None when trading is stopped."""
    return TradingSession.objects.filter(status=SessionStatus.RUNNING).first()


def session_latest() -> TradingSession | None:
    return TradingSession.objects.order_by("-started_at", "-id").first()


def kill_switch_get() -> KillSwitch:
    switch, _ = KillSwitch.objects.get_or_create(pk=1)
    return switch


@dataclass(frozen=True)
class TradingGate:
    """What order submission checks first: a known client_order_id, the kill switch and the
    running session."""

    existing: Order | None
    halted: bool
    halt_reason: str
    session: TradingSession | None


def trading_gate(client_order_id: str | None = None) -> TradingGate:
    """The order already stored under `client_order_id` (if any), the kill switch and the
    running session, read in one round trip: the hot path of every order (hand-written SQL,
    see core.sql). Separate reads only happen when the id is known (then the order is
    fetched) or no session runs."""
    quote = sql.quote
    session_fields = TradingSession._meta.concrete_fields
    known = (
        f"(SELECT id FROM {quote(Order._meta.db_table)} WHERE client_order_id = %s)"
        if client_order_id
        else "NULL"
    )
    params = [client_order_id] if client_order_id else []
    row = sql.select_one(
        f"SELECT {sql.columns(TradingSession, 's')}, k.engaged, k.reason, {known} "
        f"FROM {quote(TradingSession._meta.db_table)} s "
        f"LEFT JOIN {quote(KillSwitch._meta.db_table)} k ON k.id = 1 "
        "WHERE s.status = %s ORDER BY s.started_at DESC LIMIT 1",
        [*params, SessionStatus.RUNNING],
        [*session_fields, *sql.fields_of(KillSwitch, "engaged", "reason"), Order._meta.pk],
    )
    if row is None:
        existing = (
            Order.objects.filter(client_order_id=client_order_id).first()
            if client_order_id
            else None
        )
        switch = kill_switch_get()
        return TradingGate(existing, halted=switch.engaged, halt_reason=switch.reason, session=None)
    session = sql.instance_from_row(TradingSession, row[: len(session_fields)])
    halted, halt_reason, existing_id = row[len(session_fields) :]
    existing = Order.objects.get(pk=existing_id) if existing_id else None
    return TradingGate(
        existing, halted=bool(halted), halt_reason=halt_reason or "", session=session
    )


def order_lock(order_id: uuid.UUID | str) -> Order:
    """The order, its row locked until the caller's transaction ends (the fill's hot path:
    hand-written SQL, see core.sql). Raises Order.DoesNotExist."""
    order = sql.instance(
        Order,
        f"SELECT {sql.columns(Order)} FROM {sql.quote(Order._meta.db_table)} "
        f"WHERE id = %s{sql.for_update()}",
        [sql.db_value(Order, "id", order_id)],
    )
    if order is None:
        raise Order.DoesNotExist(f"no order {order_id}")
    return order


def position_lock(session_id: int, symbol: str) -> Position | None:
    """The session's position in `symbol`, its row locked until the caller's transaction
    ends, or None when it has none yet."""
    return sql.instance(
        Position,
        f"SELECT {sql.columns(Position)} FROM {sql.quote(Position._meta.db_table)} "
        f"WHERE session_id = %s AND symbol = %s{sql.for_update()}",
        [session_id, symbol],
    )


def positions_list(
    session: TradingSession | None = None, *, open_only: bool = True
) -> QuerySet[Position]:
    session = session or session_latest()
    positions = Position.objects.filter(session=session)
    return positions.exclude(qty=0) if open_only else positions


def trades_list(session: TradingSession | None = None) -> QuerySet[Trade]:
    trades = Trade.objects.select_related("order")
    return trades.filter(session=session) if session else trades


def orders_list() -> QuerySet[Order]:
    return Order.objects.all()


def orders_open_with_legs() -> QuerySet[Order]:
    """Open top-level orders, and filled ones whose exit legs still work (a bracket after its
    entry filled), newest first, legs nested."""
    working_legs = Order.objects.filter(status__in=OPEN_STATUSES, parent__isnull=False)
    return (
        Order.objects.filter(parent__isnull=True)
        .filter(Q(status__in=OPEN_STATUSES) | Q(pk__in=working_legs.values("parent_id")))
        .prefetch_related("legs")
        .order_by("-created_at")
    )


def portfolio_get(session: TradingSession | None = None) -> dict:
    session = session or session_latest()
    if session is None:
        return {
            "session_id": None,
            "cash": ZERO,
            "equity": ZERO,
            "positions_value": ZERO,
            "unrealized_pnl": ZERO,
            "realized_pnl": ZERO,
            "positions": [],
        }
    positions = list(positions_list(session, open_only=False))
    value = sum((p.market_value for p in positions), ZERO)
    return {
        "session_id": session.pk,
        "cash": session.cash,
        "equity": session.cash + value,
        "positions_value": value,
        "unrealized_pnl": sum((p.unrealized_pnl for p in positions), ZERO),
        "realized_pnl": sum((p.realized_pnl for p in positions), ZERO),
        "starting_equity": session.starting_equity,
        "positions": [position_payload(p) for p in positions if p.qty != 0],
    }


def status_get() -> dict:
    """The snapshot behind GET /status and the WebSocket `status` event (JSON-ready)."""
    from marketdata.selectors import last_collected_at, market_clock
    from realtime.state import streams_get
    from streaming.events import iso_utc
    from trading.brokers import broker_health

    session = session_current() or session_latest()
    switch = kill_switch_get()
    clock = market_clock()
    collected = last_collected_at()
    return {
        "trading_enabled": bool(
            session and session.status == SessionStatus.RUNNING and not switch.engaged
        ),
        "halted": switch.engaged,
        "kill_switch": {
            "engaged": switch.engaged,
            "reason": switch.reason,
            "changed_at": iso_utc(switch.changed_at) if switch.changed_at else None,
        },
        "session": session_payload(session) if session else None,
        "broker": settings.BROKER,
        "broker_state": broker_health(),
        "marketdata_provider": settings.MARKETDATA_PROVIDER,
        "clock": clock["clock"],
        "market_time": iso_utc(clock["market_time"]),
        "market_open": clock["market_open"],
        "symbols": settings.PRIMARY_SYMBOLS,
        "last_collection_at": iso_utc(collected) if collected else None,
        "open_orders": Order.objects.filter(status__in=OPEN_STATUSES).count(),
        # The `stream` process's connections (realtime.state; {} when none runs).
        "streams": streams_get(),
    }


def performance_get(session: TradingSession | None = None) -> dict:
    session = session or session_latest()
    if session is None:
        return {
            "session_id": None,
            "equity": "0",
            "cash": "0",
            "total_return": None,
            "realized_pnl": "0",
        }
    portfolio = portfolio_get(session)
    realized = (
        Trade.objects.filter(session=session).aggregate(total=Sum("realized_pnl"))["total"] or ZERO
    )
    equity = portfolio["equity"]
    total_return = (equity / session.starting_equity - 1) if session.starting_equity else None
    return {
        "session_id": session.pk,
        "equity": str(equity),
        "cash": str(session.cash),
        "starting_equity": str(session.starting_equity),
        "total_return": float(total_return) if total_return is not None else None,
        "realized_pnl": str(realized),
        "unrealized_pnl": str(portfolio["unrealized_pnl"]),
        "trades": Trade.objects.filter(session=session).count(),
    }


def equity_curve(session: TradingSession) -> QuerySet[EquitySnapshot]:
    return EquitySnapshot.objects.filter(session=session).order_by("timestamp")


def session_payload(session: TradingSession) -> dict:
    return flat_encoder(s.SessionSummarySerializer)(session)


def position_payload(position: Position) -> dict:
    """The `position_update` event and the dashboard's positions (PositionPayloadSerializer)."""
    return flat_encoder(s.PositionPayloadSerializer)(position)


def order_payload(order: Order) -> dict:
    """OrderSerializer(order).data at a hundredth of its cost, derived from that declaration
    (tests hold them equal): the order_update event and the order submit answer. A simple
    order has no legs, so it costs no query for them."""
    leg = flat_encoder(s.OrderLegSerializer)
    payload = leg(order)
    payload["legs"] = [leg(child) for child in order_legs(order)]
    return payload


def order_legs(order: Order) -> list[Order]:
    """The legs of an order, oldest first (none for a simple order or a leg)."""
    if order.order_class == OrderClass.SIMPLE or order.parent_id is not None:
        return []
    return list(order.legs.all())


def trade_payload(trade: Trade) -> dict:
    """The `trade_update` event (TradePayloadSerializer)."""
    return flat_encoder(s.TradePayloadSerializer)(trade)


def broker_orders_from_db(
    *, status: str = "open", session_id: int | None = None
) -> list[BrokerOrder]:
    orders = Order.objects.exclude(broker_order_id="")
    if status == "open":
        orders = orders.filter(status__in=OPEN_STATUSES)
    if session_id:
        orders = orders.filter(session_id=session_id)
    return [broker_order_of(o) for o in orders]


def broker_order_from_db(client_order_id: str) -> BrokerOrder | None:
    order = (
        Order.objects.filter(client_order_id=client_order_id).exclude(broker_order_id="").first()
    )
    return broker_order_of(order) if order else None


def broker_order_of(order: Order) -> BrokerOrder:
    return BrokerOrder(
        client_order_id=order.client_order_id,
        broker_order_id=order.broker_order_id,
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        qty=order.qty,
        status=order.status,
        filled_qty=order.filled_qty,
        filled_avg_price=order.filled_avg_price,
        limit_price=order.limit_price,
        stop_price=order.stop_price,
        time_in_force=order.time_in_force,
        reject_reason=order.reject_reason,
        submitted_at=order.submitted_at,
        order_class=order.order_class,
        leg_role=order.leg_role,
        hwm=order.hwm,
    )


def orders_filtered(
    *,
    statuses: list[str] | None = None,
    symbol: str | None = None,
    start=None,
    end=None,
) -> QuerySet[Order]:
    """Top-level orders, their legs nested (as Alpaca's `nested=true`); a status filter
    matches an order whose own status or one of whose legs' status is asked for."""
    orders = Order.objects.filter(parent__isnull=True).prefetch_related("legs")
    if statuses:
        with_leg = Order.objects.filter(status__in=statuses, parent__isnull=False)
        orders = orders.filter(Q(status__in=statuses) | Q(pk__in=with_leg.values("parent_id")))
    if symbol:
        orders = orders.filter(symbol=symbol.upper())
    if start:
        orders = orders.filter(created_at__gte=start)
    if end:
        orders = orders.filter(created_at__lte=end)
    return orders.order_by("-created_at", "-id")


def order_get(order_id: str) -> Order | None:
    """An order by its id (a UUID) or, failing that, by its client_order_id."""
    import uuid

    try:
        order = Order.objects.filter(pk=uuid.UUID(order_id)).first()
    except ValueError:
        order = None
    return order or Order.objects.filter(client_order_id=order_id).first()


def sessions_list() -> QuerySet[TradingSession]:
    return TradingSession.objects.order_by("-started_at", "-id")


def account_get() -> dict:
    """The broker's account for the current session (raises BrokerError when unreachable)."""
    from trading.brokers import get_broker

    session = session_current() or session_latest()
    broker = get_broker()
    account = broker.account(session_id=session.pk if session else None)
    return {
        "broker": broker.name,
        "session_id": session.pk if session else None,
        "cash": account.cash,
        "equity": account.equity,
        "buying_power": account.buying_power,
        "currency": account.currency,
        "status": account.status,
        "halted": kill_switch_get().engaged,
    }
