"""The stream-source interface: one streaming connection the `stream` process holds.

A broker or a market-data provider names its source class in its `stream_source` attribute
(a dotted path, or "" for none); `realtime.sources.sources_configured()` collects them, so the
runner never asks which broker or provider it has.

The runner (`realtime.runner`) calls `run(link)` and, when it returns or raises, reconnects after
a backoff with jitter. A source connects, authenticates and subscribes, calls `link.ready()` once
it is live (the runner resets its backoff and reports "live"), and calls `link.received()` for
every message (the silence watchdog and the last-message age in status/health use it).
"""

from __future__ import annotations

from typing import Protocol


class StreamLink(Protocol):
    def ready(self) -> None:
        """Connected, authenticated and subscribed: the source is live."""

    def received(self) -> None:
        """A message arrived."""


class StreamSource:
    # The key in status/health: "trade_updates" (a broker's) or "market_data" (a provider's).
    name = "base"

    def account(self) -> str:
        """Who the source connects as (e.g. a digest of its API key): the `stream` process's
        lease is per account, so that one account has one holder across the cluster."""
        return ""

    def silence_limit(self) -> float | None:
        """Seconds without a message after which the connection counts as dead, or None when
        silence is normal now (a trade-updates stream; market data while the market is shut)."""
        return None

    async def run(self, link: StreamLink) -> None:
        """Connect, subscribe and handle messages until the connection ends (return or raise)."""
        raise NotImplementedError

    async def close(self) -> None:
        """Close the connection (SIGTERM, lost lease, silence); `run` then returns."""
