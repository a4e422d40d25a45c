"""Brokers behind one async interface, chosen by the BROKER setting (like Django's backends)."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from .base import BaseBroker


@cache
def _broker_class(path: str) -> type[BaseBroker]:
    return import_string(path)


def broker_manages_legs() -> bool:
    """Whether the configured broker runs bracket/OCO/OTO legs itself (a class attribute:
    read without building the broker, which for Alpaca means an HTTP client)."""
    path = settings.BROKER_BACKENDS.get(settings.BROKER, settings.BROKER)
    return _broker_class(path).manages_legs


def get_broker() -> BaseBroker:
    """A broker instance for the configured backend (`paper`, `alpaca` or a dotted path)."""
    path = settings.BROKER_BACKENDS.get(settings.BROKER, settings.BROKER)
    return _broker_class(path)()
