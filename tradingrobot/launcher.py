"""`make run`: migrate, bootstrap, then the Procfile's ws + worker + beat, supervised here.

Everything is served on one URL without a reverse proxy: the ASGI process (`ws`, daphne) answers
HTTP as well as WebSockets. Production adds `web` (gunicorn) for HTTP behind a proxy; for one
dashboard user daphne's HTTP is plenty.

This one small process is the whole supervisor (issue 20: honcho cost one forked Python process
of ~16 MB per child, plus its own): it starts an embedded Redis when REDIS_URL is unset, starts
each Procfile command through `sh -c exec` (the shell replaces itself, so no process sits between
us and the child), prefixes their output with the process name, and stops everything — children
first, Redis last — on Ctrl-C, SIGTERM, the death of any child, or the death of whoever started
it. It imports neither Django nor anything heavy.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tradingrobot.embedded_redis import EmbeddedRedis, var_dir

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ["ws", "worker", "beat"]
STOP_TIMEOUT_SECONDS = 10.0
PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


def procfile_commands(path: Path) -> dict[str, str]:
    """The Procfile's `name: command` lines."""
    commands = {}
    for line in path.read_text().splitlines():
        match = PROCFILE_LINE.match(line.strip())
        if match:
            commands[match.group(1)] = match.group(2)
    return commands


def _pump(name: str, stream, width: int, lock: threading.Lock) -> None:
    for raw in iter(stream.readline, b""):
        line = raw.decode(errors="replace").rstrip("\n")
        with lock:
            sys.stdout.write(f"{time.strftime('%H:%M:%S')} {name:<{width}} | {line}\n")
            sys.stdout.flush()


class Supervisor:
    """The Procfile's processes as direct children; one exits or a signal comes: all stop."""

    def __init__(self, commands: dict[str, str], env: dict[str, str]) -> None:
        self.commands = commands
        self.env = env
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> None:
        width = max(len(name) for name in self.commands)
        for name, command in self.commands.items():
            child = subprocess.Popen(
                ["/bin/sh", "-c", f"exec {command}"],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            self.children[name] = child
            threading.Thread(
                target=_pump, args=(name, child.stdout, width, self._lock), daemon=True
            ).start()
            self.say(f"{name} started (pid {child.pid})")

    def say(self, message: str) -> None:
        with self._lock:
            print(f"{time.strftime('%H:%M:%S')} launcher | {message}", flush=True)

    def wait(self) -> int:
        """Until a child exits, a stop is asked for, or our parent dies; the exit status."""
        parent = os.getppid()
        while not self.stopping.is_set():
            for name, child in self.children.items():
                code = child.poll()
                if code is not None:
                    self.say(f"{name} exited with status {code}: stopping everything")
                    return code or 1
            if os.getppid() != parent:  # whoever started us (make) is gone
                return 1
            self.stopping.wait(0.5)
        return 0

    def stop(self) -> None:
        for child in self.children.values():
            if child.poll() is None:
                child.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for name, child in self.children.items():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{name} did not stop in {STOP_TIMEOUT_SECONDS:.0f}s: killing it")
                child.kill()
                child.wait()


def main() -> int:
    python = sys.executable
    bin_dir = str(Path(python).parent)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    env.setdefault("PORT", "8000")
    env["WS_PORT"] = env["PORT"]
    env.setdefault("DJANGO_SETTINGS_MODULE", "tradingrobot.settings")
    redis = None
    if not env.get("REDIS_URL"):
        redis = EmbeddedRedis(var_dir())
        env["REDIS_URL"] = redis.start()
        print(f"Embedded Redis at {env['REDIS_URL']}", flush=True)
    supervisor = Supervisor(
        {name: procfile_commands(ROOT / "Procfile")[name] for name in PROCESSES}, env
    )

    def on_signal(_signum: int, _frame: object) -> None:
        supervisor.stopping.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    code = 1
    try:
        for step in (["migrate", "--noinput", "-v", "0"], ["bootstrap"]):
            subprocess.run([python, "manage.py", *step], cwd=ROOT, env=env, check=True)
        supervisor.start()
        code = supervisor.wait()
    except subprocess.CalledProcessError as exc:
        code = exc.returncode or 1
    finally:
        supervisor.stop()
        if redis:
            redis.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
