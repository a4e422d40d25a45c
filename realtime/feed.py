"""What a market-data stream source hands its ticks to: the price store, the forming bar and the
`market_data` events, rate-limited.

A source calls `trade()` and `quote()` for every message (cheap, no I/O: they only update this
object's state) and runs `run()` beside its socket. `run()` is the one writer: it stores the
changed prices in Redis and publishes the due events, one round trip for all of them, in a
thread so a slow Redis never stalls the socket's reading. While a write is in flight new ticks
overwrite the state, so the work is bounded by the number of symbols, never by the tick rate:

- the price store (realtime.prices) gets the latest price of each symbol that changed;
- the `quote` and `bar_forming` events go out together, at most QUOTE_EVENTS_PER_SECOND times
  a second, each time the latest of every symbol that changed since: the first at once, then
  when the interval is over (a burst of 100 ticks in 100 ms is two events per kind, the second
  with the last price). One publish for all symbols is one message to each client's socket
  (streaming.fanout), where a rate per symbol, with its own timing, would be one per symbol.

The forming bar is built from trades (as exchange bars are; quotes move bid/ask only), in
5-minute buckets of the trades' own times. After a (re)connect in the middle of a bar it holds
the trades seen since; the collector's stored bar (`kind: "bar"`) is the final word.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings

from realtime.prices import LivePrice, prices_record

logger = logging.getLogger(__name__)

BAR_SECONDS = 300
# Prices beyond this are nonsense from any feed (and would overflow the Decimal columns).
MAX_PRICE = Decimal("10000000")


def clean_price(value: Any) -> Decimal | None:
    """A positive, finite price from a feed's number, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        price = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not price.is_finite() or price <= 0 or price > MAX_PRICE:
        return None
    return price


