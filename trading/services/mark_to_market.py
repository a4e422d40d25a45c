"""Marking to market: price open positions, snapshot equity, trip the daily loss limit."""

from __future__ import annotations

import logging

from django.db import transaction

from streaming import events
from streaming.publish import publish
from trading import risk, selectors
from trading.models import (
    EquitySnapshot,
    Position,
    TradingSession,
)
from trading.services.kill_switch import trading_halt

logger = logging.getLogger(__name__)


def session_mark_to_market(
    *, session: TradingSession | None = None, at=None
) -> EquitySnapshot | None:
    """Price open positions at the latest bars, snapshot equity, publish the changes."""
    from marketdata.selectors import last_price, market_now

    session = session or selectors.session_current()
    if session is None:
        return None
    with transaction.atomic():
        # Fresh cash: the caller's session object may predate fills.
        session = TradingSession.objects.get(pk=session.pk)
        equity = session.cash
        for position in Position.objects.select_for_update().filter(session=session).exclude(qty=0):
            price = last_price(position.symbol)
            if price is not None and price != position.last_price:
                position.last_price = price
                position.save(update_fields=["last_price", "updated_at"])
                publish(events.POSITION_UPDATE, selectors.position_payload(position))
            equity += position.qty * position.last_price
        snapshot = EquitySnapshot.objects.create(
            session=session, timestamp=at or market_now(), cash=session.cash, equity=equity
        )
        publish(events.PERFORMANCE_UPDATE, selectors.performance_get(session))
    # The daily loss limit trips the kill switch by itself, not only when an order is tried.
    breached, loss = risk.daily_loss_breached(session=session, at=snapshot.timestamp)
    if breached and not selectors.kill_switch_get().engaged:
        from audit.services import audit_context

        with audit_context(actor="system", via="system"):
            trading_halt(reason=f"daily loss limit reached (lost {loss:.2f} today)", by="risk")
    return snapshot
