from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pandas as pd
from django.conf import settings
from django.db.models import BigIntegerField, ExpressionWrapper, Func, Max, Min, Sum, Value
from django.db.models.functions import TruncDate
from django.utils import timezone

from core import sql
from marketdata import calendar
from marketdata.models import Bar, SymbolFeed


def last_price(symbol: str) -> Decimal | None:
    close = (
        Bar.objects.filter(symbol=symbol, timeframe="5Min")
        .order_by("-timestamp")
        .values_list("close", flat=True)
        .first()
    )
    return close


def latest_bar(symbol: str) -> Bar | None:
    return Bar.objects.filter(symbol=symbol, timeframe="5Min").order_by("-timestamp").first()


def latest_bar_time(symbol: str | None = None) -> datetime | None:
    bars = Bar.objects.filter(timeframe="5Min")
    if symbol:
        bars = bars.filter(symbol=symbol)
    return bars.aggregate(latest=Max("timestamp"))["latest"]


def last_collected_at() -> datetime | None:
    return Bar.objects.aggregate(latest=Max("collected_at"))["latest"]


def market_now() -> datetime:
    """The market's 'now': wall time, or under the simulated clock the end of the newest bar."""
    if settings.MARKET_CLOCK == "simulated":
        latest = latest_bar_time()
        if latest is not None:
            return latest + calendar.BAR
    return calendar.utcnow()


def market_clock() -> dict:
    return _clock_at(market_now())


def _clock_at(now: datetime) -> dict:
    return {
        "clock": settings.MARKET_CLOCK,
        "market_time": now,
        "market_open": calendar.is_open(now - calendar.BAR)
        if settings.MARKET_CLOCK == "simulated"
        else calendar.is_open(now),
    }


# Set by `one_market_reading`: the readings taken so far, per symbol.
_reading: ContextVar[dict[str, tuple[Decimal | None, dict]] | None] = ContextVar(
    "market_reading", default=None
)


@contextmanager
def one_market_reading() -> Iterator[None]:
    """Within this block `last_price_and_clock` reads each symbol once.

    One order is checked, priced by the paper broker and stamped against one reading of the
    market (a bar landing in between would otherwise give its risk check and its fill two
    different prices), and the reading costs one query instead of two.
    """
    token = _reading.set({})
    try:
        yield
    finally:
        _reading.reset(token)


def last_price_and_clock(symbol: str) -> tuple[Decimal | None, dict]:
    """The price an order is checked and filled at, and `market_clock()`.

    The price is the streamed live price (realtime.prices) while it is at most
    LIVE_PRICE_MAX_AGE_SECONDS old, else the last bar's close (`last_price`). A symbol with no
    bar stored is unknown (None) even with a live price: the collector has not seen it. The
    risk checks (order_submit, trading.risk) and the paper broker's fills all ask here.

    Order submission needs price and clock on every order; under the simulated clock they are
    two reads of the same table, so they are asked together.
    """
    readings = _reading.get()
    if readings is not None and symbol in readings:
        return readings[symbol]
    close, clock = _read_price_and_clock(symbol)
    answer = (_live_or(symbol, close), clock)
    if readings is not None:
        readings[symbol] = answer
    return answer


def _live_or(symbol: str, close: Decimal | None) -> Decimal | None:
    if close is None:
        return None
    from realtime.prices import price_fresh

    live = price_fresh(symbol)
    return close if live is None else live.price


def _read_price_and_clock(symbol: str) -> tuple[Decimal | None, dict]:
    if settings.MARKET_CLOCK != "simulated":
        return last_price(symbol), market_clock()
    # Hand-written: every order reads this (see core.sql).
    table, close, stamp = map(sql.quote, (Bar._meta.db_table, "close", "timestamp"))
    newest = f"SELECT {stamp} FROM {table} WHERE timeframe = %s ORDER BY {stamp} DESC LIMIT 1"
    # Qualified: PostgreSQL would take a bare ORDER BY name for the subquery's output column.
    row = sql.select_one(
        f"SELECT b.{close}, ({newest}) AS newest FROM {table} b "
        f"WHERE b.symbol = %s AND b.timeframe = %s ORDER BY b.{stamp} DESC LIMIT 1",
        ["5Min", symbol, "5Min"],
        sql.fields_of(Bar, "close", "timestamp"),
    )
    if row is None:
        return None, market_clock()
    close, latest = row
    return close, _clock_at(latest + calendar.BAR)


