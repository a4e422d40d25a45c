"""Stream sources behind one interface (`base.StreamSource`), named by the configured broker's and
market-data provider's `stream_source` attribute."""

from __future__ import annotations

from django.utils.module_loading import import_string

from marketdata.providers import get_provider
from trading.brokers import get_broker

from .base import StreamLink, StreamSource

__all__ = ["StreamLink", "StreamSource", "sources_configured"]


def sources_configured() -> list[StreamSource]:
    """One instance of each source the configuration has (none for a broker or provider that does
    not stream)."""
    paths = [get_broker().stream_source, get_provider().stream_source]
    return [import_string(path)() for path in paths if path]
