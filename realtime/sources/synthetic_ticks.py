"""Ticks for the synthetic provider, so the demo's prices move between collections.

The synthetic provider's bars are deterministic (marketdata.providers.synthetic), so the bar the
collector will store next is known in advance: this source walks through it. For each symbol the
forming bar is the next bar the collector stores:

- simulated clock (the demo): the bar after the newest stored one (`calendar.next_bar_start`),
  spread over COLLECT_INTERVAL_SECONDS of wall time counted from the newest bar's `collected_at`;
  tick times are simulated market times inside that bar;
- exchange clock: the 5-minute bar under way now, while the NYSE is open.

Each tick lies on one path per bar: open at 0, then the low and the high (low first when the bar
closes up, the high first when it closes down) at 1/3 and 2/3, the close at 1, straight lines in
between plus a deterministic wiggle that is zero at those four points and clipped to [low, high].
Every waypoint passed is sent as a tick of its own, and trade sizes are the differences of
floor(volume x progress), so once the path reaches its end the forming bar (realtime.feed) is
exactly the bar the collector stores: same open, high, low, close (cents) and volume.

What the design cannot promise: under the simulated clock a collection that comes early (the
interval is measured from beat's schedule, not from here) ends the path early; the rest of the
path is then sent at once, so the forming bar still ends at the stored bar, only its last moves
are compressed. A collection that comes late holds the price at the close until it comes. If
this source starts in the middle of a bar, the forming bar begins with the path's open and
catches up to the current point at once.
"""

from __future__ import annotations

import asyncio
import math
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from asgiref.sync import sync_to_async
from django.conf import settings

from marketdata import calendar
from marketdata.providers.base import BarData
from realtime.feed import MarketFeed, market_silence_limit, orders_react
from realtime.sources.base import StreamLink, StreamSource

CENT = Decimal("0.01")
WAYPOINTS = (0.0, 1 / 3, 2 / 3, 1.0)
# The market is re-read (which bar is forming, how far along) at most this often.
PLAN_SECONDS = 1.0
# A tick at progress 1 must still fall inside the bar (the next bar starts at exactly +5 min).
_LAST_INSTANT = calendar.BAR - timedelta(milliseconds=1)


@dataclass(frozen=True)
class Plan:
    bar_start: datetime
    progress: float  # 0..1 through the bar


def tick_price(bar: BarData, progress: float) -> Decimal:
    """The path's price at `progress` (0..1) through `bar`, in cents, within [low, high]."""
    o, h, low, c = (float(v) for v in (bar.open, bar.high, bar.low, bar.close))
    first, second = (low, h) if c >= o else (h, low)
    points = (o, first, second, c)
    f = min(max(progress, 0.0), 1.0)
    leg = min(int(f * 3), 2)
    within = f * 3 - leg
    base = points[leg] + (points[leg + 1] - points[leg]) * within
    phase = (zlib.crc32(f"{bar.symbol}{bar.timestamp.isoformat()}".encode()) % 628) / 100
    wiggle = 0.15 * (h - low) * math.sin(3 * math.pi * f) * math.sin(14 * math.pi * f + phase)
    value = min(max(base + wiggle, low), h)
    return Decimal(repr(value)).quantize(CENT, rounding=ROUND_HALF_UP).max(bar.low).min(bar.high)


def cumulative_volume(bar: BarData, progress: float) -> int:
    return math.floor(bar.volume * min(max(progress, 0.0), 1.0))


def path_points(done: float | None, upto: float) -> list[float]:
    """The progress values to send a tick at when moving from `done` (None: nothing sent yet in
    this bar) to `upto`: every waypoint passed, then `upto` itself."""
    start = -1.0 if done is None else done
    points = [w for w in WAYPOINTS if start < w <= upto]
    if upto > start and (not points or points[-1] != upto):
        points.append(upto)
    return points


