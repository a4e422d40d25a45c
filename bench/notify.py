"""Notification benchmark: fills through the whole system to a local signed-webhook receiver.

Run from the repository root:  python bench/notify.py [--fills 1000] [--fail-rate 0.3]

Throwaway database and Redis as bench/orders.py (a fresh PostgreSQL database next to
DATABASE_URL's when set, else SQLite; an embedded Redis when REDIS_URL is unset). It starts the
Procfile's `notify` worker (a real Celery process on the `notifications` queue) and a webhook
receiver on 127.0.0.1, in a process of its own, that verifies every signature, then submits paper
market orders through POST /api/v1/orders/submit in-process (each fills at once):

1. healthy receiver: `--healthy` fills; delivery latency from the fill's commit (the submit's
   return, just after it) to the receiver accepting it: `delivery_p50_ms`, `delivery_p99_ms`;
2. a receiver failing `--fail-rate` of requests (503): `--fills` fills; every event must arrive,
   once by id (`lost`, `duplicates`), with its latency including retries (`failing_*`);

and, in the same run, blocks of 50 orders alternate with notifications on and off
(NOTIFICATIONS_ENABLED), so `submit_p99_ratio` = order-submit p99 on / off. The last line
printed is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import json
import multiprocessing
import os
import random
import secrets
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from contextlib import ExitStack
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from throwaway import run_environment, trading_client  # noqa: E402 - bench/ is on sys.path

SECRET = secrets.token_urlsafe(24)
BLOCK = 50


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))
    return ordered[index]


class Receiver:
    """The trader's webhook endpoint, in a process of its own (as it would be: in this one it
    would take the GIL from the orders being measured): verifies the signature, fails
    `fail_rate` of requests with 503, and records when each event id was first accepted and how
    often. The bench reads that back over GET /stats and sets the fail rate with POST /control.
    """

    def __init__(self, cleanup: ExitStack) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self.process = context.Process(target=receiver_serve, args=(child, SECRET), daemon=True)
        self.process.start()
        cleanup.callback(self.process.kill)
        if not parent.poll(30):
            raise RuntimeError("the webhook receiver did not start")
        self.port = parent.recv()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            payload = None if body is None else json.dumps(body).encode()
            connection.request(method, path, payload)
            return json.loads(connection.getresponse().read() or b"{}")
        finally:
            connection.close()

    def set_fail_rate(self, rate: float) -> None:
        self._call("POST", "/control", {"fail_rate": rate})

    def stats(self) -> dict:
        return self._call("GET", "/stats")


def receiver_serve(pipe, secret: str) -> None:
    """The receiver process: serve until killed. It stands in for the trader's endpoint, which
    lives on another host: at the lowest CPU priority it takes only what the system leaves."""
    os.nice(19)
    state = {"fail_rate": 0.0, "first": {}, "count": Counter(), "requests": 0, "bad": 0}
    rng = random.Random(16)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _answer(self, status: int, body: bytes = b"") -> None:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with lock:
                body = json.dumps(
                    {
                        "first": state["first"],
                        "count": state["count"],
                        "requests": state["requests"],
                        "bad_signatures": state["bad"],
                    }
                )
            self._answer(200, body.encode())

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/control":
                state["fail_rate"] = float(json.loads(body)["fail_rate"])
                return self._answer(200)
            stamp = self.headers.get("X-TRP-Timestamp", "")
            mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256)
            good = "sha256=" + mac.hexdigest()
            with lock:
                state["requests"] += 1
                if not hmac.compare_digest(good, self.headers.get("X-TRP-Signature", "")):
                    state["bad"] += 1
                    status = 401
                elif rng.random() < state["fail_rate"]:
                    status = 503
                else:
                    status = 200
                    event = json.loads(body)["id"]
                    state["first"].setdefault(event, time.time())
                    state["count"][event] += 1
            self._answer(status)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    pipe.send(server.server_address[1])
    server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fills", type=int, default=1000)
    parser.add_argument("--healthy", type=int, default=200)
    parser.add_argument("--fail-rate", type=float, default=0.3)
    args = parser.parse_args()

    os.environ["ALLOWED_HOSTS"] = "testserver"
    os.environ["API_THROTTLE_RATE"] = "1000000/minute"
    for name in ("NOTIFICATIONS_WEBHOOK_URL", "TELEGRAM_BOT_TOKEN", "NOTIFICATIONS_EMAIL_TO"):
        os.environ.pop(name, None)
    with ExitStack() as cleanup:
        var_dir = run_environment(cleanup)
        os.environ.pop("CELERY_BROKER_URL", None)
        try:
            return run(args, cleanup, var_dir)
        finally:
            from django.db import connections

            connections.close_all()


def start_worker(cleanup: ExitStack, log_dir: Path) -> subprocess.Popen:
    log = open(log_dir / "notify-worker.log", "ab")  # noqa: SIM115
    process = subprocess.Popen(
        ["nice", "-n", "10"]  # as the Procfile's `notify`
        + [sys.executable, "-m", "celery", "-A", "tradingrobot", "worker", "-Q", "notifications"]
        + ["-n", f"notify-bench-{os.getpid()}@%h", "--pool=threads", "--concurrency=8"]
        + ["--without-heartbeat", "--without-gossip", "--without-mingle"],
        cwd=ROOT,
        # Production's persistent connections (README: CONN_MAX_AGE=60): without them every
        # task opens a PostgreSQL connection.
        env=dict(os.environ, CONN_MAX_AGE="60"),
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    cleanup.callback(stop)
    from tradingrobot.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"worker exited: {(log_dir / 'notify-worker.log').read_text()}")
        replies = app.control.ping(timeout=0.5) or []
        if any("notify-bench" in name for reply in replies for name in reply):
            return process
    raise RuntimeError("worker did not start")


def run(args, cleanup: ExitStack, tmp: Path) -> int:
    client = trading_client()
    from django.conf import settings
    from django.db import connection

    from notifications.models import Channel, Delivery

    receiver = Receiver(cleanup)
    Channel.objects.create(name="bench", kind="webhook", target=receiver.url, secret=SECRET)
    start_worker(cleanup, tmp)

    counter = iter(range(10**9))

    def submit() -> tuple[float, str, float]:
        """One order; returns (latency ms, order id, time it returned)."""
        i = next(counter)
        body = {
            "symbol": ("SPY", "QQQ", "TSLA", "NVDA")[(i // 2) % 4],
            "side": "buy" if i % 2 == 0 else "sell",
            "qty": "1",
            "client_order_id": f"nb-{i}",
        }
        start = time.perf_counter()
        response = client.post("/api/v1/orders/submit", body, format="json")
        done = time.time()
        assert response.status_code == 201, response.content
        return (time.perf_counter() - start) * 1000, response.json()["id"], done

    def phase(fills: int, on_lat: list, off_lat: list) -> dict[str, float]:
        """`fills` orders with notifications on, interleaved with as many off, in blocks."""
        returned = {}
        while len(returned) < fills:
            for enabled in (False, True):
                settings.NOTIFICATIONS_ENABLED = enabled
                for _ in range(min(BLOCK, fills - len(returned)) if enabled else BLOCK):
                    latency, order_id, done = submit()
                    if enabled:
                        on_lat.append(latency)
                        returned[f"order.filled:{order_id}"] = done
                    else:
                        off_lat.append(latency)
        settings.NOTIFICATIONS_ENABLED = True
        return returned

    from notifications.tasks import sweep

    def wait_delivered(expected: dict, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        next_sweep = time.monotonic() + 30
        while time.monotonic() < deadline:
            first = receiver.stats()["first"]
            if all(e in first for e in expected):
                return
            if time.monotonic() > next_sweep:  # what beat does every 30 s
                sweep()
                next_sweep += 30
            time.sleep(0.5)

    for _ in range(20):  # warm-up: imports, connections, the worker's first tasks
        submit()
    time.sleep(2)
    on_lat: list[float] = []
    off_lat: list[float] = []

    healthy = phase(args.healthy, on_lat, off_lat)
    wait_delivered(healthy, 60)
    first = receiver.stats()["first"]
    healthy_ms = [(first[e] - t) * 1000 for e, t in healthy.items() if e in first]

    receiver.set_fail_rate(args.fail_rate)
    failing = phase(args.fills, on_lat, off_lat)
    wait_delivered(failing, 600)
    time.sleep(3)  # let any late duplicate show up
    stats = receiver.stats()
    first, count = stats["first"], Counter(stats["count"])
    failing_ms = [(first[e] - t) * 1000 for e, t in failing.items() if e in first]
    delivered = sum(1 for e in failing if e in first)
    duplicates = sum(count[e] - 1 for e in failing if count[e] > 1)
    requests, bad = stats["requests"], stats["bad_signatures"]
    attempts = list(
        Delivery.objects.filter(event_id__in=list(failing)).values_list("attempts", flat=True)
    )
    result = {
        "events": len(failing),
        "delivered": delivered,
        "lost": len(failing) - delivered,
        "duplicates": duplicates,
        "fail_rate": args.fail_rate,
        "receiver_requests": requests,
        "bad_signatures": bad,
        "max_attempts": max(attempts) if attempts else 0,
        "failing_delivery_p50_ms": round(statistics.median(failing_ms), 1) if failing_ms else None,
        "failing_delivery_p99_ms": round(percentile(failing_ms, 99), 1) if failing_ms else None,
        "healthy_events": len(healthy),
        "healthy_delivered": len(healthy_ms),
        "delivery_p50_ms": round(statistics.median(healthy_ms), 1),
        "delivery_p99_ms": round(percentile(healthy_ms, 99), 1),
        "submit_on_p50_ms": round(statistics.median(on_lat), 3),
        "submit_on_p99_ms": round(percentile(on_lat, 99), 3),
        "submit_off_p50_ms": round(statistics.median(off_lat), 3),
        "submit_off_p99_ms": round(percentile(off_lat, 99), 3),
        "database": connection.vendor,
        "worker_errors": (tmp / "notify-worker.log").read_text().count("ERROR"),
    }
    result["submit_p99_ratio"] = round(result["submit_on_p99_ms"] / result["submit_off_p99_ms"], 3)
    print(
        f"{result['events']} fills to a webhook failing {args.fail_rate:.0%}: "
        f"{delivered} delivered, {result['lost']} lost, {duplicates} duplicates, "
        f"first delivery p50 {result['failing_delivery_p50_ms']} ms p99 "
        f"{result['failing_delivery_p99_ms']} ms; healthy receiver p50 "
        f"{result['delivery_p50_ms']} ms p99 {result['delivery_p99_ms']} ms; order submit p99 "
        f"{result['submit_on_p99_ms']} ms on vs {result['submit_off_p99_ms']} ms off "
        f"({result['submit_p99_ratio']}x) on {connection.vendor}"
    )
    print(json.dumps(result))
    return 0 if result["lost"] == 0 and duplicates == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
