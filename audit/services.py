"""Writing the audit log: `audit_record` (inside the change's transaction) and
`audit_refusal` (after a refused or failed change rolled back, in its own transaction)."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping
from datetime import date, datetime
from decimal import Decimal
from functools import wraps
from typing import Any
from uuid import UUID

from django.db import transaction

from audit.context import audit_context, current_who
from audit.models import AuditEntry, Outcome
from core import sql

logger = logging.getLogger(__name__)

__all__ = ["audit_context", "audit_record", "audit_refusal", "records_refusals"]

# Never stored, whatever a caller passes in `details`.
SECRET_WORDS = ("key", "secret", "password", "token", "authorization")
MAX_TEXT = 500


def _text(value: Any, limit: int = MAX_TEXT) -> str:
    # PostgreSQL refuses NUL and unpaired surrogates in text and JSON: an entry must never fail
    # (it would take the change with it), so they are replaced, not stored.
    text = str(value)[:limit]
    if text.isascii():
        return text.replace("\x00", "")
    return text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")


def _plain(value: Any, depth: int = 0) -> Any:
    """JSON-safe, bounded copy of `details`; secrets are dropped."""
    if depth > 4:
        return "..."
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal | UUID | date | datetime):
        return value.isoformat() if isinstance(value, date | datetime) else str(value)
    if isinstance(value, Mapping):
        return {
            _text(k, 64): _plain(v, depth + 1)
            for k, v in list(value.items())[:50]
            if not any(word in str(k).lower() for word in SECRET_WORDS)
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, depth + 1) for v in list(value)[:50]]
    return _text(value)


def audit_record(
    *,
    action: str,
    target: Any = "",
    details: Mapping[str, Any] | None = None,
    outcome: str = Outcome.OK,
    code: str = "",
) -> AuditEntry:
    """Write one entry; who and from where come from the current context. Call it inside the
    `transaction.atomic` block that makes the change, so both commit or neither does."""
    who = current_who()
    entry = AuditEntry(
        actor=who.actor,
        via=who.via,
        user_id=who.user_id,
        api_key_id=who.api_key_id,
        action=action[:64],
        target=_text("" if target is None else target, 200),
        details=_plain(dict(details or {})),
        outcome=outcome,
        code=_text(code or "", 64),
    )
    # One INSERT per order: written out (core.sql) rather than built by the ORM each time.
    sql.insert_new(entry)
    return entry


def audit_refusal(
    *,
    action: str,
    exc: BaseException,
    target: Any = "",
    details: Mapping[str, Any] | None = None,
) -> None:
    """Record a refused (domain error) or failed (broker unavailable) change after its
    transaction rolled back. Never raises: the caller re-raises the original error."""
    from trading.exceptions import BrokerUnavailable

    outcome = Outcome.ERROR if isinstance(exc, BrokerUnavailable) else Outcome.REFUSED
    code = getattr(exc, "code", "") or type(exc).__name__
    message = getattr(exc, "message", None) or str(exc)
    try:
        with transaction.atomic():
            audit_record(
                action=action,
                target=target,
                details={**(details or {}), "message": message},
                outcome=outcome,
                code=code,
            )
    except Exception:  # noqa: BLE001 - the refusal itself must reach the caller
        logger.exception("could not record the refused %s in the audit log", action)


def records_refusals(
    action: str,
    *,
    target: Callable[[dict], Any] = lambda kwargs: "",
    details: Callable[[dict], Mapping[str, Any]] = lambda kwargs: {},
    errors: tuple[type[BaseException], ...] | None = None,
):
    """Decorator for a keyword-only service: a domain error it raises is recorded as refused
    (or error), then re-raised. Successes are recorded by the service itself, in its
    transaction."""

    def decorate(function):
        @wraps(function)
        def wrapper(**kwargs):
            try:
                return function(**kwargs)
            except _domain_errors(errors) as exc:
                audit_refusal(
                    action=action, exc=exc, target=target(kwargs), details=details(kwargs)
                )
                raise

        return wrapper

    return decorate


def _domain_errors(errors):
    if errors is not None:
        return errors
    from core.exceptions import DomainError

    return DomainError
