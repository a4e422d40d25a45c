"""Robinhood adapter overhead: one broker call against the local fake, next to a bare requests
GET to the same fake in the same run.

Run from the repository root:  python bench/robinhood.py [--calls 300]

It builds its own throwaway database (a fresh PostgreSQL database next to DATABASE_URL's when
that is set, else a temporary SQLite file) and Redis keys, starts tests/fakes/robinhood_server.py
on 127.0.0.1, logs in once, then times `positions()` (the login-row read, the cool-down check,
the pacing key in Redis, the guarded session, JSON and mapping) and `order_by_client_id()` for
an order whose Robinhood id is known, with ROBINHOOD_MIN_INTERVAL_SECONDS=0 (the pacing
interval itself is a deliberate wait, 1 s by default, and not measured). Baseline: a plain
`requests.Session().get` of the same positions URL. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from contextlib import ExitStack
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from throwaway import run_environment  # noqa: E402 - bench/ is on sys.path


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def timed(fn, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def summary(samples: list[float]) -> dict:
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(percentile(samples, 99), 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()

    with ExitStack() as cleanup:
        run_environment(cleanup)
        from tests.fakes.robinhood_login import MFA_SECRET, PASSWORD, USERNAME
        from tests.fakes.robinhood_server import FakeRobinhood

        fake = FakeRobinhood()
        cleanup.callback(fake.stop)
        os.environ.update(
            BROKER="robinhood",
            ROBINHOOD_USERNAME=USERNAME,
            ROBINHOOD_PASSWORD=PASSWORD,
            ROBINHOOD_MFA_SECRET=MFA_SECRET,
            ROBINHOOD_API_URL=fake.url,
            ROBINHOOD_MIN_INTERVAL_SECONDS="0",
        )
        try:
            return run(fake, args.calls)
        finally:
            from django.db import connections

            connections.close_all()


def run(fake, count: int) -> int:
    import django

    django.setup()
    import requests
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from trading.brokers import get_broker
    from trading.brokers.base import OrderRequest

    fake.add_position("AAPL", "3", "150")
    broker = get_broker()
    broker.account()  # logs in once
    order = broker.submit(
        OrderRequest(
            client_order_id="bench-1", symbol="SPY", side="buy", type="market", qty=Decimal("1")
        )
    )
    assert order.broker_order_id

    token = next(iter(fake.access_tokens))
    bare = requests.Session()
    bare.headers["Authorization"] = f"Bearer {token}"
    url = f"{fake.url}/positions/?nonzero=true"
    timed(lambda: bare.get(url, timeout=5).json(), 20)  # warm-up
    baseline = timed(lambda: bare.get(url, timeout=5).json(), count)
    positions = timed(lambda: get_broker().positions(), count)
    reused = timed(broker.positions, count)
    lookups = timed(lambda: get_broker().order_by_client_id("bench-1"), count)
    result = {
        "bench": "robinhood",
        "calls": count,
        "baseline_bare_get": summary(baseline),
        "positions": summary(positions),
        "positions_same_broker": summary(reused),
        "order_by_client_id": summary(lookups),
        "overhead_p50_ms": round(statistics.median(positions) - statistics.median(baseline), 3),
        "fake_requests": len(fake.requests),
        "violations": len(fake.violations),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
