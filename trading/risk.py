"""Pre-trade risk checks. Each failure raises RiskLimitExceeded with its own error code."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from trading.exceptions import RiskLimitExceeded
from trading.models import TradingSession


def check_order(
    *,
    session: TradingSession,
    symbol: str,
    side: str,
    qty: Decimal,
    price: Decimal,
    order_type: str,
) -> None:
    allowed = getattr(settings, "RISK_SYMBOL_ALLOWLIST", [])
    if allowed and symbol not in allowed:
        raise RiskLimitExceeded(
            f"{symbol} is not on the symbol allow-list",
            code="symbol_not_allowed",
            details={"symbol": symbol, "allowed": allowed},
        )
    max_notional = getattr(settings, "RISK_MAX_ORDER_NOTIONAL", None)
    notional = qty * price
    if max_notional is not None and notional > max_notional:
        raise RiskLimitExceeded(
            f"order notional {notional:.2f} exceeds the limit {max_notional}",
            code="max_order_notional",
            details={"notional": str(notional), "limit": str(max_notional)},
        )
