"""WebSocket fan-out benchmark: the system's web server (daphne + /ws/updates) against a bare
`websockets` broadcast server, in the same run, with the same clients.

    python bench/ws_fanout.py [--clients 1000] [--seconds 8] [--latency-events 100]

Everything is private and on loopback: a throwaway VAR_DIR with SQLite, an embedded Redis, a
daphne process, and the clients in separate processes. Events of ~200 bytes are published
through streaming.publish (the bare server gets the same bytes over a control socket).

- latency: one event in flight at a time; each client's receive time minus the publish
  timestamp carried in the message; p50/p99 over every (client, event).
- throughput: a window of 8 events in flight; an event is done when every client has it;
  delivered messages/s = events done x clients / elapsed.
- drops: gaps in each client's sequence numbers.

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing.connection import wait
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WINDOW = 8
PAD = "x" * 60  # brings the envelope to ~200 bytes


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- clients (separate processes) ------------------------------------------------------------


def client_process(url: str, count: int, conn) -> None:
    _raise_fd_limit()
    asyncio.run(_clients(url, count, conn))


async def _clients(url: str, count: int, conn) -> None:
    from websockets.asyncio.client import connect

    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    received: dict[int, int] = {}
    drops = 0
    stop = asyncio.Event()
    sockets = []

    async def reader(ws) -> None:
        nonlocal drops
        last = None
        async for raw in ws:
            now = time.time()
            message = json.loads(raw)
            seq = message["seq"]
            if seq <= 0:
                continue
            if last is not None and seq != last + 1:
                drops += max(0, seq - last - 1)
            last = seq
            payload = message["payload"]
            if payload["phase"] == "lat":
                latencies.append(((now - payload["t_pub"]) * 1000, payload["n"]))
            n = payload["n"]
            got = received.get(n, 0) + 1
            if got == count:
                received.pop(n, None)
                conn.send(("done", n))
            else:
                received[n] = got

    semaphore = asyncio.Semaphore(50)

    async def open_one():
        async with semaphore:
            for attempt in range(5):
                try:
                    ws = await connect(url, compression=None, max_queue=None, open_timeout=30)
                    break
                except OSError:
                    await asyncio.sleep(0.2 * (attempt + 1))
            else:
                raise RuntimeError("could not connect")
            hello = json.loads(await ws.recv())
            assert hello["type"] == "status", hello
            sockets.append(ws)

    await asyncio.gather(*(open_one() for _ in range(count)))
    tasks = [asyncio.create_task(reader(ws)) for ws in sockets]
    loop.add_reader(conn.fileno(), stop.set)
    conn.send(("ready", count))
    await stop.wait()
    conn.recv()
    conn.send(("stats", {"latencies": latencies, "drops": drops}))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in sockets), return_exceptions=True)


# --- the bare baseline server (a separate process) -------------------------------------------


def baseline_server(port: int) -> None:
    _raise_fd_limit()

    async def main() -> None:
        from websockets.asyncio.server import broadcast, serve

        clients = set()

        async def handler(ws):
            if ws.request.path == "/publish":
                async for message in ws:
                    broadcast(clients, message)
                return
            await ws.send('{"type":"status","payload":{},"ts":"","seq":0}')
            clients.add(ws)
            try:
                await ws.wait_closed()
            finally:
                clients.discard(ws)

        async with serve(handler, "127.0.0.1", port, compression=None, backlog=2048):
            await asyncio.Future()

    asyncio.run(main())


# --- the publisher (this process) ---------------------------------------------------------------


class Run:
    def __init__(self, url: str, clients: int, processes: int, publish) -> None:
        self.publish = publish
        self.pipes = []
        self.procs = []
        ctx = mp.get_context("spawn")
        per = [clients // processes + (i < clients % processes) for i in range(processes)]
        for count in per:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=client_process, args=(url, count, child), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)
        for pipe in self.pipes:
            if not pipe.poll(120):
                raise RuntimeError("clients did not connect in time")
            assert pipe.recv()[0] == "ready"
        self.done: dict[int, int] = {}
        self.n = 0

    def _send(self, phase: str) -> int:
        self.n += 1
        self.publish({"n": self.n, "phase": phase, "t_pub": time.time(), "pad": PAD})
        return self.n

    def _collect(self, timeout: float) -> list[int]:
        finished = []
        for pipe in wait(self.pipes, timeout):
            while pipe.poll():
                kind, n = pipe.recv()
                self.done[n] = self.done.get(n, 0) + 1
                if self.done[n] == len(self.pipes):
                    del self.done[n]
                    finished.append(n)
        return finished

    def latency(self, events: int) -> int:
        lost = 0
        for _ in range(events):
            n = self._send("lat")
            deadline = time.monotonic() + 5
            while n not in self._collect(0.5):
                if time.monotonic() > deadline:
                    lost += 1
                    break
        return lost

    def throughput(self, seconds: float, server_pid: int | None) -> tuple[float, float | None]:
        import psutil

        proc = psutil.Process(server_pid) if server_pid else None
        cpu0 = sum(proc.cpu_times()[:2]) if proc else 0.0
        outstanding: set[int] = set()
        completed = 0
        started = time.monotonic()
        last_progress = started
        while True:
            now = time.monotonic()
            while len(outstanding) < WINDOW and now - started < seconds:
                outstanding.add(self._send("thr"))
            if not outstanding or now - last_progress > 5:
                break
            for n in self._collect(0.5):
                outstanding.discard(n)
                completed += 1
                last_progress = time.monotonic()
        elapsed = time.monotonic() - started
        cpu = (sum(proc.cpu_times()[:2]) - cpu0) if proc else None
        delivered = completed * self.clients
        us_per = (cpu / delivered * 1e6) if (cpu is not None and delivered) else None
        return delivered / elapsed, us_per

    @property
    def clients(self) -> int:
        return self._clients

    def finish(self) -> dict:
        for pipe in self.pipes:
            pipe.send("stop")
        latencies, drops = [], 0
        for pipe in self.pipes:
            while True:
                if not pipe.poll(30):
                    raise RuntimeError("clients did not report")
                message = pipe.recv()
                if message[0] == "stats":
                    break
            latencies += message[1]["latencies"]
            drops += message[1]["drops"]
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
        if os.environ.get("BENCH_DEBUG"):
            worst: dict[int, float] = {}
            for ms, n in latencies:
                worst[n] = max(worst.get(n, 0), ms)
            print("worst per event:", [round(worst[n]) for n in sorted(worst)], file=sys.stderr)
        latencies = sorted(ms for ms, _ in latencies)

        def pct(p: float) -> float | None:
            if not latencies:
                return None
            return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))], 2)

        return {"p50_ms": pct(0.50), "p99_ms": pct(0.99), "drops": drops}


def measure(url, clients, processes, publish, seconds, latency_events, server_pid) -> dict:
    run = Run(url, clients, processes, publish)
    run._clients = clients
    lost = run.latency(latency_events)
    per_s, us_per = run.throughput(seconds, server_pid)
    stats = run.finish()
    stats.update(
        delivered_per_s=round(per_s),
        server_cpu_us_per_delivered=round(us_per, 1) if us_per else None,
        events_not_completed=lost,
    )
    return stats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--seconds", type=float, default=8.0, help="throughput phase length")
    parser.add_argument("--latency-events", type=int, default=100)
    parser.add_argument("--baseline-server", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_server:
        baseline_server(args.baseline_server)
        return
    _raise_fd_limit()
    var_dir = Path(tempfile.mkdtemp(prefix="ws-fanout-"))
    sys.path.insert(0, str(ROOT))
    from tradingrobot.embedded_redis import EmbeddedRedis

    redis = EmbeddedRedis(var_dir)
    servers: list[subprocess.Popen] = []
    try:
        env = dict(
            os.environ,
            VAR_DIR=str(var_dir),
            DATABASE_URL=f"sqlite:///{var_dir / 'db.sqlite3'}",
            REDIS_URL=redis.start(),
            CHANNELS_PREFIX="bench",
            CACHE_PREFIX="bench",
            LOG_LEVEL="WARNING",
            DJANGO_SETTINGS_MODULE="tradingrobot.settings",
            # The 1,000 clients share one token: no per-principal cap (0) in this measurement.
            WEBSOCKET_MAX_CONNECTIONS_PER_PRINCIPAL="0",
        )
        os.environ.update(env)
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from streaming import events
        from streaming.publish import send_now
        from streaming.tokens import token_issue
        from trading.models import ApiKey

        key, _ = ApiKey.objects.create_key(name="bench", scope="read")
        token = token_issue(key_id=key.id, user_id=None).token

        # The system: daphne serving tradingrobot.asgi, events through streaming.publish.
        port = _free_port()
        log = open(var_dir / "daphne.log", "wb")  # noqa: SIM115
        daphne = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
            + ["tradingrobot.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        servers.append(daphne)
        _wait_http(f"http://127.0.0.1:{port}/api/v1/health")
        system = measure(
            f"ws://127.0.0.1:{port}/ws/updates?token={token}",
            args.clients,
            args.processes,
            lambda payload: send_now(events.ORDER_UPDATE, payload),
            args.seconds,
            args.latency_events,
            daphne.pid,
        )
        daphne.terminate()
        daphne.wait(10)

        # The baseline: a bare websockets broadcast server, same clients, same message shape.
        from websockets.sync.client import connect

        port = _free_port()
        bare = subprocess.Popen(
            [sys.executable, __file__, "--baseline-server", str(port)], cwd=ROOT, env=env
        )
        servers.append(bare)
        _wait_tcp(port)
        with connect(f"ws://127.0.0.1:{port}/publish", compression=None) as control:
            seq = 0

            def bare_publish(payload: dict) -> None:
                nonlocal seq
                seq += 1
                message = {"type": "order_update", "payload": payload, "ts": "", "seq": seq}
                control.send(json.dumps(message, separators=(",", ":")))

            baseline = measure(
                f"ws://127.0.0.1:{port}/",
                args.clients,
                args.processes,
                bare_publish,
                args.seconds,
                args.latency_events,
                bare.pid,
            )
    finally:
        for server in servers:
            if server.poll() is None:
                server.terminate()
                server.wait(10)
        redis.stop()
        shutil.rmtree(var_dir, ignore_errors=True)

    print("system:  ", json.dumps(system), file=sys.stderr)
    print("baseline:", json.dumps(baseline), file=sys.stderr)
    result = {
        "clients": args.clients,
        "delivered_per_s": system["delivered_per_s"],
        "baseline_delivered_per_s": baseline["delivered_per_s"],
        "ratio": round(system["delivered_per_s"] / baseline["delivered_per_s"], 3),
        "p50_ms": system["p50_ms"],
        "p99_ms": system["p99_ms"],
        "drops": system["drops"],
        "baseline_p50_ms": baseline["p50_ms"],
        "baseline_p99_ms": baseline["p99_ms"],
        "baseline_drops": baseline["drops"],
        "server_cpu_us_per_delivered": system["server_cpu_us_per_delivered"],
        "baseline_cpu_us_per_delivered": baseline["server_cpu_us_per_delivered"],
        "events_not_completed": system["events_not_completed"],
    }
    print(json.dumps(result))


def _wait_http(url: str, timeout: float = 60) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def _wait_tcp(port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


if __name__ == "__main__":
    main()
