"""`make run`: migrate, bootstrap, then the Procfile's ws and worker (with beat and the streams),
supervised here.

Everything is served on one URL without a reverse proxy: the ASGI process (`ws`, daphne) answers
HTTP as well as WebSockets. Production adds `web` (gunicorn) for HTTP behind a proxy; for one
dashboard user daphne's HTTP is plenty.

This one small process is the whole supervisor (issue 20: honcho cost one forked Python process
of ~16 MB per child, plus its own): it starts an embedded Redis when REDIS_URL is unset, starts
each Procfile line through `sh -c` (a plain command with `exec`, so nothing sits between us and
the program), prefixes their output with the process name, and stops everything (children first,
Redis last) on Ctrl-C, SIGTERM, the death of any child, or the death of whoever started it. It
imports neither Django nor anything heavy.
"""

from __future__ import annotations

import argparse
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
# Beat runs as a thread of the one worker (BEAT_IN_WORKER, tradingrobot/celery.py), and that
# worker takes the research and notifications queues too: a process of its own would cost ~90 MB
# for a scheduler that sends a few messages a minute, ~150 MB for a research worker that is mostly
# idle, ~100 MB for notifications. The streams' runner is a thread of that worker too
# (STREAM_IN_WORKER): a `stream` process of its own measured ~150 MB. Production runs them apart
# (Procfile).
PROCESSES = ["ws", "worker"]
STOP_TIMEOUT_SECONDS = 10.0
PROCFILE_LINE = re.compile(r"^([A-Za-z0-9_-]+):\s*(.+)$")


def _server_of(queue: str) -> str:
    """The Procfile process that serves a Celery queue of its own."""
    return {"research": "research", "notifications": "notify"}[queue]


def default_processes(environ: dict[str, str]) -> list[str]:
    """PROCESSES, plus the Telegram poller when a bot token is set."""
    return PROCESSES + (["telegram"] if environ.get("TELEGRAM_BOT_TOKEN") else [])


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
        # Set by the signal handler: a plain flag, since threading.Event.set() from a handler can
        # deadlock on the Event's own lock if the signal lands while wait() holds it.
        self.stop_requested = False
        self._lock = threading.Lock()

    def start(self) -> None:
        width = max(len(name) for name in self.commands)
        for name, command in self.commands.items():
            # In our process group, as honcho had them: a Ctrl-C in the terminal, or a kill of the
            # whole group by whoever started us, reaches every process. A compound line
            # (`a && exec b`) keeps its shell only until its last command replaces it.
            compound = any(op in command for op in ("&&", "||", ";", "|"))
            child = subprocess.Popen(
                ["/bin/sh", "-c", command if compound else f"exec {command}"],
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
        while not self.stop_requested:
            for name, child in self.children.items():
                code = child.poll()
                if code is not None:
                    self.say(f"{name} exited with status {code}: stopping everything")
                    return code or 1
            if os.getppid() != parent:  # whoever started us (make) is gone
                return 1
            time.sleep(0.2)
        return 0

    def stop(self) -> None:
        for child in self.children.values():
            _signal(child, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for name, child in self.children.items():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{name} did not stop in {STOP_TIMEOUT_SECONDS:.0f}s: killing it")
                _signal(child, signal.SIGKILL)
                child.wait()


def _signal(child: subprocess.Popen[bytes], signum: int) -> None:
    if child.poll() is None:
        child.send_signal(signum)


def process_env(
    environ: dict[str, str], bin_dir: str, names: list[str] = PROCESSES
) -> dict[str, str]:
    """The environment the launcher gives its processes."""
    from tradingrobot.bind_check import is_loopback

    env = dict(environ, PATH=bin_dir + os.pathsep + environ.get("PATH", ""))
    env.setdefault("PORT", "8000")
    if "web" in names:
        env.setdefault("WS_PORT", str(int(env["PORT"]) + 1))
    else:
        env["WS_PORT"] = env["PORT"]  # ws answers HTTP too: one URL, no proxy
    env.setdefault("HOST", "127.0.0.1")
    if is_loopback(env["HOST"]):
        # The local demo: DEBUG on (and a generated SECRET_KEY), served to this machine only.
        env.setdefault("DEBUG", "true")
    env.setdefault("DJANGO_SETTINGS_MODULE", "tradingrobot.settings")
    if "beat" not in names:
        env.setdefault("BEAT_IN_WORKER", "true")
    if "stream" not in names:
        env.setdefault("STREAM_IN_WORKER", "true")
    # The one worker takes the queues no process of their own serves: research runs (one at a
    # time: strategies.research.tasks) and notification deliveries (at most
    # NOTIFICATIONS_CHANNEL_CONCURRENCY in flight per channel), with threads to spare for
    # collection and orders however slow a receiver is.
    extra = [queue for queue in ("research", "notifications") if _server_of(queue) not in names]
    if extra:
        env.setdefault("WORKER_QUEUES", ",".join(["celery", *extra]))
        env.setdefault("WORKER_CONCURRENCY", "8")
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the system on embedded defaults.")
    parser.add_argument(
        "--processes",
        default=",".join(default_processes(dict(os.environ))),
        help="Procfile processes to start (default: ws,worker, and telegram when "
        "TELEGRAM_BOT_TOKEN is set; with web, ws serves WS_PORT, "
        "default PORT+1; with beat, the worker runs no scheduler of its own)",
    )
    names = [name for name in parser.parse_args(argv).processes.split(",") if name]
    commands = procfile_commands(ROOT / "Procfile")
    unknown = sorted(set(names) - set(commands))
    if unknown or not names:
        parser.error(f"unknown Procfile processes: {', '.join(unknown) or '(none given)'}")
    python = sys.executable
    env = process_env(dict(os.environ), str(Path(python).parent), names)
    redis = None
    if not env.get("REDIS_URL"):
        redis = EmbeddedRedis(var_dir())
        env["REDIS_URL"] = redis.start()
        print(f"Embedded Redis at {env['REDIS_URL']}", flush=True)
    supervisor = Supervisor({name: commands[name] for name in names}, env)

    def on_signal(_signum: int, _frame: object) -> None:
        supervisor.stop_requested = True

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
