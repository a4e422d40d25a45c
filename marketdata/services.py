from __future__ import annotations

import logging
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from marketdata import cache, calendar, resilience, selectors
from marketdata.models import Bar, SymbolFeed
from marketdata.providers import get_provider
from marketdata.providers.base import BarData, BaseProvider
from streaming import events
from streaming.publish import publish

logger = logging.getLogger(__name__)

UPSERT_FIELDS = ["open", "high", "low", "close", "volume", "source", "collected_at"]


COPY_UPSERT_MIN_ROWS = 200


def bars_upsert(*, bars: Iterable[BarData], source: str, batch_size: int = 2000) -> int:
    """Insert or update bars on (symbol, timeframe, timestamp); running it twice changes nothing.

    Large batches on PostgreSQL go through COPY (`_store_by_copy`); anything else through
    bulk_create's upsert. Cached API answers for the symbols are invalidated on commit.
    """
    now = timezone.now()
    # One row per key (the last wins): PostgreSQL refuses to update one row twice in a statement.
    unique = {(b.symbol, b.timeframe, b.timestamp): b for b in bars}
    if not unique:
        return 0
    symbols = {key[0] for key in unique}
    transaction.on_commit(lambda: cache.versions_bump(symbols))
    if connection.vendor == "postgresql" and len(unique) >= COPY_UPSERT_MIN_ROWS:
        _store_by_copy(unique, source=source, now=now)
        return len(unique)
    rows = [
        Bar(
            symbol=b.symbol,
            timeframe=b.timeframe,
            timestamp=b.timestamp,
            open=b.open,
            high=b.high,
            low=b.low,
            close=b.close,
            volume=b.volume,
            source=source,
            collected_at=now,
        )
        for b in unique.values()
    ]
    Bar.objects.bulk_create(
        rows,
        batch_size=batch_size,
        update_conflicts=True,
        unique_fields=["symbol", "timeframe", "timestamp"],
        update_fields=UPSERT_FIELDS,
    )
    return len(rows)


COPY_COLUMNS = "symbol, timeframe, timestamp, open, high, low, close, volume, source, collected_at"

BarKey = tuple[str, str, datetime]


def bar_copy_rows(bars: Iterable[BarData], *, source: str, now: datetime) -> Iterator[tuple]:
    """The bars as rows in the order of COPY_COLUMNS, for COPY in text format."""
    # One string for the batch: psycopg converts a datetime at about 1 us a value, a quarter
    # of what a whole row costs.
    collected_at = now.isoformat()
    for b in bars:
        yield (
            b.symbol,
            b.timeframe,
            b.timestamp,
            b.open,
            b.high,
            b.low,
            b.close,
            b.volume,
            source,
            collected_at,
        )


def _store_by_copy(unique: dict[BarKey, BarData], *, source: str, now: datetime) -> None:
    """Store a large batch through COPY.

    Bars whose key is not stored yet (all of them when backfilling an empty range) are copied
    straight into the bar table, which costs about what a bare COPY does. Bars already stored
    are copied into a staging table and merged with one INSERT ... ON CONFLICT DO UPDATE, which
    costs about as much again.

    The check for stored keys cannot see a concurrent writer's uncommitted bars, so the straight
    COPY runs in a savepoint: if it meets a bar stored meanwhile (a unique violation, raised once
    that writer commits), the savepoint is rolled back and the whole batch is merged instead.
    """
    table = Bar._meta.db_table
    # Key order: concurrent loads then take entries of the unique index in the same order, so
    # one waits for the other instead of deadlocking.
    keys = sorted(unique)
    # No savepoint of its own: callers hold a transaction, and an error here ends it anyway.
    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        # Bulk loads (backfill, imports) are idempotent and rerunnable, so they need not wait
        # for the WAL flush: a crash can lose at most the last moments of a load, never
        # corrupt it. Small collection batches (bulk_create path) keep the default.
        cursor.execute("SET LOCAL synchronous_commit = off")
        stored = _stored_keys(cursor, table, keys)
        if stored is None:
            fresh, merge = [], keys
        elif stored:
            fresh = [k for k in keys if k not in stored]
            merge = [k for k in keys if k in stored]
        else:
            fresh, merge = keys, []
        if fresh:
            try:
                with transaction.atomic(), connection.wrap_database_errors:
                    _copy_bars(cursor, table, (unique[k] for k in fresh), source=source, now=now)
            except IntegrityError:
                logger.info("bars were stored concurrently in the span of a load; merging it")
                merge = keys
        if merge:
            _merge_bars(cursor, table, (unique[k] for k in merge), source=source, now=now)


