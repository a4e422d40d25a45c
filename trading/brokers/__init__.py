"""Brokers behind one async interface, chosen by the BROKER setting (like Django's backends)."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from .base import BaseBroker


@cache
def _broker_class(path: str) -> type[BaseBroker]:
    return import_string(path)


def broker_health() -> dict:
    """The configured broker's `health()` (no instance, no call to the broker)."""
    broker_class = _configured_class()
    if not hasattr(broker_class, "health"):  # a third-party class not built on BaseBroker
        return {"name": settings.BROKER, "ok": True, "state": "ok", "detail": ""}
    return broker_class.health()


def broker_manages_legs() -> bool:
    """Whether the configured broker runs bracket/OCO/OTO legs itself (a class attribute:
    read without building the broker, which for Alpaca means an HTTP client)."""
    return _configured_class().manages_legs


def broker_protective_orders() -> bool:
    """Whether protective orders work with the configured broker (`BaseBroker`)."""
    return getattr(_configured_class(), "protective_orders", False)


def _configured_class() -> type[BaseBroker]:
    return _broker_class(settings.BROKER_BACKENDS.get(settings.BROKER, settings.BROKER))


def get_broker() -> BaseBroker:
    """A broker instance for the configured backend (`paper`, `alpaca` or a dotted path)."""
    return _configured_class()()
