"""Research errors; tradingrobot/api/errors.py maps every DomainError to its status."""

from __future__ import annotations

from trading.exceptions import DomainError


class ResearchBusy(DomainError):
    """Too many research runs queued or running (for this key or user, or in total)."""

    status_code = 429
    code = "research_busy"


class RunNotFound(DomainError):
    status_code = 404
    code = "not_found"


class RunFinished(DomainError):
    status_code = 409
    code = "run_finished"


class RunNotYours(DomainError):
    status_code = 403
    code = "permission_denied"