def _stored_keys(cursor, table: str, keys: list[BarKey]) -> set[BarKey] | None:
    """The stored keys between each series' first and last key in sorted `keys`, or None when
    there are at least as many as `keys` (then all of them are merged)."""
    spans = []
    start = 0
    while start < len(keys):
        symbol, timeframe, _ = keys[start]
        # (symbol, timeframe + "\0") sorts after every key of this series and before the next.
        stop = bisect_left(keys, (symbol, timeframe + "\0"), start)
        spans.append((symbol, timeframe, keys[start][2], keys[stop - 1][2]))
        start = stop
    values = ", ".join(["(%s, %s, %s::timestamptz, %s::timestamptz)"] * len(spans))
    stored_in_spans = (
        f"FROM (VALUES {values}) AS v (symbol, timeframe, lo, hi) JOIN {table} b "
        "ON b.symbol = v.symbol AND b.timeframe = v.timeframe AND b.timestamp BETWEEN v.lo AND v.hi"
    )
    params = [value for span in spans for value in span]
    # Counted first, capped: reading every stored key of a reloaded range into Python took a
    # quarter of the reload, and a wide sparse span must not make the read large.
    cursor.execute(
        f"SELECT count(*) FROM (SELECT 1 {stored_in_spans} LIMIT %s) AS stored",
        [*params, len(keys)],
    )
    count = cursor.fetchone()[0]
    if count == 0:
        return set()
    if count >= len(keys):
        return None
    cursor.execute(f"SELECT b.symbol, b.timeframe, b.timestamp {stored_in_spans}", params)
    return set(cursor.fetchall())


def _copy_bars(cursor, table: str, bars: Iterable[BarData], *, source: str, now: datetime) -> None:
    with cursor.cursor.copy(f"COPY {table} ({COPY_COLUMNS}) FROM STDIN") as copy:
        write_row = copy.write_row
        for row in bar_copy_rows(bars, source=source, now=now):
            write_row(row)


def _merge_bars(cursor, table: str, bars: Iterable[BarData], *, source: str, now: datetime) -> None:
    updates = ", ".join(f"{f} = EXCLUDED.{f}" for f in UPSERT_FIELDS)
    cursor.execute(
        "CREATE TEMPORARY TABLE IF NOT EXISTS bar_upsert_stage ON COMMIT DELETE ROWS AS "
        f"SELECT {COPY_COLUMNS} FROM {table} WITH NO DATA"
    )
    cursor.execute("TRUNCATE bar_upsert_stage")
    _copy_bars(cursor, "bar_upsert_stage", bars, source=source, now=now)
    cursor.execute(
        f"INSERT INTO {table} ({COPY_COLUMNS}) "
        f"SELECT {COPY_COLUMNS} FROM bar_upsert_stage "
        f"ON CONFLICT (symbol, timeframe, timestamp) DO UPDATE SET {updates}"
    )


@dataclass
class CollectResult:
    market_time: datetime | None = None
    new_bars: dict[str, BarData] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    skipped: str = ""


def bar_is_sane(bar: BarData, *, symbol: str, timeframe: str = "5Min") -> bool:
    """The last guard before storage: a provider's malformed bar is logged and never stored."""
    try:
        # Written out flat because it runs for every bar of a backfill (a large share of its
        # time otherwise); 0 < low <= open, close <= high makes every price positive.
        o, h, lo, c, v = bar.open, bar.high, bar.low, bar.close, bar.volume
        ok = (
            bar.symbol == symbol
            and bar.timeframe == timeframe
            and bar.timestamp.tzinfo is not None
            and o.is_finite()
            and h.is_finite()
            and lo.is_finite()
            and c.is_finite()
            and 0 < lo <= o <= h
            and lo <= c <= h
            and isinstance(v, int)
            and v >= 0
        )
    except (AttributeError, TypeError, ArithmeticError):
        ok = False
    if not ok:
        logger.warning("skipping malformed %s bar from provider: %r", symbol, bar)
    return ok


