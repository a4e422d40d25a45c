"""HTTP API throughput on loopback: /api/v1/status, /api/v1/stock-data, /api/v1/trades next to a
minimal DRF endpoint (no auth, no query), 32 concurrent connections, served the same way.

Run from the repository root:
    python bench/api.py [--seconds S] [--rounds R] [--servers gunicorn,daphne] [--workers N]

A throwaway database (a fresh PostgreSQL database beside DATABASE_URL's when that is set, else
SQLite in a temporary VAR_DIR) is migrated and seeded (a session, synthetic bars, 100 fills),
then each server is started on a free loopback port with production settings (DEBUG off) and
loaded by a separate load-generator process (aiohttp, 32 connections). The product routes run
with real API-key auth and the per-key rate limit (raised so that it never refuses). Each route
gets S seconds in all, in R turns taken in rotation with the others, so that load from anything
else on the machine falls on every route alike; a route's requests/s is the median of its turns.
Servers: `gunicorn` (the Procfile's `web`: tradingrobot.gunicorn_conf, sync workers, --workers
N, default 2 per CPU) and `daphne` (ASGI, one process). The last line printed is one JSON
object: rps and p99 per route for the first server (the one production uses for HTTP), `ratio`
= the lowest route rps over the minimal endpoint's, and the same figures for every server under
"servers".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from throwaway import postgres_database, redis_for_run

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CONNECTIONS = 32
ROUTES = {
    "minimal": "/bench/minimal",
    "status": "/api/v1/status",
    "stock_data": "/api/v1/stock-data",
    "trades": "/api/v1/trades",
}


# --- load generator (runs in its own process) ----------------------------------------------------


async def _load(url: str, seconds: float, headers: dict) -> dict:
    import aiohttp

    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=CONNECTIONS, force_close=False)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                try:
                    async with session.get(url) as response:
                        await response.read()
                        if response.status != 200:
                            errors += 1
                except aiohttp.ClientError:
                    errors += 1
                latencies.append(time.perf_counter() - start)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
        elapsed = time.perf_counter() - started
    return {
        "errors": errors,
        "elapsed": elapsed,
        "latencies_ms": [round(latency * 1000, 2) for latency in latencies],
    }


def summarize(rounds: list[dict]) -> dict:
    """One route's requests/s, the median of its turns' (a turn that other work on the machine
    disturbed does not decide it), and latency percentiles over all its requests."""
    latencies = sorted(ms for r in rounds for ms in r["latencies_ms"])
    rounds_rps = [len(r["latencies_ms"]) / r["elapsed"] for r in rounds if r["elapsed"]]

    def percentile(q: float) -> float:
        return latencies[min(len(latencies) - 1, int(len(latencies) * q))] if latencies else 0

    return {
        "requests": len(latencies),
        "errors": sum(r["errors"] for r in rounds),
        "rps": round(statistics.median(rounds_rps), 1) if rounds_rps else 0,
        "p99_ms": round(percentile(0.99), 1),
        "p50_ms": round(percentile(0.5), 1),
        "rounds_rps": [round(rps) for rps in rounds_rps],
    }


def loadgen_main(url: str, seconds: float, key: str) -> None:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    print(json.dumps(asyncio.run(_load(url, seconds, headers))))


def load(url: str, seconds: float, key: str) -> dict:
    """Run the load generator in a separate process (it must not share the server's GIL)."""
    out = subprocess.run(
        [PY, __file__, "--loadgen", url, "--seconds", str(seconds), "--key", key],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- setup ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SEED = """
from decimal import Decimal
from marketdata.services import bars_collect
from trading.models import ApiKey, ApiScope
from trading.services import order_submit, session_ensure_running
session_ensure_running()
bars_collect()
symbols = ["SPY", "QQQ", "TSLA", "NVDA"]
for i in range(100):
    # Every third order sells what an earlier one bought (short selling is off by default).
    side = "sell" if i >= 4 and i % 3 == 0 else "buy"
    order_submit(symbol=symbols[i % 4], side=side, qty=Decimal("1"))
print(ApiKey.objects.create_key(name="bench", scope=ApiScope.READ)[1])
"""


def _wait_for(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def server_command(kind: str, port: int, workers: int) -> list[str]:
    if kind == "gunicorn":
        # The Procfile's `web` process: its config, on our port and worker count.
        return [
            PY, "-m", "gunicorn", "-c", "python:tradingrobot.gunicorn_conf",
            "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--log-level", "warning",
            "tradingrobot.wsgi:application",
        ]  # fmt: skip
    if kind == "daphne":
        return [
            PY,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "tradingrobot.asgi:application",
        ]
    raise SystemExit(f"unknown server {kind!r}")


def bench_server(kind: str, env: dict, key: str, seconds: float, workers: int, rounds: int) -> dict:
    port = _free_port()
    process = subprocess.Popen(
        server_command(kind, port, workers),
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        _wait_for(port, process)
        urls = {name: f"http://127.0.0.1:{port}{path}" for name, path in ROUTES.items()}
        keys = {name: "" if name == "minimal" else key for name in ROUTES}
        for name in ROUTES:
            load(urls[name], min(2.0, seconds), keys[name])  # warm-up
        # The routes take turns, `rounds` times, so that load from anything else on the machine
        # falls on all of them alike and their ratio holds.
        runs: dict[str, list[dict]] = {name: [] for name in ROUTES}
        for _ in range(rounds):
            for name in ROUTES:
                runs[name].append(load(urls[name], seconds / rounds, keys[name]))
        results = {name: summarize(runs[name]) for name in ROUTES}
        for name in ROUTES:
            print(f"{kind:9s} {name:10s} {json.dumps(results[name])}", flush=True)
        return results
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=20)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--servers", default="gunicorn,daphne")
    parser.add_argument("--workers", type=int, default=2 * (os.cpu_count() or 1))
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--loadgen")
    parser.add_argument("--key", default="")
    args = parser.parse_args()
    if args.loadgen:
        return loadgen_main(args.loadgen, args.seconds, args.key)

    sys.path.insert(0, str(ROOT))
    var_dir = Path(tempfile.mkdtemp(prefix="bench-api-"))
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "VAR_DIR": str(var_dir),
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "API_THROTTLE_RATE": "100000000/minute",  # throttling runs, never refuses
        "LOG_LEVEL": "WARNING",
        # One prefix of its own, so the run's keys can be deleted afterwards.
        "CACHE_PREFIX": f"bench-api{os.getpid()}",
        "CHANNELS_PREFIX": f"bench-api{os.getpid()}",
    }
    postgres = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
    with ExitStack() as cleanup:
        if postgres:
            database = postgres_database(os.environ["DATABASE_URL"])
            env["DATABASE_URL"] = cleanup.enter_context(database)
        else:
            env["DATABASE_URL"] = f"sqlite:///{var_dir / 'bench.sqlite3'}"
        redis = redis_for_run(os.environ.get("REDIS_URL"), env["CACHE_PREFIX"], var_dir)
        env["REDIS_URL"] = cleanup.enter_context(redis)
        run = dict(cwd=ROOT, env=env, check=True, capture_output=True, text=True)
        subprocess.run([PY, "manage.py", "migrate", "-v", "0"], **run)
        seed = subprocess.run([PY, "manage.py", "shell", "-c", SEED], **run)
        key = seed.stdout.strip().splitlines()[-1]
        servers = {}
        for kind in args.servers.split(","):
            servers[kind] = bench_server(kind, env, key, args.seconds, args.workers, args.rounds)

    def summary(results: dict) -> dict:
        minimal = results["minimal"]["rps"]
        out = {f"{name}_rps": results[name]["rps"] for name in ROUTES}
        lowest = min(results[name]["rps"] for name in ROUTES if name != "minimal")
        out["ratio"] = round(lowest / minimal, 3) if minimal else None
        out["p99_ms"] = {name: results[name]["p99_ms"] for name in ROUTES}
        out["errors"] = sum(r["errors"] for r in results.values())
        return out

    first = args.servers.split(",")[0]
    line = {
        "server": f"{first}" + (f" --workers {args.workers}" if first == "gunicorn" else ""),
        "connections": CONNECTIONS,
        "seconds_per_route": args.seconds,
        "database": "postgresql" if postgres else "sqlite",
        **summary(servers[first]),
        "servers": {kind: summary(results) for kind, results in servers.items()},
    }
    print(json.dumps(line))


if __name__ == "__main__":
    main()
