"""Domain exceptions. One API exception handler maps each to the error shape and status."""

from __future__ import annotations

# The shared ones, re-exported: trading code raises and catches them from here too.
from core.exceptions import DomainError, NotFound, UnknownSymbol  # noqa: F401


class InvalidOrder(DomainError):
    status_code = 400
    code = "invalid_order"


class TradingHalted(DomainError):
    status_code = 409
    code = "trading_halted"


class NoRunningSession(DomainError):
    status_code = 409
    code = "no_running_session"


class RiskLimitExceeded(DomainError):
    status_code = 422
    code = "risk_limit_exceeded"


class InsufficientBuyingPower(RiskLimitExceeded):
    code = "insufficient_buying_power"


class OrderRejected(DomainError):
    status_code = 422
    code = "order_rejected"


class BrokerUnavailable(DomainError):
    status_code = 503
    code = "broker_unavailable"


class IllegalTransition(DomainError):
    status_code = 409
    code = "illegal_transition"


class SessionRunning(DomainError):
    status_code = 409
    code = "session_running"


class OrderNotCancelable(DomainError):
    status_code = 409
    code = "order_not_cancelable"


class LooserRiskLimits(DomainError):
    """A session's risk_limits may only tighten the RISK_* settings; loosening is admin-only."""

    status_code = 403
    code = "risk_limits_looser_than_settings"