def _market_closed_for_collection(now: datetime) -> bool:
    """Closed, and past the grace period in which the session's last bar is still collected."""
    grace = timedelta(minutes=15)
    return not calendar.is_open(now) and not calendar.is_open(now - grace)


def _collect_window(symbol: str) -> tuple[datetime, datetime]:
    """[start, end) of the bars to fetch for `symbol` in this collection."""
    latest = selectors.latest_bar_time(symbol)
    if settings.MARKET_CLOCK == "simulated":
        # The simulated market moves one bar per collection: past the newest bar of any symbol.
        newest = selectors.latest_bar_time()
        anchor = newest if newest else calendar.last_completed_bar_start(calendar.utcnow())
        target = calendar.next_bar_start(anchor) if newest else anchor
    elif settings.MARKETDATA_COLLECT_WHEN_CLOSED:
        # Configured to collect around the clock: any completed 5-minute slot, session or not.
        now = calendar.utcnow()
        slot = now.replace(second=0, microsecond=0, minute=now.minute - now.minute % 5)
        target = slot - calendar.BAR
    else:
        target = calendar.last_completed_bar_start(calendar.utcnow())
    if latest is None:
        history = calendar.previous_bar_starts(target, settings.HISTORY_BARS_ON_START)
        start = history[0]
    else:
        start = latest + calendar.BAR
    return start, target + calendar.BAR


def _feed_record(symbol: str, *, ok: bool, error: str = "") -> None:
    now = timezone.now()
    values = {"last_attempt_at": now, "last_error": error[:1000]}
    if ok:
        values["last_success_at"] = now
        transaction.on_commit(lambda: cache.feed_success_set(symbol, now.timestamp()))
    SymbolFeed.objects.update_or_create(symbol=symbol, defaults=values)


def bars_collect(
    *, symbols: list[str] | None = None, provider: BaseProvider | None = None
) -> CollectResult:
    """Fetch and store the bars each symbol is missing, then publish the newest of each.

    Never raises for a provider problem: each symbol's failure is retried with backoff, counted
    by the provider's circuit breaker, recorded (so the API reports the data as stale) and
    returned in `errors`; stored data keeps being served.
    """
    symbols = symbols or settings.PRIMARY_SYMBOLS
    result = CollectResult()
    try:
        provider = provider or get_provider()
    except Exception as exc:  # noqa: BLE001 - a misconfigured provider must not kill the worker
        logger.error("market-data provider unavailable: %s", exc)
        for symbol in symbols:
            result.errors[symbol] = f"provider unavailable: {exc}"
            _feed_record(symbol, ok=False, error=result.errors[symbol])
        result.market_time = selectors.market_now()
        return result
    if (
        settings.MARKET_CLOCK == "exchange"
        and not settings.MARKETDATA_COLLECT_WHEN_CLOSED
        and _market_closed_for_collection(calendar.utcnow())
        and all(selectors.latest_bar_time(s) for s in symbols)
    ):
        result.skipped = "market closed"
        result.market_time = selectors.market_now()
        return result
    windows = {symbol: _collect_window(symbol) for symbol in symbols}
    for symbol, (start, end) in windows.items():
        if start >= end:
            continue
        try:
            resilience.breaker_check(provider=provider.name)
        except resilience.BreakerOpen as exc:
            result.errors[symbol] = str(exc)
            _feed_record(symbol, ok=False, error=str(exc))
            continue
        try:
            bars = resilience.call_with_retry(
                lambda s=symbol, a=start, b=end: provider.fetch_bars(s, "5Min", a, b)
            )
        except Exception as exc:  # noqa: BLE001 - one provider failure must not stop the others
            logger.warning("collecting %s from %s failed: %s", symbol, provider.name, exc)
            result.errors[symbol] = str(exc)[:500] or type(exc).__name__
            resilience.breaker_record_failure(provider=provider.name, error=result.errors[symbol])
            _feed_record(symbol, ok=False, error=result.errors[symbol])
            continue
        resilience.breaker_record_success(provider=provider.name)
        bars = [b for b in bars if bar_is_sane(b, symbol=symbol) and start <= b.timestamp < end]
        with transaction.atomic():
            bars_upsert(bars=bars, source=provider.name)
            _feed_record(symbol, ok=True)
            if bars:
                result.new_bars[symbol] = bars[-1]
                publish(events.MARKET_DATA, bar_payload(bars[-1]))
    if result.errors:
        _alert_stale(list(result.errors))
    result.market_time = selectors.market_now()
    return result


