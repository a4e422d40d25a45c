"""Order submission benchmark: API call to committed paper fill, against a bare DB round trip.

Run from the repository root:  python bench/orders.py [--orders 1000]

It builds its own throwaway database (a fresh PostgreSQL database next to DATABASE_URL's when
that is set, else a temporary SQLite file), starts an embedded Redis when REDIS_URL is unset,
submits market orders through POST /api/v1/orders/submit in-process (DRF test client: the full
view, auth, serializer, service, paper broker, fill bookkeeping and on-commit events, without a
socket), and measures, on the same database in the same run, a bare INSERT + SELECT round trip.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from throwaway import run_environment, trading_client  # noqa: E402 - bench/ is on sys.path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1000)
    args = parser.parse_args()

    # Production settings (run_environment) behind a TLS proxy (the client sends
    # X-Forwarded-Proto), and a throttle the bench's 1,300 orders a minute stay under.
    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ["API_THROTTLE_RATE"] = "1000000/minute"
    with ExitStack() as cleanup:
        run_environment(cleanup)
        try:
            return run(args.orders)
        finally:
            from django.db import connections

            connections.close_all()


def run(count: int) -> int:
    client = trading_client()
    from django.db import connection

    from trading.models import Order, OrderStatus, Trade

    # Baseline: the cheapest committed write + read the same database can do.
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_baseline (id INTEGER PRIMARY KEY, v INTEGER)")
    baseline = []
    for i in range(count):
        start = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO bench_baseline (id, v) VALUES (%s, %s)", [i, i])
            cursor.execute("SELECT v FROM bench_baseline WHERE id = %s", [i])
            cursor.fetchone()
        baseline.append((time.perf_counter() - start) * 1000)

    symbols = ["SPY", "QQQ", "TSLA", "NVDA"]
    for warm in range(10):  # imports, first queries, connection to Redis
        side = "buy" if warm % 2 == 0 else "sell"
        client.post(
            "/api/v1/orders/submit",
            {"symbol": "SPY", "side": side, "qty": "1", "client_order_id": f"warm-{warm}"},
            format="json",
        )

    latencies, elapsed, statuses = submit_many(client, symbols, count, "bench")
    # The same again with WebSocket events switched off, to show what publishing costs.
    # Every module of the trading services (loaded by the view) imports publish/publish_many by
    # name: silence each.
    silenced = {}
    for name, module in list(sys.modules.items()):
        if name.startswith("trading.services."):
            for attr in ("publish", "publish_many"):
                if hasattr(module, attr):
                    silenced[module, attr] = getattr(module, attr)
                    setattr(module, attr, lambda *a, **k: None)
    quiet, _elapsed, _statuses = submit_many(client, symbols, min(count, 300), "quiet")
    for (module, attr), publisher in silenced.items():
        setattr(module, attr, publisher)

    filled = Order.objects.filter(
        client_order_id__startswith="bench-", status=OrderStatus.FILLED
    ).count()
    trades = Trade.objects.filter(order__client_order_id__startswith="bench-").count()
    result = {
        "orders": count,
        "filled": filled,
        "trades": trades,
        "http_statuses": {str(k): v for k, v in sorted(statuses.items())},
        "database": connection.vendor,
        "throughput_per_s": round(count / elapsed, 1),
        "p50_ms": round(statistics.median(latencies), 3),
        "p99_ms": round(percentile(latencies, 99), 3),
        "max_ms": round(max(latencies), 3),
        "baseline_p50_ms": round(statistics.median(baseline), 3),
        "baseline_p99_ms": round(percentile(baseline, 99), 3),
        "without_events_p50_ms": round(statistics.median(quiet), 3),
        "without_events_p99_ms": round(percentile(quiet, 99), 3),
        "target_p99_ms": 20,
    }
    result["p99_within_target"] = result["p99_ms"] <= 20
    print(
        f"{count} paper orders via POST /api/v1/orders/submit on {connection.vendor}: "
        f"{result['throughput_per_s']}/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms "
        f"(without WebSocket events p99 {result['without_events_p99_ms']} ms; "
        f"bare INSERT+SELECT p50 {result['baseline_p50_ms']} ms, "
        f"p99 {result['baseline_p99_ms']} ms)"
    )
    print(json.dumps(result))
    return 0 if filled == count else 1


def submit_many(client, symbols, count, prefix):
    latencies = []
    statuses: dict[int, int] = {}
    wall = time.perf_counter()
    for i in range(count):
        # Alternate buys and sells so cash and positions stay inside the risk limits.
        body = {
            "symbol": symbols[(i // 2) % len(symbols)],
            "side": "buy" if i % 2 == 0 else "sell",
            "qty": "1",
            "client_order_id": f"{prefix}-{i}",
        }
        start = time.perf_counter()
        response = client.post("/api/v1/orders/submit", body, format="json")
        latencies.append((time.perf_counter() - start) * 1000)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    elapsed = time.perf_counter() - wall
    return latencies, elapsed, statuses


if __name__ == "__main__":
    raise SystemExit(main())
