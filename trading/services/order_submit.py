"""Submitting an order: validate, refuse when halted, check risk, commit, send."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, transaction

from audit.services import audit_context, audit_record, records_refusals
from marketdata.selectors import last_price_and_clock, one_market_reading
from streaming import events
from trading import risk, selectors
from trading.exceptions import (
    InvalidOrder,
    NoRunningSession,
    RiskLimitExceeded,
    TradingHalted,
    UnknownSymbol,
)
from trading.models import (
    LegRole,
    Order,
    OrderClass,
    OrderSide,
    OrderSource,
    OrderStatus,
    OrderType,
    SessionStatus,
    TimeInForce,
    TradingSession,
)
from trading.services import order_classes
from trading.services.legs import legs_build
from trading.services.order_send import order_send
from trading.services.transitions import publish_order

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubmitResult:
    order: Order
    created: bool


def _validate(
    *,
    symbol: str,
    side: str,
    qty: Decimal,
    type: str,
    time_in_force: str,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    client_order_id: str | None,
) -> None:
    if not symbol or len(symbol) > 16 or not symbol.replace(".", "").isalnum():
        raise InvalidOrder("symbol must be a ticker such as SPY", details={"field": "symbol"})
    if side not in OrderSide.values:
        raise InvalidOrder(f"side must be one of {OrderSide.values}", details={"field": "side"})
    if type not in OrderType.values:
        raise InvalidOrder(f"type must be one of {OrderType.values}", details={"field": "type"})
    if time_in_force not in TimeInForce.values:
        raise InvalidOrder(
            f"time_in_force must be one of {TimeInForce.values}", details={"field": "time_in_force"}
        )
    if not isinstance(qty, Decimal) or not qty.is_finite() or qty <= 0:
        raise InvalidOrder("qty must be a positive number", details={"field": "qty"})
    if qty.as_tuple().exponent < -6 or qty >= Decimal("1e12"):
        raise InvalidOrder("qty has too many digits", details={"field": "qty"})
    if type == OrderType.TRAILING_STOP and time_in_force not in (TimeInForce.DAY, TimeInForce.GTC):
        raise InvalidOrder(
            "a trailing stop's time in force must be day or gtc",
            details={"field": "time_in_force"},
        )
    for name, value, needed in (
        ("limit_price", limit_price, type in (OrderType.LIMIT, OrderType.STOP_LIMIT)),
        ("stop_price", stop_price, type in (OrderType.STOP, OrderType.STOP_LIMIT)),
    ):
        if needed and value is None:
            raise InvalidOrder(f"{name} is required for {type} orders", details={"field": name})
        if value is not None and (
            not isinstance(value, Decimal)
            or not value.is_finite()
            or value <= 0
            or value >= Decimal("1e13")
            or value.as_tuple().exponent < -6
        ):
            raise InvalidOrder(f"{name} must be a positive price", details={"field": name})
    if client_order_id is not None and not (1 <= len(client_order_id) <= 128):
        raise InvalidOrder(
            "client_order_id must be 1 to 128 characters", details={"field": "client_order_id"}
        )


def _audit_target(kwargs: dict) -> str:
    return kwargs.get("client_order_id") or ""


def _audit_details(kwargs: dict) -> dict:
    """The inputs of a submit that matter when reading the log later."""
    config = kwargs.get("strategy_config")
    details = {
        name: kwargs.get(name)
        for name in (
            "symbol",
            "side",
            "qty",
            "type",
            "time_in_force",
            "limit_price",
            "stop_price",
            "client_order_id",
            "source",
            "trail_price",
            "trail_percent",
        )
        if kwargs.get(name) is not None
    }
    if kwargs.get("order_class") not in (None, OrderClass.SIMPLE):
        details["order_class"] = kwargs["order_class"]
        for leg in ("take_profit", "stop_loss"):
            if isinstance(kwargs.get(leg), dict):
                details[leg] = {k: str(v) for k, v in kwargs[leg].items() if v is not None}
    if config is not None:
        details["strategy"] = config.name
    if kwargs.get("bypass_halt"):
        details["flatten"] = True
    return details


@records_refusals("order.submit", target=_audit_target, details=_audit_details)
@one_market_reading()
def order_submit(
    *,
    symbol: str,
    side: str,
    qty: Decimal,
    type: str = OrderType.MARKET,
    time_in_force: str = TimeInForce.DAY,
    limit_price: Decimal | None = None,
    stop_price: Decimal | None = None,
    client_order_id: str | None = None,
    source: str = OrderSource.API,
    strategy_config=None,
    session: TradingSession | None = None,
    bypass_halt: bool = False,
    order_class: str = OrderClass.SIMPLE,
    take_profit: dict | None = None,
    stop_loss: dict | None = None,
    trail_price: Decimal | None = None,
    trail_percent: Decimal | None = None,
) -> SubmitResult:
    """Validate, refuse when halted, check risk, commit the order, send it, record the answer.

    The same client_order_id returns the existing order and never reaches the broker twice: the
    database's unique constraint decides, so concurrent retries cannot both insert.
    `bypass_halt` is only for the kill switch's own flatten orders. Protective orders
    (`order_class` bracket/oco/oto with `take_profit`/`stop_loss`, `type` trailing_stop with
    `trail_price` or `trail_percent`) follow trading.services.order_classes; the legs are
    committed with their parent.
    """
    from marketdata import calendar

    symbol = (symbol or "").upper().strip()
    if order_class == OrderClass.OCO and limit_price is None and isinstance(take_profit, dict):
        limit_price = take_profit.get("limit_price")  # an OCO's limit is its take-profit
    _validate(
        symbol=symbol,
        side=side,
        qty=qty,
        type=type,
        time_in_force=time_in_force,
        limit_price=limit_price,
        stop_price=stop_price,
        client_order_id=client_order_id,
    )
    order_classes.validate_supported(order_class=order_class, type=type)
    order_classes.validate_trailing(
        type=type,
        order_class=order_class,
        trail_price=trail_price,
        trail_percent=trail_percent,
        limit_price=limit_price,
        stop_price=stop_price,
    )
    take_profit, stop_loss = order_classes.validate_class(
        order_class=order_class,
        side=side,
        type=type,
        time_in_force=time_in_force,
        limit_price=limit_price,
        stop_price=stop_price,
        take_profit=take_profit,
        stop_loss=stop_loss,
    )
    gate = selectors.trading_gate(client_order_id)
    if gate.existing is not None:
        return SubmitResult(gate.existing, created=False)
    if not bypass_halt and gate.halted:
        raise TradingHalted(
            "trading is halted by the kill switch", details={"reason": gate.halt_reason}
        )
    session = session or gate.session
    if session is None or session.status != SessionStatus.RUNNING:
        raise NoRunningSession("no trading session is running")

    price, clock = last_price_and_clock(symbol)
    if price is None:
        raise UnknownSymbol(
            f"unknown symbol {symbol!r}: no market data", details={"symbol": symbol}
        )
    if not bypass_halt:
        breached, loss = risk.daily_loss_breached(session=session, at=clock["market_time"])
        if breached:
            # Imported here: the kill switch's flatten submits orders through this module.
            from trading.services.kill_switch import trading_halt

            # The limit halts, not the caller whose order found it out.
            with audit_context(actor="system", via="system"):
                trading_halt(reason=f"daily loss limit reached (lost {loss:.2f} today)", by="risk")
            raise RiskLimitExceeded(
                f"the daily loss limit is reached (lost {loss:.2f} today); trading is halted",
                code="daily_loss_limit",
                details={"loss": str(loss)},
            )
    if order_class != OrderClass.SIMPLE:
        order_classes.validate_prices(
            order_class=order_class,
            side=side,
            type=type,
            limit_price=limit_price,
            stop_price=stop_price,
            price=price,
            take_profit=take_profit,
            stop_loss=stop_loss,
            position_qty=risk.position_qty(session.pk, symbol),
            qty=qty,
        )
    # A bracket is judged by its entry's exposure: its exits only ever close what the entry
    # opened (risk.check_order does not count open legs as exposure).
    risk.check_order(
        session=session,
        symbol=symbol,
        side=side,
        qty=qty,
        price=price,
        order_type=type,
        limit_price=limit_price,
        reduces_only=bypass_halt,
    )
    limits = risk.limits_for(session)
    submit_after = None
    if limits.enforce_market_hours and not clock["market_open"]:
        next_open = calendar.next_open(clock["market_time"])
        if not limits.queue_when_closed:
            raise RiskLimitExceeded(
                f"the market is closed; it opens at {next_open.isoformat()}",
                code="market_closed",
                details={"next_open": events.iso_utc(next_open)},
            )
        submit_after = next_open

    client_order_id = client_order_id or f"trp-{uuid.uuid4().hex}"
    order = Order(
        client_order_id=client_order_id,
        session=session,
        strategy_config=strategy_config,
        source=source,
        symbol=symbol,
        side=side,
        type=type,
        qty=qty,
        limit_price=limit_price,
        stop_price=stop_price,
        time_in_force=time_in_force,
        status=OrderStatus.PENDING_SUBMIT,
        submit_after=submit_after,
        order_class=order_class,
        leg_role=LegRole.TAKE_PROFIT if order_class == OrderClass.OCO else "",
        trail_price=trail_price,
        trail_percent=trail_percent,
    )
    try:
        # The order row and its audit entry commit together; inside a caller's transaction
        # this is a savepoint, so a lost race does not break that transaction.
        with transaction.atomic():
            order.save(force_insert=True)
            if order_class != OrderClass.SIMPLE:
                Order.objects.bulk_create(
                    legs_build(parent=order, take_profit=take_profit, stop_loss=stop_loss)
                )
            audit_record(
                action="order.submit",
                target=order.pk,
                details={
                    **_audit_details(
                        dict(
                            symbol=symbol,
                            side=side,
                            qty=qty,
                            type=type,
                            time_in_force=time_in_force,
                            limit_price=limit_price,
                            stop_price=stop_price,
                            source=source,
                            strategy_config=strategy_config,
                            bypass_halt=bypass_halt,
                            order_class=order_class,
                            take_profit=take_profit,
                            stop_loss=stop_loss,
                            trail_price=trail_price,
                            trail_percent=trail_percent,
                        )
                    ),
                    "client_order_id": client_order_id,
                },
            )
    except IntegrityError:
        # A concurrent request with the same client_order_id won the insert.
        return SubmitResult(Order.objects.get(client_order_id=client_order_id), created=False)

    if submit_after is not None:
        logger.info("order %s queued until the open at %s", order.client_order_id, submit_after)
        publish_order(order)
        return SubmitResult(order, created=True)
    order = order_send(order=order, bypass_halt=bypass_halt, market_time=clock["market_time"])
    if order.status == OrderStatus.PENDING_SUBMIT:
        # Every other outcome published its own order_update with the final state.
        publish_order(order)
    return SubmitResult(order, created=True)
