"""Real-time benchmark: fills from the fake Alpaca trading stream through the real `stream` and
`ws` (daphne) processes to 1,000 WebSocket clients, with a plain publish as the baseline.

Run from the repository root:  python bench/realtime.py [--clients 1000] [--fills 100]

It builds a throwaway database (a fresh PostgreSQL database next to DATABASE_URL's when that is
set, else SQLite), uses REDIS_URL (the run's keys deleted afterwards; an embedded Redis when
unset), starts the fake Alpaca REST API and trading stream in this process (tests/fakes), then
`manage.py stream` (BROKER=alpaca against the fakes) and daphne, and connects the clients from
separate processes. Orders are submitted through the order service (REST fake); each fill is one
`trade_updates` message from the fake. Measured in one run:

- latency: one fill in flight at a time; for each (client, fill) the moment the first of its
  trade_update / order_update (filled) reached the client's socket (the kernel's receive time)
  minus the moment the fake sent the fill: p50, p99 (and `handled_*_ms`, to the moment the
  client process read it; `record_*_ms`, the part until the stream process saved the order row);
- throughput: `--burst` fills sent at once; fills booked per second until the last is recorded;
- lost fills: orders filled around a forced disconnect (half sent just before it, half only at
  the REST API while the stream is down) that are not booked once the stream is back (must be 0);
- baseline: plain `order_update` publishes from this process to the same clients: p99;
- quotes: `market_data` events the clients received during the run (the live market-data
  stream's coalesced quotes; 0 when none is configured).

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import secrets
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from decimal import Decimal
from multiprocessing.connection import wait
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from throwaway import postgres_database, redis_for_run  # noqa: E402 - bench/ is on sys.path
from ws_fanout import _free_port, _raise_fd_limit, _wait_http  # noqa: E402

# --- clients (separate processes) ------------------------------------------------------------

# The envelope starts with its type (streaming.events.envelope). What a client need not parse,
# it does not (a quote is only counted).
SKIP = (b'{"type":"position_update"', b'{"type":"performance_update"')
QUOTE = b'{"type":"market_data"'
# Linux's SO_TIMESTAMPNS (socket(7)), which Python's socket module does not name: each read
# carries the time its bytes reached the socket, on the same clock as time.time().
SO_TIMESTAMPNS = 35


def client_process(url: str, count: int, conn) -> None:
    _raise_fd_limit()
    asyncio.run(_clients(url, count, conn))


def _key_of(message: dict) -> str | None:
    """The order a message is about, when it tells of a fill (or the baseline's marker)."""
    payload = message.get("payload") or {}
    if message.get("type") == "trade_update":
        return str(payload.get("order_id"))
    if message.get("type") == "order_update" and payload.get("status") == "filled":
        return str(payload.get("id"))
    return None


class Tally:
    """What one client process's clients saw: per client, for each fill, when its first message
    reached the client's socket and when the client process got to read it; the quotes."""

    def __init__(self, count: int, conn) -> None:
        self.count, self.conn = count, conn
        self.seen: dict[str, int] = {}  # key -> clients that have its order_update
        self.quotes = 0

    def text(self, data: bytes, times: tuple[float, float], mine: dict) -> None:
        if data.startswith(QUOTE):
            self.quotes += 1
            return
        if data.startswith(SKIP):
            return  # a fill's position_update: not measured, so not parsed either
        message = json.loads(data)
        key = _key_of(message)
        if key is None:
            return
        mine.setdefault(key, times)  # latency: the first message that tells of the fill
        if message["type"] == "order_update":
            # Done when the fill's last event (its order_update) is everywhere, so the next
            # fill does not queue behind this one's trailing events.
            self.seen[key] = self.seen.get(key, 0) + 1
            if self.seen[key] == self.count:
                self.conn.send(("done", key))


class BenchClient:
    """One /ws/updates client: websockets' own protocol (Sans-I/O: handshake, frames, pings) on
    a plain non-blocking socket, read with recvmsg for the kernel's receive time.

    The 1,000 clients stand in for browsers on other machines, but here they share two cores
    with the server, and a client process reads its 500 sockets one after another: the last
    reads an event up to ~15 ms after its bytes arrived, waiting for the other 499, not for the
    server. So latency is measured to the moment the bytes reached the client's socket (what a
    browser on its own machine would see), and, for comparison, to the moment the client
    process read them (`handled_*`)."""

    def __init__(self, uri, tally: Tally) -> None:
        import socket

        from websockets.client import ClientProtocol

        self.uri = uri
        self.ws = ClientProtocol(uri, max_size=None)
        self.tally = tally
        self.mine: dict[str, tuple[float, float]] = {}
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setblocking(False)
        self.loop = asyncio.get_running_loop()
        self.greeted = self.loop.create_future()  # the status snapshot came

    async def open(self) -> None:
        await self.loop.sock_connect(self.sock, (self.uri.host, self.uri.port))
        self.ws.send_request(self.ws.connect())
        for data in self.ws.data_to_send():
            await self.loop.sock_sendall(self.sock, data)
        self.loop.add_reader(self.sock.fileno(), self.readable)
        await asyncio.wait_for(self.greeted, 30)

    def readable(self) -> None:
        import socket
        import struct

        try:
            data, ancillary, _flags, _addr = self.sock.recvmsg(1 << 20, socket.CMSG_SPACE(16))
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            data, ancillary = b"", []
            if not self.greeted.done():
                self.greeted.set_exception(exc)
        now = time.time()
        arrived = now
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                seconds, nanos = struct.unpack("qq", value[:16])
                arrived = seconds + nanos / 1e9
        if not data:
            self.close()
            return
        self.ws.receive_data(data)
        self.handle((arrived, now))

    def handle(self, times: tuple[float, float]) -> None:
        from websockets.frames import Frame, Opcode

        for event in self.ws.events_received():
            if not isinstance(event, Frame) or event.opcode is not Opcode.TEXT:
                continue
            if self.greeted.done():
                self.tally.text(event.data, times, self.mine)
            else:
                self.greeted.set_result(None)
        if self.ws.handshake_exc is not None and not self.greeted.done():
            self.greeted.set_exception(self.ws.handshake_exc)
        for data in self.ws.data_to_send():  # pongs (small: the socket takes them whole)
            if data:
                self.sock.send(data)

    def close(self) -> None:
        self.loop.remove_reader(self.sock.fileno())
        if not self.greeted.done():
            self.greeted.set_exception(ConnectionError("closed before the snapshot"))
        self.sock.close()


async def _clients(url: str, count: int, conn) -> None:
    from websockets.uri import parse_uri

    loop = asyncio.get_running_loop()
    uri = parse_uri(url)
    tally = Tally(count, conn)
    semaphore = asyncio.Semaphore(50)
    clients: list[BenchClient] = []

    async def open_one() -> None:
        async with semaphore:
            for attempt in range(10):
                client = BenchClient(uri, tally)
                try:
                    await client.open()
                    break
                except Exception:  # noqa: BLE001 - a busy server: try again
                    client.close()
                    await asyncio.sleep(0.2 * (attempt + 1))
            else:
                raise RuntimeError("could not connect")
            clients.append(client)

    await asyncio.gather(*(open_one() for _ in range(count)))
    stop = asyncio.Event()
    loop.add_reader(conn.fileno(), stop.set)
    conn.send(("ready", count))
    await stop.wait()
    conn.recv()
    conn.send(("stats", {"first": [c.mine for c in clients], "quotes": tally.quotes}))
    for client in clients:
        client.close()


class Clients:
    def __init__(self, url: str, clients: int, processes: int) -> None:
        ctx = mp.get_context("spawn")
        self.pipes, self.procs = [], []
        per = [clients // processes + (i < clients % processes) for i in range(processes)]
        for count in per:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=client_process, args=(url, count, child), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)
        for pipe in self.pipes:
            if not pipe.poll(180):
                raise RuntimeError("clients did not connect in time")
            assert pipe.recv()[0] == "ready"
        self.done: dict[str, int] = {}
        self.finished: set[str] = set()

    def wait_for(self, key: str, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        while key not in self.finished:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            for pipe in wait(self.pipes, left):
                while pipe.poll():
                    _kind, done = pipe.recv()
                    self.done[done] = self.done.get(done, 0) + 1
                    if self.done[done] == len(self.pipes):
                        self.finished.add(done)
        return True

    def finish(self) -> tuple[list[dict[str, float]], int]:
        for pipe in self.pipes:
            pipe.send("stop")
        first, quotes = [], 0
        for pipe in self.pipes:
            while True:
                if not pipe.poll(60):
                    raise RuntimeError("clients did not report")
                message = pipe.recv()
                if message[0] == "stats":
                    break
            first += message[1]["first"]
            quotes += message[1]["quotes"]
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.terminate()
        return first, quotes


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def latencies(first: list[dict], sent: dict[str, float], which: int = 0) -> list[float]:
    """Per (client, key): milliseconds from `sent` to its bytes reaching the client's socket
    (`which` 0) or to the client process reading them (1)."""
    return [(mine[k][which] - t) * 1000 for mine in first for k, t in sent.items() if k in mine]


# --- the run ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--processes", type=int, default=2, help="client processes")
    parser.add_argument("--fills", type=int, default=100, help="latency phase: one at a time")
    parser.add_argument("--burst", type=int, default=200, help="throughput phase")
    parser.add_argument("--disconnect", type=int, default=40, help="fills around a drop")
    parser.add_argument(
        "--async-commit",
        action="store_true",
        help="PostgreSQL synchronous_commit=off on the run's database: shows the fsync's share",
    )
    args = parser.parse_args()
    _raise_fd_limit()
    tmp = tempfile.TemporaryDirectory(prefix="trp-bench-rt-")
    prefix = f"benchrt{os.getpid()}"
    os.environ.update(
        VAR_DIR=tmp.name,
        DJANGO_SETTINGS_MODULE="tradingrobot.settings",
        LOG_LEVEL="WARNING",
        DEBUG="false",
        SECRET_KEY=os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
        CHANNELS_PREFIX=prefix,
        CACHE_PREFIX=prefix,
        # The clients share one token: no per-principal cap (0) in this measurement.
        WEBSOCKET_MAX_CONNECTIONS_PER_PRINCIPAL="0",
    )
    with ExitStack() as cleanup:
        cleanup.callback(tmp.cleanup)
        if os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
            database = postgres_database(os.environ["DATABASE_URL"])
            os.environ["DATABASE_URL"] = cleanup.enter_context(database)
            if args.async_commit:
                import psycopg

                with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
                    name = conn.info.dbname
                    conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
        else:
            os.environ["DATABASE_URL"] = f"sqlite:///{Path(tmp.name) / 'bench.sqlite3'}"
        redis = redis_for_run(os.environ.get("REDIS_URL"), prefix, Path(tmp.name))
        os.environ["REDIS_URL"] = cleanup.enter_context(redis)
        return run(args, cleanup, Path(tmp.name))


def run(args, cleanup: ExitStack, var_dir: Path) -> int:
    from tests.fakes.alpaca_server import API_KEY, SECRET_KEY, FakeAlpaca
    from tests.fakes.alpaca_stream import FakeAlpacaStream

    rest, fake = FakeAlpaca(), FakeAlpacaStream()
    cleanup.callback(rest.stop)
    cleanup.callback(fake.stop)
    rest.set_account(cash="100000000", buying_power="200000000", equity="100000000")
    os.environ.update(
        BROKER="alpaca",
        ALPACA_API_KEY=API_KEY,
        ALPACA_SECRET_KEY=SECRET_KEY,
        ALPACA_URL_OVERRIDE=rest.trading_url,
        ALPACA_STREAM_URL=fake.url,
        STREAM_BACKOFF_MIN_SECONDS="0.5",
    )
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    cleanup.callback(connections.close_all)
    call_command("migrate", verbosity=0)
    from marketdata.services import bars_collect
    from streaming import events
    from streaming.publish import send_now
    from streaming.tokens import token_issue
    from trading import services
    from trading.models import ApiKey, Order, OrderStatus, Trade

    services.session_start(starting_cash=Decimal("100000000"))
    bars_collect()
    key, _ = ApiKey.objects.create_key(name="bench", scope="read")
    token = token_issue(key_id=key.id, user_id=None).token

    port = _free_port()
    procs = {
        "ws": [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        + ["tradingrobot.asgi:application"],
        "stream": [sys.executable, str(ROOT / "manage.py"), "stream"],
    }
    started = {}
    for name, command in procs.items():
        log = (var_dir / f"{name}.log").open("wb")
        started[name] = subprocess.Popen(
            command, cwd=ROOT, env=dict(os.environ), stdout=log, stderr=subprocess.STDOUT
        )
        cleanup.callback(_stop, started[name])
    _wait_http(f"http://127.0.0.1:{port}/api/v1/health")
    fake.wait_listening(timeout=60)
    clients = Clients(
        f"ws://127.0.0.1:{port}/ws/updates?token={token}", args.clients, args.processes
    )

    def submit(n: int) -> Order:
        return services.order_submit(
            symbol="SPY", side="buy", qty=Decimal("1"), client_order_id=f"rt-{n}"
        ).order

    def booked(orders: list[Order]) -> int:
        ids = [o.pk for o in orders]
        return Order.objects.filter(pk__in=ids, status=OrderStatus.FILLED).count()

    # Latency: one fill in flight at a time. The orders are submitted first (each submit sends
    # order_update events of its own, which must not queue in front of a measured fill).
    latency_orders = [submit(n) for n in range(args.fills)]
    time.sleep(2)
    sent: dict[str, float] = {}
    not_completed = 0
    for order in latency_orders:
        data = fake.fill(rest, order.client_order_id, qty=1, price="100", send=False)
        sent[str(order.pk)] = time.time()
        fake.push(data)
        if not clients.wait_for(str(order.pk)):
            not_completed += 1

    # Baseline: a plain publish to the same clients, the same way.
    baseline_sent: dict[str, float] = {}
    for n in range(args.fills):
        marker = f"baseline-{n}"
        baseline_sent[marker] = time.time()
        send_now(events.ORDER_UPDATE, {"id": marker, "status": "filled", "pad": "x" * 400})
        clients.wait_for(marker)

    # Throughput: a burst of fills, booked as fast as the stream process can.
    burst = [submit(args.fills + n) for n in range(args.burst)]
    time.sleep(2)
    messages = [fake.fill(rest, o.client_order_id, qty=1, price="101", send=False) for o in burst]
    begin = time.monotonic()
    for data in messages:
        fake.push(data)
    while booked(burst) < len(burst) and time.monotonic() - begin < 120:
        time.sleep(0.02)
    fills_per_s = booked(burst) / (time.monotonic() - begin)

    # A forced disconnect: half the fills sent just before it, half only at the REST API.
    around = [submit(args.fills + args.burst + n) for n in range(args.disconnect)]
    half = len(around) // 2
    for order in around[:half]:
        fake.fill(rest, order.client_order_id, qty=1, price="102")
    fake.drop()
    for order in around[half:]:
        fake.fill(rest, order.client_order_id, qty=1, price="102", send=False)
    deadline = time.monotonic() + 60
    while booked(around) < len(around) and time.monotonic() < deadline:
        time.sleep(0.1)
    lost = len(around) - booked(around)
    double = sum(1 for o in around + burst if Trade.objects.filter(order=o).count() > 1)

    # How much of it is the stream process (receive, record, commit): the order row's save time.
    rows = Order.objects.filter(pk__in=list(sent)).values_list("pk", "updated_at")
    saved = {str(pk): at for pk, at in rows}
    record_ms = [(saved[k].timestamp() - t) * 1000 for k, t in sent.items() if k in saved]
    first, quotes = clients.finish()
    fill_ms, fill_handled_ms = latencies(first, sent), latencies(first, sent, 1)
    base_ms, base_handled_ms = latencies(first, baseline_sent), latencies(first, baseline_sent, 1)
    result = {
        "clients": args.clients,
        "fills": len(sent) + len(burst) + len(around),
        "p50_ms": percentile(fill_ms, 0.50),
        "p99_ms": percentile(fill_ms, 0.99),
        "fills_per_s": round(fills_per_s, 1),
        "record_p50_ms": percentile(record_ms, 0.50),
        "record_p99_ms": percentile(record_ms, 0.99),
        "lost_fills": lost,
        "double_booked": double,
        "baseline_fanout_p50_ms": percentile(base_ms, 0.50),
        "baseline_fanout_p99_ms": percentile(base_ms, 0.99),
        # The same, to the moment the client process read the bytes (BenchClient says why
        # that is not the headline):
        "handled_p50_ms": percentile(fill_handled_ms, 0.50),
        "handled_p99_ms": percentile(fill_handled_ms, 0.99),
        "baseline_fanout_handled_p99_ms": percentile(base_handled_ms, 0.99),
        "quotes": quotes,
        "fills_not_seen_by_every_client": not_completed,
        "stream_connections_max": fake.max_active,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "async_commit": args.async_commit,
    }
    print(json.dumps(result))
    return 0 if lost == 0 else 1


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    sys.exit(main())