class SyntheticTickSource(StreamSource):
    name = "market_data"

    def __init__(
        self,
        *,
        symbols: list[str] | None = None,
        ticks_per_second: float | None = None,
        events_per_second: float | None = None,
        seed: int | None = None,
    ) -> None:
        from marketdata.providers.synthetic import SyntheticProvider

        self.symbols = [s.upper() for s in (symbols or settings.PRIMARY_SYMBOLS)]
        self.period = 1.0 / (ticks_per_second or settings.SYNTHETIC_TICKS_PER_SECOND)
        self.events_per_second = events_per_second
        self.provider = SyntheticProvider(seed)
        self.feed_state: MarketFeed | None = None
        self._bars: dict[tuple[str, datetime], BarData | None] = {}
        self._done: dict[str, tuple[datetime, float]] = {}  # symbol -> (bar, progress sent)
        self._closed: asyncio.Event | None = None

    def silence_limit(self) -> float | None:
        return market_silence_limit()

    # --- where the market is (database reads: run in a thread) ------------------------------------

    def plan(self, now: datetime | None = None) -> Plan | None:
        """Which bar is forming and how far along it is, or None (no bar forming now)."""
        now = now or calendar.utcnow()
        if settings.MARKET_CLOCK == "simulated":
            from django.db import close_old_connections

            close_old_connections()  # a long-lived process: drop a connection past its age
            from marketdata.models import Bar

            newest = (
                Bar.objects.filter(timeframe="5Min")
                .order_by("-timestamp")
                .values_list("timestamp", "collected_at")
                .first()
            )
            if newest is None:
                return None  # nothing collected yet: the simulated market has not started
            stamp, collected_at = newest
            elapsed = (now - collected_at).total_seconds()
            progress = elapsed / settings.COLLECT_INTERVAL_SECONDS
            return Plan(calendar.next_bar_start(stamp), min(max(progress, 0.0), 1.0))
        if not calendar.is_open(now):
            return None
        start = now.replace(second=0, microsecond=0, minute=now.minute - now.minute % 5)
        return Plan(start, min((now - start) / calendar.BAR, 1.0))

    def bar(self, symbol: str, start: datetime) -> BarData | None:
        """The stored-to-be bar (what the collector will fetch from the same provider)."""
        key = (symbol, start)
        if key not in self._bars:
            if len(self._bars) > 4 * len(self.symbols):
                self._bars.clear()
            bars = self.provider.fetch_bars(symbol, "5Min", start, start + calendar.BAR)
            self._bars[key] = bars[0] if bars else None
        return self._bars[key]

    # --- ticks ---------------------------------------------------------------------------------

    def emit(self, feed: MarketFeed, plan: Plan) -> int:
        """Send each symbol's ticks up to the plan's progress; returns how many were sent."""
        sent = 0
        for symbol in self.symbols:
            bar_start, done = self._done.get(symbol, (None, None))
            if bar_start is not None and bar_start != plan.bar_start:
                old = self.bar(symbol, bar_start)
                if old is not None and bar_start < plan.bar_start and done < 1.0:
                    sent += self._walk(feed, old, done, 1.0)  # collected early: finish the path
                done = None
            bar = self.bar(symbol, plan.bar_start)
            if bar is None:
                continue
            sent += self._walk(feed, bar, done, plan.progress)
            if done is None or plan.progress > done:
                self._done[symbol] = (plan.bar_start, plan.progress)
        return sent

    def _walk(self, feed: MarketFeed, bar: BarData, done: float | None, upto: float) -> int:
        points = path_points(done, upto)
        previous = 0.0 if done is None else done
        for f in points:
            size = cumulative_volume(bar, f) - cumulative_volume(bar, previous)
            feed.trade(bar.symbol, tick_price(bar, f), size, bar.timestamp + _LAST_INSTANT * f)
            previous = f
        return len(points)

    async def run(self, link: StreamLink) -> None:
        loop = asyncio.get_running_loop()
        self._closed = asyncio.Event()
        feed = self.feed_state = MarketFeed(
            events_per_second=self.events_per_second, on_prices=orders_react
        )
        writer = asyncio.create_task(feed.run())
        self._done.clear()
        plan_at, plan = -math.inf, None
        link.ready()
        try:
            while not self._closed.is_set():
                if loop.time() - plan_at >= PLAN_SECONDS:
                    read = await sync_to_async(self.plan)()
                    plan_at, plan = loop.time(), (read, calendar.utcnow())
                if plan is not None and plan[0] is not None:
                    read, at = plan
                    # Between two readings, progress moves with the wall clock.
                    moved = (calendar.utcnow() - at).total_seconds() / self._bar_seconds()
                    self.emit(feed, Plan(read.bar_start, min(read.progress + moved, 1.0)))
                # A generator in this process has no socket that could die silently: it is
                # alive while it loops, ticks or not (e.g. before the first collection).
                link.received()
                try:
                    await asyncio.wait_for(self._closed.wait(), self.period)
                except TimeoutError:
                    pass
        finally:
            feed.stop()
            await writer

    def _bar_seconds(self) -> float:
        if settings.MARKET_CLOCK == "simulated":
            return float(settings.COLLECT_INTERVAL_SECONDS)
        return calendar.BAR.total_seconds()

    async def close(self) -> None:
        if self._closed is not None:
            self._closed.set()
