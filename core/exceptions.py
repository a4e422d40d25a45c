"""The base of every domain error, and the ones several apps raise.

Services raise DomainError subclasses; one DRF exception handler (tradingrobot.api.errors) maps
each to the JSON error shape and its status. Each app declares its own errors beside its code
(trading.exceptions, marketdata.exceptions, strategies.exceptions).
"""

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


class UnknownSymbol(DomainError):
    status_code = 404
    code = "unknown_symbol"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"
