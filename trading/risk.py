"""Pre-trade risk checks. Each failure raises RiskLimitExceeded (HTTP 422) with its own code.

Limits come from the RISK_* settings, overridden per session by `TradingSession.risk_limits`
(a JSON object with the keys of LIMIT_KEYS). An unset limit does not apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import F, Sum

from core import sql
from marketdata.models import SYMBOL_RE
from trading.exceptions import (
    InsufficientBuyingPower,
    InvalidOrder,
    LooserRiskLimits,
    RiskLimitExceeded,
)
from trading.models import (
    OPEN_STATUSES,
    EquitySnapshot,
    Order,
    OrderSide,
    Position,
    TradingSession,
)

ZERO = Decimal("0")
NEW_YORK = ZoneInfo("America/New_York")

# key -> (setting, kind)
LIMIT_KEYS: dict[str, tuple[str, str]] = {
    "symbol_allowlist": ("RISK_SYMBOL_ALLOWLIST", "symbols"),
    "max_order_notional": ("RISK_MAX_ORDER_NOTIONAL", "decimal"),
    "max_position_value": ("RISK_MAX_POSITION_VALUE", "decimal"),
    "max_open_orders": ("RISK_MAX_OPEN_ORDERS", "int"),
    "daily_loss_limit": ("RISK_DAILY_LOSS_LIMIT", "decimal"),
    "allow_short": ("RISK_ALLOW_SHORT", "bool"),
    "enforce_market_hours": ("RISK_ENFORCE_MARKET_HOURS", "bool"),
    "queue_when_closed": ("RISK_QUEUE_WHEN_CLOSED", "bool"),
}


@dataclass(frozen=True)
class Limits:
    symbol_allowlist: list[str]
    max_order_notional: Decimal | None
    max_position_value: Decimal | None
    max_open_orders: int | None
    daily_loss_limit: Decimal | None
    allow_short: bool
    enforce_market_hours: bool
    queue_when_closed: bool


def limits_validate(raw: Any, *, allow_loosen: bool = False) -> dict[str, Any]:
    """Clean a per-session `risk_limits` object; raises InvalidOrder naming the bad key, and
    LooserRiskLimits (403) for a key that loosens its setting unless `allow_loosen` (an admin
    with `trading.loosen_risk_limits`)."""
    cleaned = _limits_clean(raw)
    looser = limits_looser(cleaned)
    if looser and not allow_loosen:
        raise LooserRiskLimits(
            "risk_limits may only tighten the operator's RISK_* settings: "
            + ", ".join(looser)
            + " would loosen them (an admin with the loosen_risk_limits permission can)",
            details={"looser": looser},
        )
    return cleaned


def _setting(key: str) -> Any:
    return getattr(settings, LIMIT_KEYS[key][0], None)


def limits_looser(cleaned: dict[str, Any]) -> list[str]:
    """The keys of `cleaned` that would allow more than the RISK_* settings do."""
    looser = []
    for key, value in cleaned.items():
        base = _setting(key)
        kind = LIMIT_KEYS[key][1]
        if kind == "symbols":
            allowed = {s.upper() for s in base or []}
            # An empty or removed allowlist allows every symbol.
            if allowed and (not value or not set(value) <= allowed):
                looser.append(key)
        elif kind in ("decimal", "int"):
            if kind == "int" and not base:
                base = None  # 0 means "no limit" for RISK_MAX_OPEN_ORDERS
            if base is None:
                continue  # no limit set: any value tightens
            if (
                value is None
                or (kind == "int" and not value)
                or Decimal(str(value)) > Decimal(str(base))
            ):
                looser.append(key)
        elif key == "enforce_market_hours":
            if base and value is not True:
                looser.append(key)
        elif not base and value:  # allow_short, queue_when_closed: True lets more orders in
            looser.append(key)
    return looser


def _limits_clean(raw: Any) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InvalidOrder("risk_limits must be a JSON object", details={"field": "risk_limits"})
    cleaned: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in LIMIT_KEYS:
            raise InvalidOrder(
                f"unknown risk limit {key!r}",
                details={"field": f"risk_limits.{key}", "known": sorted(LIMIT_KEYS)},
            )
        kind = LIMIT_KEYS[key][1]
        try:
            cleaned[key] = None if value is None else _LIMIT_CLEANERS[kind](value)
        except (TypeError, ValueError, InvalidOperation):
            raise InvalidOrder(
                f"risk_limits.{key} is not a valid {kind}", details={"field": key}
            ) from None
    return cleaned


def _clean_symbols(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise TypeError
    # A typo ("SPY QQQ" as one entry) would silently allow nothing: refuse it.
    symbols = [s.upper().strip() for s in value]
    if not all(SYMBOL_RE.match(s) for s in symbols):
        raise ValueError
    return symbols


def _clean_decimal(value: Any) -> str:
    if isinstance(value, bool):
        raise TypeError
    number = Decimal(str(value))
    if not number.is_finite() or number < 0:
        raise ValueError
    return str(number)


def _clean_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError
    return value


def _clean_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError
    return value


_LIMIT_CLEANERS = {
    "symbols": _clean_symbols,
    "decimal": _clean_decimal,
    "int": _clean_int,
    "bool": _clean_bool,
}


def limits_for(session: TradingSession) -> Limits:
    values: dict[str, Any] = {}
    overrides = session.risk_limits or {}
    for key, (setting, kind) in LIMIT_KEYS.items():
        value = overrides[key] if key in overrides else getattr(settings, setting, None)
        if kind == "decimal" and value is not None:
            value = Decimal(str(value))
        if kind == "int" and not value:
            value = None
        if kind == "symbols":
            value = [s.upper().strip() for s in value or []]
        values[key] = value
    return Limits(**values)


def day_start(at: datetime) -> datetime:
    """Midnight in New York of the market day containing `at` (the daily loss window)."""
    local = at.astimezone(NEW_YORK)
    return datetime.combine(local.date(), time(0), tzinfo=NEW_YORK)


def daily_loss(*, session: TradingSession, at: datetime) -> Decimal:
    """How much equity the session lost since the start of the market day (0 if it gained)."""
    start = day_start(at)
    before = (
        EquitySnapshot.objects.filter(session=session, timestamp__lt=start)
        .order_by("-timestamp")
        .values_list("equity", flat=True)
        .first()
    )
    opening = before if before is not None else session.starting_equity
    value = Position.objects.filter(session=session).aggregate(
        total=Sum(F("qty") * F("last_price"))
    )["total"]
    cash = TradingSession.objects.values_list("cash", flat=True).get(pk=session.pk)
    equity = cash + (value or ZERO)
    return max(opening - equity, ZERO)


def daily_loss_breached(*, session: TradingSession, at: datetime) -> tuple[bool, Decimal]:
    limit = limits_for(session).daily_loss_limit
    if limit is None:
        return False, ZERO
    loss = daily_loss(session=session, at=at)
    return loss >= limit, loss


def _reserved_cash(open_orders: list[tuple], price_of) -> Decimal:
    """Cash that open buy orders may still spend (their unfilled part at their limit or price)."""
    total = ZERO
    for symbol, side, qty, filled, limit_price in open_orders:
        if side == OrderSide.BUY:
            total += (qty - filled) * (limit_price or price_of(symbol) or ZERO)
    return total


# Every order reads these two: hand-written SQL (see core.sql).
def _open_orders(session_id: int) -> list[tuple]:
    """(symbol, side, qty, filled_qty, limit_price) of the session's open orders.

    Protective exits (bracket/OTO/OCO legs, an OCO's take-profit) are left out: they only close
    what their entry or the position holds, so they are neither new exposure nor reserve cash,
    and a bracket counts as one open order."""
    names = ("symbol", "side", "qty", "filled_qty", "limit_price")
    statuses = sorted(OPEN_STATUSES)
    return sql.select(
        f"SELECT {', '.join(map(sql.quote, names))} FROM {sql.quote(Order._meta.db_table)} "
        f"WHERE session_id = %s AND status IN ({', '.join(['%s'] * len(statuses))}) "
        "AND parent_id IS NULL AND order_class <> %s",
        [session_id, *statuses, "oco"],
        sql.fields_of(Order, *names),
    )


def position_qty(session_id: int, symbol: str) -> Decimal:
    """The session's signed position in `symbol` (0 when it has none)."""
    return _held(session_id, symbol)


def _held(session_id: int, symbol: str) -> Decimal:
    row = sql.select_one(
        f"SELECT qty FROM {sql.quote(Position._meta.db_table)} "
        "WHERE session_id = %s AND symbol = %s",
        [session_id, symbol],
        sql.fields_of(Position, "qty"),
    )
    return row[0] if row else ZERO


def check_order(
    *,
    session: TradingSession,
    symbol: str,
    side: str,
    qty: Decimal,
    price: Decimal,
    order_type: str,
    limit_price: Decimal | None = None,
    reduces_only: bool = False,
) -> None:
    """Raise for the first limit the order would break. `price` is the latest market price.

    `reduces_only` (the kill switch's flatten orders) skips the checks that would stop a trader
    from getting out of a position.
    """
    from marketdata.selectors import last_price_and_clock

    limits = limits_for(session)
    if reduces_only:
        return
    if limits.symbol_allowlist and symbol not in limits.symbol_allowlist:
        raise RiskLimitExceeded(
            f"{symbol} is not on the symbol allow-list",
            code="symbol_not_allowed",
            details={"symbol": symbol, "allowed": limits.symbol_allowlist},
        )
    # Price a limit buy at its limit when that is higher: it may fill there.
    unit = max(price, limit_price) if limit_price and side == OrderSide.BUY else price
    notional = qty * unit
    if limits.max_order_notional is not None and notional > limits.max_order_notional:
        raise RiskLimitExceeded(
            f"order notional {notional:.2f} exceeds the limit {limits.max_order_notional}",
            code="max_order_notional",
            details={"notional": str(notional), "limit": str(limits.max_order_notional)},
        )
    # One read of the session's open orders serves the open-order count, the symbol's
    # pending quantity and the cash reserved by open buys.
    open_orders = _open_orders(session.pk)
    if limits.max_open_orders is not None and len(open_orders) >= limits.max_open_orders:
        raise RiskLimitExceeded(
            f"{len(open_orders)} orders are open; the limit is {limits.max_open_orders}",
            code="max_open_orders",
            details={"open_orders": len(open_orders), "limit": limits.max_open_orders},
        )

    held = _held(session.pk, symbol)
    # Open orders count as if filled: ten resting buys cannot each pass the limit alone.
    pending = sum(
        (
            (o_qty - o_filled) if o_side == OrderSide.BUY else (o_filled - o_qty)
            for o_symbol, o_side, o_qty, o_filled, _limit in open_orders
            if o_symbol == symbol
        ),
        ZERO,
    )
    signed = qty if side == OrderSide.BUY else -qty
    after = held + pending + signed
    if side == OrderSide.SELL and after < 0 and not limits.allow_short:
        raise RiskLimitExceeded(
            f"selling {qty} {symbol} would open a short position; short selling is disabled",
            code="short_selling_disabled",
            details={"position": str(held), "open_orders_net": str(pending), "qty": str(qty)},
        )
    if limits.max_position_value is not None and abs(after) > abs(held + pending):
        value = abs(after) * price
        if value > limits.max_position_value:
            raise RiskLimitExceeded(
                f"the {symbol} position would be worth {value:.2f}; the limit is "
                f"{limits.max_position_value}",
                code="max_position_value",
                details={"position_value": str(value), "limit": str(limits.max_position_value)},
            )
    if side == OrderSide.BUY:
        price_of = lambda s: last_price_and_clock(s)[0]  # noqa: E731 - one-line lookup
        available = session.cash - _reserved_cash(open_orders, price_of)
        cost = notional + settings.PAPER_FEE_PER_ORDER
        if session.broker == "paper" and cost > available:
            raise InsufficientBuyingPower(
                f"insufficient buying power: order costs {cost:.2f}, {available:.2f} available",
                details={"cost": str(cost), "available": str(available)},
            )
