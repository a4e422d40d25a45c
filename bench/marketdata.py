"""Market-data load and API latency benchmark.

Run from the repository root:  python bench/marketdata.py [--days 365]

1. Backfill: one year x 4 symbols of synthetic 5-minute bars (~80,000 rows) through the real
   backfill service (`bars_backfill`, as `manage.py backfill` runs it: 30-day provider chunks,
   sanity checks, batched COPY/merge, cache invalidation, commits), into an empty table. The
   provider's answers are generated before the clock starts, so the load rate measures
   everything the product does to store them, and nothing a provider does.
2. Baseline: PostgreSQL COPY of the same rows, already built in the product's row shape
   (`bar_copy_rows`), into an empty copy of the bar table (same indexes), in one statement.
   Both run 3 times (`--rounds`), alternating which goes first, each into an emptied table
   after a CHECKPOINT, with the bench's own prebuilt objects frozen out of the garbage
   collector (`gc.freeze()`); the rates printed are the medians. For reference, the backfill
   is run once more over the stored bars (`reload_rows_per_s`: every row merged).
3. Latency: GET /api/v1/stock-data/SPY?days=30 and /api/v1/chart-data?symbol=SPY&timeframe=15Min
   &days=30, 1,000 requests each after one warm-up (so cached), served in-process through
   Django's test Client (the full middleware, DRF auth with a Bearer key, the view, the Redis
   cache; no sockets).

Database: a database of its own (created, then dropped) on the server of DATABASE_URL if set,
else postgres://postgres@127.0.0.1:5432. Redis: REDIS_URL if set, else an embedded
Redis started here. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from throwaway import postgres_database, redis_for_run  # noqa: E402 - bench/ is on sys.path

CHUNK_DAYS = 30  # backfill's default: one provider request per symbol and 30 days


def _server_url() -> str:
    url = os.environ.get("DATABASE_URL") or "postgres://postgres@127.0.0.1:5432/postgres"
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit("bench/marketdata.py needs PostgreSQL (for the COPY baseline)")
    return url


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, int(round(0.99 * len(ordered))) - 1)]
    return p50 * 1000, p99 * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    var_dir = Path(tempfile.mkdtemp(prefix="bench-md-"))
    os.environ["VAR_DIR"] = str(var_dir)
    # One prefix of its own, so the run's keys can be deleted afterwards.
    prefix = f"bench-md{os.getpid()}"
    os.environ["CHANNELS_PREFIX"] = os.environ["CACHE_PREFIX"] = prefix
    os.environ["LOG_LEVEL"] = "ERROR"
    # The bench measures cached reads; 2,000 requests in seconds would trip the per-key limit.
    os.environ["API_THROTTLE_RATE"] = "1000000/minute"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingrobot.settings")
    with ExitStack() as cleanup:
        os.environ["DATABASE_URL"] = cleanup.enter_context(postgres_database(_server_url()))
        redis = redis_for_run(os.environ.get("REDIS_URL"), prefix, var_dir)
        os.environ["REDIS_URL"] = cleanup.enter_context(redis)
        try:
            result = run(args)
        finally:
            from django.db import connections

            connections.close_all()
    print(json.dumps(result))


def run(args) -> dict:
    import django

    django.setup()
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from marketdata import calendar
    from marketdata.providers.base import BaseProvider
    from marketdata.providers.synthetic import SyntheticProvider
    from marketdata.services import COPY_COLUMNS, bar_copy_rows, bars_backfill
    from trading.models import ApiKey, ApiScope

    call_command("migrate", verbosity=0)
    cache.clear()
    symbols = ["TSLA", "QQQ", "SPY", "NVDA"]
    end = calendar.last_completed_bar_start(calendar.utcnow()) + calendar.BAR
    start = end - timedelta(days=args.days)
    synthetic = SyntheticProvider()
    bars = {s: synthetic.fetch_bars(s, "5Min", start, end) for s in symbols}
    rows = sum(len(b) for b in bars.values())
    # The provider's answer to each chunk bars_backfill asks for, ready before the clock starts:
    # generating or slicing bars is provider work, not storage.
    answers = {}
    for symbol in symbols:
        chunk = start
        while chunk < end:
            chunk_end = min(chunk + timedelta(days=CHUNK_DAYS), end)
            answers[symbol, chunk, chunk_end] = [
                bar for bar in bars[symbol] if chunk <= bar.timestamp < chunk_end
            ]
            chunk = chunk_end

    class Prefetched(BaseProvider):
        name = "synthetic"

        def fetch_bars(self, symbol, timeframe, a, b):
            return answers[symbol, a, b]

    now = timezone.now()
    flat = list(bar_copy_rows([b for s in symbols for b in bars[s]], source="synthetic", now=now))
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_copy_bar (LIKE marketdata_bar INCLUDING ALL)")

    def empty(table: str) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {table}")
            # Neither timed step pays for writing out the pages the one before it dirtied.
            cursor.execute("CHECKPOINT")

    def load() -> float:
        empty("marketdata_bar")
        t0 = time.perf_counter()
        stored = bars_backfill(
            provider=Prefetched(), symbols=symbols, start=start, end=end, chunk_days=CHUNK_DAYS
        )
        seconds = time.perf_counter() - t0
        assert stored == rows, (stored, rows)
        return seconds

    def copy() -> float:
        empty("bench_copy_bar")
        raw = connection.connection
        t0 = time.perf_counter()
        with (
            raw.cursor() as cur,
            cur.copy(f"COPY bench_copy_bar ({COPY_COLUMNS}) FROM STDIN") as copy,
        ):
            for row in flat:
                copy.write_row(row)
        raw.commit()
        return time.perf_counter() - t0

    # The few hundred thousand objects built above stand in for a provider and are no part of
    # the load, but a full garbage collection set off by the load's allocations would walk them
    # all (0.13-0.15 s, charged to the load alone: the COPY loop allocates nothing). Freezing
    # them keeps that out; collections of what the load itself allocates still happen, timed.
    gc.freeze()
    # Rounds alternate which goes first; the medians damp a neighbour's burst on a shared box.
    load_s, copy_s = [], []
    for i in range(args.rounds):
        if i % 2:
            copy_s.append(copy())
            load_s.append(load())
        else:
            load_s.append(load())
            copy_s.append(copy())
        print(
            f"round {i + 1}: backfill {rows / load_s[-1]:,.0f} rows/s, "
            f"COPY {rows / copy_s[-1]:,.0f} rows/s"
        )
    # For reference, not a target: the same backfill again over the stored bars (every row goes
    # through the staging table and INSERT ... ON CONFLICT DO UPDATE).
    t0 = time.perf_counter()
    bars_backfill(
        provider=Prefetched(), symbols=symbols, start=start, end=end, chunk_days=CHUNK_DAYS
    )
    reload_rate = rows / (time.perf_counter() - t0)
    load_rates = [rows / s for s in load_s]
    copy_rates = [rows / s for s in copy_s]
    load_rate = statistics.median(load_rates)
    copy_rate = statistics.median(copy_rates)

    # A live system collects every few minutes: one collection records each symbol's feed
    # status (what `age_seconds`/`stale` are computed from) like production.
    from marketdata.services import bars_collect

    bars_collect(symbols=symbols)
    key = ApiKey.objects.create_key(name="bench", scope=ApiScope.READ)[1]
    # Production settings (DEBUG off): HTTPS, as the TLS-terminating proxy says it.
    client = Client(HTTP_AUTHORIZATION=f"Bearer {key}", HTTP_X_FORWARDED_PROTO="https")
    latencies = {}
    for name, url in [
        ("stock_data", "/api/v1/stock-data/SPY?days=30"),
        ("chart_data", "/api/v1/chart-data?symbol=SPY&timeframe=15Min&days=30"),
    ]:
        first = client.get(url)
        assert first.status_code == 200, (first.status_code, first.content[:300])
        samples = []
        for _ in range(args.requests):
            t0 = time.perf_counter()
            response = client.get(url)
            samples.append(time.perf_counter() - t0)
            assert response.status_code == 200
        latencies[name] = _percentiles(samples)
        print(
            f"{name:10s} {url}: p50 {latencies[name][0]:.2f} ms, p99 {latencies[name][1]:.2f} ms"
            f" ({len(first.content)} bytes)"
        )

    print(f"backfill: {rows} rows, median {load_rate:,.0f} rows/s")
    print(f"COPY:     {rows} rows, median {copy_rate:,.0f} rows/s")
    print(f"backfill over stored bars: {reload_rate:,.0f} rows/s")
    return {
        "rows": rows,
        "rounds": args.rounds,
        "load_rows_per_s": round(load_rate),
        "copy_rows_per_s": round(copy_rate),
        "load_ratio": round(load_rate / copy_rate, 3),
        "load_rows_per_s_rounds": [round(r) for r in load_rates],
        "copy_rows_per_s_rounds": [round(r) for r in copy_rates],
        "reload_rows_per_s": round(reload_rate),
        "stock_data_p50_ms": round(latencies["stock_data"][0], 3),
        "stock_data_p99_ms": round(latencies["stock_data"][1], 3),
        "chart_data_p50_ms": round(latencies["chart_data"][0], 3),
        "chart_data_p99_ms": round(latencies["chart_data"][1], 3),
        "latency_server": "django.test.Client (in-process)",
    }


if __name__ == "__main__":
    main()
