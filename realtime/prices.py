"""The latest streamed price per symbol, kept in Redis with its time.

One hash per symbol, `<CHANNELS_PREFIX>:price:<SYMBOL>`, with the last trade price (`p`), the
best bid and ask when known (`b`, `a`), the last trade size (`s`), the price's own time (`t`,
ISO-8601: the exchange's time, or the simulated market's under the simulated clock) and the wall
time the stream recorded it (`r`, seconds since the epoch). Any process reads it: the `stream`
process writes, the paper broker and the risk checks read (through
`marketdata.selectors.last_price_and_clock`, the one price lookup of an order).

Freshness is measured on `r`, the wall clock: under the simulated clock the price's own time is
the simulated market's and says nothing about how old the reading is.

A Redis outage degrades, it does not crash: writes are dropped and reads answer "no live price"
(so orders are priced at the last bar's close, as without a stream), reported once through
`tradingrobot.redis_outage`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation

from django.conf import settings

from core.times import iso_utc
from tradingrobot.redis_outage import redis_call

# A symbol the stream stopped sending keeps its hash this long, then Redis drops it.
KEEP_SECONDS = 24 * 3600


@dataclass(frozen=True)
class LivePrice:
    symbol: str
    price: Decimal
    timestamp: datetime  # the price's own time
    received_at: float  # wall clock, epoch seconds, when the stream recorded it
    bid: Decimal | None = None
    ask: Decimal | None = None
    size: int | None = None

    def age(self, now: float | None = None) -> float:
        """Wall-clock seconds since the stream recorded this price."""
        return (time.time() if now is None else now) - self.received_at


def key(symbol: str) -> str:
    from streaming.redis import prefix

    return f"{prefix()}:price:{symbol.upper()}"


def _client():
    from streaming.redis import client

    return client()


def prices_record(prices: Iterable[LivePrice]) -> bool:
    """Store these prices (one round trip); False when Redis is unavailable."""
    pipe_items = list(prices)
    if not pipe_items:
        return True

    def write() -> bool:
        pipe = _client().pipeline(transaction=False)
        for live in pipe_items:
            fields = {
                "p": str(live.price),
                "t": iso_utc(live.timestamp),
                "r": repr(live.received_at),
                "b": "" if live.bid is None else str(live.bid),
                "a": "" if live.ask is None else str(live.ask),
                "s": "" if live.size is None else str(live.size),
            }
            name = key(live.symbol)
            pipe.hset(name, mapping=fields)
            pipe.expire(name, KEEP_SECONDS)
        pipe.execute()
        return True

    return bool(redis_call("live price write", write, default=False))


def _decimal(raw: bytes | None) -> Decimal | None:
    if not raw:
        return None
    try:
        value = Decimal(raw.decode())
    except (InvalidOperation, UnicodeDecodeError):
        return None
    return value if value.is_finite() else None


def _parse(symbol: str, raw: list[bytes | None]) -> LivePrice | None:
    price_raw, stamp_raw, received_raw, bid_raw, ask_raw, size_raw = raw
    price = _decimal(price_raw)
    if price is None or price <= 0 or not stamp_raw or not received_raw:
        return None
    try:
        stamp = datetime.fromisoformat(stamp_raw.decode().replace("Z", "+00:00"))
        received = float(received_raw)
        size = int(size_raw) if size_raw else None
    except ValueError:
        return None
    return LivePrice(
        symbol=symbol,
        price=price,
        timestamp=stamp,
        received_at=received,
        bid=_decimal(bid_raw),
        ask=_decimal(ask_raw),
        size=size,
    )


_FIELDS = ("p", "t", "r", "b", "a", "s")


def prices_get(symbols: Iterable[str]) -> dict[str, LivePrice]:
    """The stored live price of each symbol that has one (one round trip; {} if Redis is
    unavailable)."""
    names = [s.upper() for s in symbols]
    if not names:
        return {}

    def read() -> list:
        pipe = _client().pipeline(transaction=False)
        for symbol in names:
            pipe.hmget(key(symbol), _FIELDS)
        return pipe.execute()

    rows = redis_call("live price read", read, default=None) or []
    out = {}
    for symbol, raw in zip(names, rows, strict=False):
        live = _parse(symbol, raw)
        if live is not None:
            out[symbol] = live
    return out


def price_get(symbol: str) -> LivePrice | None:
    return prices_get([symbol]).get(symbol.upper())


def price_fresh(symbol: str, *, max_age: float | None = None) -> LivePrice | None:
    """The live price if it is at most `max_age` (LIVE_PRICE_MAX_AGE_SECONDS) seconds old."""
    limit = settings.LIVE_PRICE_MAX_AGE_SECONDS if max_age is None else max_age
    if limit <= 0:
        return None
    return prices_fresh([symbol], max_age=limit).get(symbol.upper())


def prices_fresh(symbols: Iterable[str], *, max_age: float | None = None) -> dict[str, LivePrice]:
    """The live prices at most `max_age` (LIVE_PRICE_MAX_AGE_SECONDS) seconds old."""
    limit = settings.LIVE_PRICE_MAX_AGE_SECONDS if max_age is None else max_age
    now = time.time()
    return {s: p for s, p in prices_get(symbols).items() if p.age(now) <= limit}


def prices_forget(symbols: Iterable[str]) -> None:
    """Drop the stored prices of these symbols (tests, or a symbol taken off the list)."""
    names = [key(s) for s in symbols]
    if names:
        redis_call("live price forget", lambda: _client().delete(*names))
