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