def known_symbols() -> list[str]:
    stored = Bar.objects.values_list("symbol", flat=True).distinct()
    return sorted(set(settings.PRIMARY_SYMBOLS) | set(stored))


def bars_recent(symbol: str, count: int, timeframe: str = "5Min") -> pd.DataFrame:
    """The newest `count` bars of one symbol, oldest first, as a float DataFrame."""
    rows = list(
        Bar.objects.filter(symbol=symbol, timeframe=timeframe)
        .order_by("-timestamp")
        .values_list("timestamp", "open", "high", "low", "close", "volume")[:count]
    )
    rows.reverse()
    frame = pd.DataFrame(rows, columns=["timestamp", "open", "high", "low", "close", "volume"])
    frame = frame.set_index(pd.DatetimeIndex(frame.pop("timestamp"), name="timestamp"))
    return frame.astype("float64")


def latest_quotes(symbols: list[str] | None = None) -> list[dict]:
    """Latest price per symbol with change since the previous bar, for /stock-data."""
    symbols = symbols or settings.PRIMARY_SYMBOLS
    out = []
    for symbol in symbols:
        last_two = list(
            Bar.objects.filter(symbol=symbol, timeframe="5Min").order_by("-timestamp")[:2]
        )
        if not last_two:
            continue
        bar = last_two[0]
        previous = last_two[1].close if len(last_two) > 1 else bar.open
        change = bar.close - previous
        out.append(
            {
                "symbol": symbol,
                "price": bar.close,
                "change": change,
                "change_pct": (change / previous * 100).quantize(Decimal("0.0001"))
                if previous
                else Decimal("0"),
                "volume": bar.volume,
                "timestamp": bar.timestamp + calendar.BAR,
                "collected_at": bar.collected_at,
            }
        )
    return out


# --- The market-data API's reads ------------------------------------------------------------------

TIMEFRAME_SECONDS = {"5Min": 300, "15Min": 900, "1Hour": 3600}
TIMEFRAMES = ["5Min", "15Min", "1Hour", "1Day"]
SESSION_TZ = ZoneInfo("America/New_York")


class EpochSeconds(Func):
    """Whole seconds since 1970-01-01 UTC of a datetime column, on PostgreSQL and SQLite."""

    output_field = BigIntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="CAST(EXTRACT(EPOCH FROM %(expressions)s) AS BIGINT)"
        )

    def as_sqlite(self, compiler, connection, **extra):
        # Django stores UTC datetimes as 'YYYY-MM-DD HH:MM:SS[.ffffff]' text on SQLite; julianday
        # avoids strftime('%s'), whose percent sign the SQLite backend's placeholder rewriting eats.
        return self.as_sql(
            compiler,
            connection,
            template="CAST(ROUND((julianday(%(expressions)s) - 2440587.5) * 86400) AS INTEGER)",
        )


def symbol_known(symbol: str) -> bool:
    return symbol in settings.PRIMARY_SYMBOLS or Bar.objects.filter(symbol=symbol).exists()


def _bucket(timeframe: str):
    """The GROUP BY expression of a timeframe.

    15Min and 1Hour buckets are clock-aligned in UTC (integer arithmetic on epoch seconds:
    9:30, 9:45, ... and 9:00 (holding 9:30-9:55 ET), 10:00, ...), as Alpaca and pandas'
    default resample do. 1Day buckets are the NYSE session date in America/New_York, never the
    UTC date, so a bar is always counted in its own trading day.
    """
    if timeframe == "1Day":
        return TruncDate("timestamp", tzinfo=SESSION_TZ)
    size = TIMEFRAME_SECONDS[timeframe]
    return ExpressionWrapper(
        EpochSeconds("timestamp") / Value(size) * Value(size), output_field=BigIntegerField()
    )


def _bucket_start(timeframe: str, bucket) -> datetime:
    if timeframe == "1Day":
        if isinstance(bucket, str):  # some SQLite builds hand the date back as text
            bucket = date.fromisoformat(bucket)
        return datetime.combine(bucket, time(0), tzinfo=SESSION_TZ).astimezone(UTC)
    return datetime.fromtimestamp(int(bucket), tz=UTC)