def clean_size(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return int(value) if value >= 0 else None


def quote_payload(live: LivePrice) -> dict:
    """The `market_data` event of kind "quote" (marketdata.api.serializers.QuoteEventSerializer)."""
    from marketdata.api.serializers import quote_event

    return quote_event(
        {
            "kind": "quote",
            "symbol": live.symbol,
            "price": live.price,
            "bid": live.bid,
            "ask": live.ask,
            "size": live.size,
            "timestamp": live.timestamp,
        }
    )


@dataclass
class FormingBar:
    start: int  # epoch seconds, a multiple of BAR_SECONDS
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int

    def add(self, price: Decimal, size: int) -> None:
        self.high = max(self.high, price)
        self.low = min(self.low, price)
        self.close = price
        self.volume += size


def orders_react(prices: list[LivePrice]) -> None:
    """The broker's open orders see the new prices: the paper broker's legs and trailing stops
    fill or move (trading.services.orders_at_live_prices); a live broker's need nothing."""
    from django.db import close_old_connections, connection

    from trading.services import orders_at_live_prices

    if not connection.in_atomic_block:  # never a caller's transaction (tests run in one)
        close_old_connections()  # this writer thread keeps its connection between writes
    orders_at_live_prices(prices=[(p.symbol, p.price, p.timestamp) for p in prices])


class MarketFeed:
    def __init__(
        self,
        *,
        events_per_second: float | None = None,
        on_prices: Callable[[list[LivePrice]], None] | None = None,
    ) -> None:
        """`on_prices` (the sources pass `orders_react`) is called from the writer with the
        latest price of each symbol that changed, at most `events_per_second` times a second."""
        rate = events_per_second or settings.QUOTE_EVENTS_PER_SECOND
        self.interval = 1.0 / rate
        self._on_prices = on_prices
        self._unseen: dict[str, LivePrice] = {}  # changed since on_prices last ran
        self._on_prices_at = -math.inf
        self._live: dict[str, LivePrice] = {}
        self._bars: dict[str, FormingBar] = {}
        self._trade_at: dict[str, datetime] = {}  # each symbol's newest trade time
        self._dirty: set[str] = set()
        # (kind, symbol) with a change not yet published; the payload is built when it goes out,
        # from the state then (the latest wins, and a tick costs no encoding).
        self._pending: set[tuple[str, str]] = set()
        self._last_sent = -math.inf
        self._wake = asyncio.Event()
        self._stopping = False
        self.events_sent = 0  # counted for tests and status
        self.writes = 0

    # --- what a source calls, per message ------------------------------------------------------

    def trade(self, symbol: str, price: Decimal, size: int | None, at: datetime) -> None:
        """A trade (a tick): the live price, the forming bar, the quote event."""
        previous = self._live.get(symbol)
        last_trade = self._trade_at.get(symbol)
        if last_trade is not None and at < last_trade:
            # Late (out-of-order) trade: the bar may still take it, the live price may not.
            self._bar_add(symbol, price, size or 0, at)
            return
        self._trade_at[symbol] = at
        self._live[symbol] = LivePrice(
            symbol=symbol,
            price=price,
            timestamp=at,
            received_at=time.time(),
            bid=previous.bid if previous else None,
            ask=previous.ask if previous else None,
            size=size,
        )
        self._bar_add(symbol, price, size or 0, at)
        self._changed(symbol)

    def quote(self, symbol: str, bid: Decimal | None, ask: Decimal | None, at: datetime) -> None:
        """A best bid/ask. The live price stays the last trade's (its time too); before any
        trade of the symbol, the bid/ask midpoint is the live price."""
        if bid is None and ask is None:
            return
        previous = self._live.get(symbol)
        if previous is not None and symbol in self._trade_at:
            price, stamp, size = previous.price, previous.timestamp, previous.size
        else:
            price = (bid + ask) / 2 if bid is not None and ask is not None else (bid or ask)
            stamp, size = at, None
        self._live[symbol] = LivePrice(
            symbol=symbol,
            price=price,
            timestamp=stamp,
            received_at=time.time(),
            bid=bid,
            ask=ask,
            size=size,
        )
        self._changed(symbol)

    def forming_bar(self, symbol: str) -> FormingBar | None:
        return self._bars.get(symbol)

    def live(self, symbol: str) -> LivePrice | None:
        return self._live.get(symbol)

    # --- state ---------------------------------------------------------------------------------

    def _bar_add(self, symbol: str, price: Decimal, size: int, at: datetime) -> None:
        start = int(at.timestamp()) // BAR_SECONDS * BAR_SECONDS
        bar = self._bars.get(symbol)
        if bar is None or start > bar.start:
            self._bars[symbol] = FormingBar(start, price, price, price, price, size)
        elif start == bar.start:
            bar.add(price, size)
        else:
            return  # a trade of a bar already over
        self._queue("bar_forming", symbol)

    def _changed(self, symbol: str) -> None:
        self._dirty.add(symbol)
        self._queue("quote", symbol)

    def _queue(self, kind: str, symbol: str) -> None:
        self._pending.add((kind, symbol))
        self._wake.set()

    def _quote_payload(self, symbol: str) -> dict:
        return quote_payload(self._live[symbol])

    def _bar_payload(self, symbol: str) -> dict:
        from marketdata.api.serializers import forming_bar_event

        bar = self._bars[symbol]
        return forming_bar_event(
            {
                "kind": "bar_forming",
                "symbol": symbol,
                "timeframe": "5Min",
                "timestamp": datetime.fromtimestamp(bar.start, UTC),
                "open": bar.open,
                "high": bar.high,
                "low": bar.low,
                "close": bar.close,
                "volume": bar.volume,
            }
        )

    # --- the writer ----------------------------------------------------------------------------

    def take_due(self, now: float) -> tuple[list[LivePrice], list[dict], float | None]:
        """The prices to store, the events due now, and when the next one is due (monotonic)."""
        prices = [self._live[s] for s in sorted(self._dirty)]
        self._dirty.clear()
        if not self._pending:
            return prices, [], None
        ready_at = self._last_sent + self.interval
        if ready_at > now:
            return prices, [], ready_at
        due = [
            self._quote_payload(symbol) if kind == "quote" else self._bar_payload(symbol)
            for kind, symbol in sorted(self._pending)
        ]
        self._pending.clear()
        self._last_sent = now
        return prices, due, None

    def _write(self, prices: list[LivePrice], due: list[dict]) -> None:
        from streaming import events
        from streaming.publish import send_many_now

        if prices:
            prices_record(prices)
        self._react(prices)
        if due:
            # A Redis outage returns Nones (logged once by redis_outage): the events are dropped,
            # clients re-fetch when they see the seq gap.
            sent = send_many_now([(events.MARKET_DATA, payload) for payload in due])
            self.events_sent += sum(1 for envelope in sent if envelope is not None)
        self.writes += 1

    def _react(self, prices: list[LivePrice]) -> None:
        if self._on_prices is None:
            return
        self._unseen.update((p.symbol, p) for p in prices)
        now = time.monotonic()
        if not self._unseen or now - self._on_prices_at < self.interval:
            return  # the rest waits for the next write (ticks keep coming while streaming)
        latest, self._unseen = list(self._unseen.values()), {}
        self._on_prices_at = now
        try:
            self._on_prices(latest)
        except Exception:  # noqa: BLE001 - orders failing to react must not stop the prices
            logger.warning("open orders could not react to live prices", exc_info=True)

    async def run(self) -> None:
        """Store and publish until `stop()`; then write what is left once and return."""
        loop = asyncio.get_running_loop()
        while True:
            self._wake.clear()
            prices, due, next_due = self.take_due(loop.time())
            if prices or due:
                try:
                    await asyncio.to_thread(self._write, prices, due)
                except Exception:  # noqa: BLE001 - a failed write must never stop the stream
                    logger.warning("storing live prices or publishing quotes failed", exc_info=True)
                continue  # ticks may have come in meanwhile
            if self._stopping:
                return
            timeout = None if next_due is None else max(0.0, next_due - loop.time())
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass

    def stop(self) -> None:
        """Let `run()` finish: pending events are sent once more, regardless of the rate."""
        self._stopping = True
        self._last_sent = -math.inf
        self._wake.set()


def market_silence_limit() -> float | None:
    """A market-data source's `silence_limit()`: STREAM_SILENCE_SECONDS while the market is open,
    else None (no trades, no quotes: silence is normal). The simulated market is always moving.
    Calendar arithmetic only, no database: the runner asks from its event loop."""
    from marketdata import calendar

    if settings.MARKET_CLOCK == "simulated" or calendar.is_open(calendar.utcnow()):
        return float(settings.STREAM_SILENCE_SECONDS)
    return None
