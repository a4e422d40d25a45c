"""Trading sessions: start, ensure one runs, stop (its open orders are canceled first)."""

from __future__ import annotations

import logging
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.services import audit_record, records_refusals
from streaming import events
from streaming.publish import publish
from trading import risk, selectors
from trading.exceptions import (
    InvalidOrder,
    SessionRunning,
)
from trading.models import (
    OPEN_STATUSES,
    Order,
    SessionMode,
    SessionStatus,
    TradingSession,
)
from trading.services.order_cancel import cancel_all

logger = logging.getLogger(__name__)


@records_refusals(
    "session.start",
    details=lambda kwargs: {
        name: kwargs[name] for name in ("mode", "starting_cash", "risk_limits") if name in kwargs
    },
)
def session_start(
    *,
    mode: str = SessionMode.PAPER,
    starting_cash: Decimal | None = None,
    risk_limits: dict | None = None,
    allow_loosen: bool = False,
) -> TradingSession:
    """Start a new session; refuses (409 session_running) while another one runs, and risk
    limits looser than the settings (403) unless `allow_loosen` (admin only)."""
    if mode not in SessionMode.values:
        raise InvalidOrder(f"mode must be one of {SessionMode.values}", details={"field": "mode"})
    cash = settings.PAPER_STARTING_CASH if starting_cash is None else starting_cash
    if not isinstance(cash, Decimal) or not cash.is_finite() or cash < 0 or cash >= Decimal("1e13"):
        raise InvalidOrder("starting_cash must be a non-negative number", details={"field": "cash"})
    limits = risk.limits_validate(risk_limits, allow_loosen=allow_loosen)
    try:
        with transaction.atomic():
            session = TradingSession.objects.create(
                mode=mode,
                broker=settings.BROKER,
                status=SessionStatus.RUNNING,
                starting_cash=cash,
                starting_equity=cash,
                cash=cash,
                risk_limits=limits,
            )
            audit_record(
                action="session.start",
                target=f"session:{session.pk}",
                details={"mode": mode, "starting_cash": cash, "risk_limits": limits},
            )
            if allow_loosen and (looser := risk.limits_looser(limits)):
                audit_record(
                    action="risk_limits.loosen",
                    target=f"session:{session.pk}",
                    details={"loosened": looser, "risk_limits": limits},
                )
    except IntegrityError as exc:
        running = selectors.session_current()
        raise SessionRunning(
            "a session is already running; stop it first",
            details={"session_id": running.pk if running else None},
        ) from exc
    publish(events.STATUS, selectors.status_get())
    return session


def session_ensure_running() -> TradingSession:
    """The running session, starting a paper session if there is none (first run)."""
    session = selectors.session_current()
    if session is not None:
        return session
    try:
        return session_start()
    except SessionRunning:
        return selectors.session_current()


def session_stop(*, session: TradingSession, reason: str = "") -> TradingSession:
    """Stop a session: its open orders are canceled first."""
    cancel_all(Order.objects.filter(session=session, status__in=OPEN_STATUSES), "session stopped")
    with transaction.atomic():
        session = TradingSession.objects.select_for_update().get(pk=session.pk)
        if session.status != SessionStatus.STOPPED:
            session.status = SessionStatus.STOPPED
            session.stopped_at = timezone.now()
            session.stop_reason = reason[:255]
            session.save(update_fields=["status", "stopped_at", "stop_reason"])
            audit_record(
                action="session.stop", target=f"session:{session.pk}", details={"reason": reason}
            )
    publish(events.STATUS, selectors.status_get())
    return session
