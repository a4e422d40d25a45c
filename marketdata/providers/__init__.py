"""Market-data providers behind one interface, chosen by the MARKETDATA_PROVIDER setting."""

from __future__ import annotations

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from .base import BaseProvider


@cache
def _provider_class(path: str) -> type[BaseProvider]:
    return import_string(path)


def get_provider(name: str | None = None) -> BaseProvider:
    """An instance of the named provider (default: the MARKETDATA_PROVIDER setting)."""
    name = name or settings.MARKETDATA_PROVIDER
    path = settings.MARKETDATA_PROVIDERS.get(name, name)
    return _provider_class(path)()


def provider_name(name: str | None = None) -> str:
    """The configured provider's `name` (what its breaker state is kept under)."""
    name = name or settings.MARKETDATA_PROVIDER
    try:
        return _provider_class(settings.MARKETDATA_PROVIDERS.get(name, name)).name
    except Exception:  # noqa: BLE001 - health reports, it does not fail on a bad setting
        return name