def _alert_stale(symbols: list[str]) -> None:
    """An `alert` for each symbol whose data went stale; one id per stale spell (its last
    success), so the trader hears it once, not at every failed collection."""
    feeds = selectors.feed_staleness(symbols, with_errors=True)
    stale = [s for s in symbols if feeds[s]["stale"]]
    since = dict(
        SymbolFeed.objects.filter(symbol__in=stale).values_list("symbol", "last_success_at")
    )
    for symbol in stale:
        last = since.get(symbol)
        publish(
            events.ALERT,
            {
                "id": f"market_data.stale:{symbol}:{events.iso_utc(last) if last else 'never'}",
                "kind": "market_data.stale",
                "severity": "warning",
                "title": f"Market data stale: {symbol}",
                "text": f"No data for {symbol} since "
                f"{events.iso_utc(last) if last else 'ever'}: {feeds[symbol]['last_error']}"[:500],
                "data": {"symbol": symbol, "age_seconds": feeds[symbol]["age_seconds"]},
            },
        )


def bar_payload(bar: BarData | Bar) -> dict:
    """The `market_data` event (marketdata.api.serializers.BarEventSerializer)."""
    from marketdata.api.serializers import bar_event

    fields = ("symbol", "timeframe", "timestamp", "open", "high", "low", "close", "volume")
    return bar_event({"kind": "bar", **{name: getattr(bar, name) for name in fields}})


BACKFILL_BATCH_ROWS = 20_000


def bars_backfill(
    *,
    provider: BaseProvider,
    symbols: list[str],
    start: datetime,
    end: datetime,
    chunk_days: int = 30,
    batch_rows: int = BACKFILL_BATCH_ROWS,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Fetch and upsert 5-minute bars for [start, end); returns the rows stored.

    Bars are fetched in chunks of `chunk_days`, each retried with backoff, and stored in
    batches of about `batch_rows` in one transaction each (a transaction per 30-day chunk made a
    year's backfill about 15% slower), so an interrupted backfill keeps what it stored and a
    rerun only rewrites the same rows. A chunk that still fails after the retries raises the
    provider's error once the bars fetched before it are stored. `progress` is told how many
    bars each chunk brought.
    """
    stored = 0
    pending: list[BarData] = []

    def store() -> None:
        nonlocal stored
        with transaction.atomic():
            stored += bars_upsert(bars=pending, source=provider.name)
        pending.clear()

    step = timedelta(days=chunk_days)
    for symbol in symbols:
        chunk_start = start
        while chunk_start < end:
            chunk_end = min(chunk_start + step, end)
            try:
                bars = resilience.call_with_retry(
                    lambda s=symbol, a=chunk_start, b=chunk_end: provider.fetch_bars(
                        s, "5Min", a, b
                    )
                )
            except Exception:
                store()
                raise
            before = len(pending)
            pending.extend(
                b
                for b in bars
                if bar_is_sane(b, symbol=symbol) and chunk_start <= b.timestamp < chunk_end
            )
            if progress:
                progress(len(pending) - before)
            if len(pending) >= batch_rows:
                store()
            chunk_start = chunk_end
    store()
    return stored


@dataclass
class ImportResult:
    stored: int
    errors: list[tuple[int, str]]


def bars_import_csv(*, path: str, strict: bool = False) -> ImportResult:
    """Upsert the good rows of a bar CSV (marketdata.providers.csv documents the columns)."""
    from marketdata.providers.csv import parse_csv

    parsed = parse_csv(path)
    if strict and parsed.errors:
        return ImportResult(0, parsed.errors)
    with transaction.atomic():
        stored = bars_upsert(bars=parsed.bars, source="csv")
    return ImportResult(stored, parsed.errors)
