"""Market-data domain errors; tradingrobot.api.errors maps them to the JSON error shape."""

from __future__ import annotations

from core.exceptions import DomainError, UnknownSymbol

__all__ = ["InvalidParameter", "UnknownSymbol"]


class InvalidParameter(DomainError):
    """A query or path parameter is missing, malformed or out of range (400, names it)."""

    status_code = 400
    code = "invalid_parameter"

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}: {message}", details={"parameter": parameter})
