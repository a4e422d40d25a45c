"""Resident memory of the `make run` stack (issue 20).

Starts the system as `make run` does (the launcher, embedded defaults: SQLite and an embedded Redis
in a throwaway VAR_DIR, paper broker, synthetic data), waits until one collection and one order
have gone through, lets it settle, and reads the resident memory (RSS) of every process in the
tree (an open dashboard's reads included). RSS counts pages shared between processes (libraries,
and a preloaded gunicorn master's pages in its workers) once per process; PSS shares them out,
so the PSS total is what the stack really takes from the machine. In the same run it measures one
bare `django.setup()` process with the project's settings as the baseline. Last line: one JSON
object with `total_mb` (RSS), `processes` (name -> RSS MB), `total_pss_mb`, `processes_pss`,
`baseline_django_mb`, `target_mb` and `ok` (RSS total within the target).

    .venv/bin/python bench/footprint.py [--settle 20]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
TARGET_MB = 400
MB = 1024 * 1024


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _call(url: str, key: str | None = None, body: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=None if body is None else json.dumps(body).encode())
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _name(proc: psutil.Process) -> str:
    """A readable name: the Procfile role or the program."""
    cmd = " ".join(proc.cmdline())
    for needle, name in (
        ("tradingrobot.launcher", "launcher"),
        ("gunicorn", "web (gunicorn)"),
        ("daphne", "ws (daphne)"),
        (" beat", "beat (celery)"),
        (" worker", "worker (celery)"),
        ("redis-server", "redis (embedded)"),
    ):
        if needle in cmd:
            return name
    return proc.name()


def _tree_memory(root: psutil.Process) -> tuple[dict[str, float], dict[str, float]]:
    """(RSS, PSS) in MB of every process in the tree, by name."""
    rss: dict[str, float] = {}
    pss: dict[str, float] = {}
    for proc in [root, *root.children(recursive=True)]:
        try:
            name, info = _name(proc), proc.memory_full_info()
        except psutil.NoSuchProcess:
            continue
        while name in rss:  # several of one kind: number them
            name += "'"
        rss[name] = round(info.rss / MB, 1)
        pss[name] = round(info.pss / MB, 1)
    return rss, pss


def _wait_until(what: str, check, timeout: float, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the stack exited while waiting for {what}:\n{log.read_text()[-3000:]}")
        try:
            if check():
                return
        except (OSError, KeyError, ValueError):
            pass
        time.sleep(0.5)
    sys.exit(f"timed out waiting for {what}:\n{log.read_text()[-3000:]}")


def baseline_django_mb() -> float:
    """RSS of one bare `import django; django.setup()` process with the project's settings."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="tradingrobot.settings")
    with tempfile.TemporaryDirectory() as var_dir:
        env["VAR_DIR"] = var_dir
        proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, django; django.setup(); print('ready', flush=True); sys.stdin.read()",
            ],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        try:
            assert proc.stdout.readline().strip() == b"ready"
            return round(psutil.Process(proc.pid).memory_info().rss / MB, 1)
        finally:
            proc.stdin.close()
            proc.wait(timeout=30)


def _load(base: str, key: str, requests: int) -> None:
    """`requests` reads (status, stock-data, trades, snapshot) from 16 threads, and one order per
    20 reads: the memory figure then is that of a stack that has been busy."""
    from concurrent.futures import ThreadPoolExecutor

    paths = ["status", "stock-data", "trades", "dashboard/snapshot"]

    def one(i: int) -> int:
        if i % 20 == 0:
            order = {"symbol": "QQQ", "side": "buy" if i % 40 else "sell", "qty": "1"}
            return _call(f"{base}/orders/submit", key, {**order, "type": "market"})[0]
        return _call(f"{base}/{paths[i % len(paths)]}", key)[0]

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(one, range(requests)))
    errors = [code for code in statuses if code >= 500]
    if errors:
        sys.exit(f"{len(errors)} requests of the load answered 5xx")


def stack_footprint(
    settle: float, processes: str | None = None, load: int = 0
) -> tuple[dict[str, float], dict[str, float]]:
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        var_dir = Path(tmp) / "var"
        env = {k: v for k, v in os.environ.items() if k not in {"REDIS_URL", "DATABASE_URL"}}
        env.update(PORT=str(port), VAR_DIR=str(var_dir), COLLECT_INTERVAL_SECONDS="5")
        log = Path(tmp) / "run.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tradingrobot.launcher",
                    *(["--processes", processes] if processes else []),
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            base = f"http://127.0.0.1:{port}/api/v1"
            try:
                _wait_until(
                    "the health check",
                    lambda: _call(f"{base}/health")[0] == 200,
                    240,
                    proc,
                    log,
                )
                key = json.loads((var_dir / "demo_credentials.json").read_text())["api_key"]
                first = _call(f"{base}/status", key)[1]["market_time"]
                _wait_until(
                    "a collection",
                    lambda: _call(f"{base}/status", key)[1]["market_time"] != first,
                    120,
                    proc,
                    log,
                )
                order = {"symbol": "SPY", "side": "buy", "qty": "1", "type": "market"}
                status, answer = _call(f"{base}/orders/submit", key, order)
                if status not in (200, 201):
                    sys.exit(f"the order was refused: {status} {answer}")
                # What an open dashboard asks for, so the figure is that of a stack in use.
                for path in ("dashboard/snapshot", "strategies", "chart-data?symbol=SPY"):
                    status, _ = _call(f"{base}/{path}", key)
                    if status != 200:
                        sys.exit(f"GET {path} answered {status}")
                if load:
                    _load(base, key, load)
                time.sleep(settle)
                return _tree_memory(psutil.Process(proc.pid))
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=20.0, help="seconds after the order")
    parser.add_argument(
        "--processes",
        help="another set of Procfile processes, e.g. web,ws,worker,beat (the small-server "
        "profile); default: what `make run` starts",
    )
    parser.add_argument(
        "--load", type=int, default=0, help="this many API requests (1 in 20 an order) first"
    )
    args = parser.parse_args()
    baseline = baseline_django_mb()
    processes, processes_pss = stack_footprint(args.settle, args.processes, args.load)
    total = round(sum(processes.values()), 1)
    total_pss = round(sum(processes_pss.values()), 1)
    print(f"{'process':<20} {'RSS':>8} {'PSS':>8}")
    for name, size in sorted(processes.items(), key=lambda item: -item[1]):
        print(f"{name:<20} {size:8.1f} {processes_pss[name]:8.1f}")
    print(f"{'total':<20} {total:8.1f} {total_pss:8.1f} MB (target {TARGET_MB} MB RSS)")
    print(f"{'bare django.setup()':<20} {baseline:8.1f}")
    print(
        json.dumps(
            {
                "total_mb": total,
                "processes": processes,
                "total_pss_mb": total_pss,
                "processes_pss": processes_pss,
                "baseline_django_mb": baseline,
                "target_mb": TARGET_MB,
                "ok": total <= TARGET_MB,
            }
        )
    )


if __name__ == "__main__":
    main()
