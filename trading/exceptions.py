"""Domain exceptions. One API exception handler maps each to the error shape and status."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(
        self, message: str, *, details: dict[str, Any] | None = None, code: str | None = None
    ):
        super().__init__(message)
        self.message = message
        self.details = details or {}
        if code:
            self.code = code


class InvalidOrder(DomainError):
    status_code = 400
    code = "invalid_order"


class UnknownSymbol(DomainError):
    status_code = 404
    code = "unknown_symbol"


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


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


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