def bars_ohlcv(
    symbol: str,
    timeframe: str = "5Min",
    *,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[dict]:
    """OHLCV rows, oldest first: the stored 5-minute bars, or buckets aggregated from them in
    the database (GROUP BY; open/close are the first/last bar's, fetched by timestamp).

    `since` keeps bars starting at or after it; `limit` keeps the newest `limit` rows.
    """
    bars = Bar.objects.filter(symbol=symbol, timeframe="5Min")
    if since is not None:
        bars = bars.filter(timestamp__gte=since)
    fields = ("timestamp", "open", "high", "low", "close", "volume")
    if timeframe == "5Min":
        newest = bars.order_by("-timestamp").values_list(*fields)
        rows = list(newest[:limit] if limit else newest)
        rows.reverse()
        return [dict(zip(fields, row, strict=True)) for row in rows]

    groups = (
        bars.annotate(bucket=_bucket(timeframe))
        .values("bucket")
        .annotate(
            first_ts=Min("timestamp"),
            last_ts=Max("timestamp"),
            high=Max("high"),
            low=Min("low"),
            volume=Sum("volume"),
        )
        .order_by("-bucket")
    )
    groups = list(groups[:limit] if limit else groups)
    groups.reverse()
    if not groups:
        return []
    edge_times = {g["first_ts"] for g in groups} | {g["last_ts"] for g in groups}
    edges = dict(
        (ts, (o, c))
        for ts, o, c in bars.filter(timestamp__in=edge_times).values_list(
            "timestamp", "open", "close"
        )
    )
    return [
        {
            "timestamp": _bucket_start(timeframe, g["bucket"]),
            "open": edges[g["first_ts"]][0],
            "high": g["high"],
            "low": g["low"],
            "close": edges[g["last_ts"]][1],
            "volume": int(g["volume"] or 0),
        }
        for g in groups
    ]


def feed_staleness(
    symbols: list[str], *, now: datetime | None = None, with_errors: bool = False
) -> dict[str, dict]:
    """Per symbol: seconds since the provider last answered for it, and whether that is stale.

    Stale once no successful collection happened for STALE_AFTER_SECONDS; but under the exchange
    clock, a closed market with the session's last bar stored is never stale (nothing newer
    exists).
    """
    now = now or timezone.now()
    feeds = {}
    if not with_errors:
        # The API's hot path: the cache remembers each symbol's last success (set on commit).
        from marketdata import cache

        feeds = {
            s: {"last_success_at": datetime.fromtimestamp(t, tz=UTC)}
            for s, t in cache.feed_success_get(symbols).items()
        }
    missing = [s for s in symbols if s not in feeds]
    if missing:
        feeds.update(
            {
                f["symbol"]: f
                for f in SymbolFeed.objects.filter(symbol__in=missing).values(
                    "symbol", "last_success_at", "last_error"
                )
            }
        )
    out = {}
    for symbol in symbols:
        feed = feeds.get(symbol, {})
        success = feed.get("last_success_at")
        if success is None:
            success = (
                Bar.objects.filter(symbol=symbol, timeframe="5Min")
                .order_by("-timestamp")
                .values_list("collected_at", flat=True)
                .first()
            )
        # Whole seconds: an age does not need more, and two reads in one second agree.
        age = int(now.timestamp()) - int(success.timestamp()) if success else None
        stale = age is None or age > settings.STALE_AFTER_SECONDS
        if stale and age is not None and settings.MARKET_CLOCK == "exchange":
            latest = latest_bar_time(symbol)
            if (
                not calendar.is_open(now)
                and latest
                and latest >= calendar.last_completed_bar_start(now)
            ):
                stale = False
        out[symbol] = {
            "age_seconds": age,
            "stale": stale,
            "last_error": feed.get("last_error") or "",
        }
    return out


def market_data_health() -> dict:
    """The market_data section of /health: per-symbol staleness and the provider's breaker."""
    from marketdata.providers import provider_name
    from marketdata.resilience import breaker_state

    symbols = known_symbols()
    feeds = feed_staleness(symbols, with_errors=True)
    name = provider_name()
    breaker = breaker_state(provider=name)
    if breaker["open_until"] is not None:
        breaker["open_until"] = breaker["open_until"].isoformat().replace("+00:00", "Z")
    return {
        "stale": any(f["stale"] for f in feeds.values()),
        "symbols": feeds,
        "provider": {"name": name, "breaker": breaker},
    }
