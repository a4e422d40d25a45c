"""`make run`: migrate, bootstrap, then ws + worker + beat under honcho (Procfile).

Everything is served on one URL without a reverse proxy: the ASGI process (`ws`, daphne) answers
HTTP as well as WebSockets. Production adds `web` (gunicorn) for HTTP behind a proxy; for one
dashboard user daphne's HTTP is plenty. Runs under `tradingrobot.embedded_redis`, which provides
REDIS_URL and stops everything on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROCESSES = ["ws", "worker", "beat"]


def process_env(environ: dict[str, str], bin_dir: str) -> dict[str, str]:
    """The environment `make run` gives its processes."""
    from tradingrobot.bind_check import is_loopback

    env = dict(environ, PATH=bin_dir + os.pathsep + environ.get("PATH", ""))
    env.setdefault("PORT", "8000")
    env["WS_PORT"] = env["PORT"]
    env.setdefault("HOST", "127.0.0.1")
    if is_loopback(env["HOST"]):
        # The local demo: DEBUG on (and a generated SECRET_KEY), served to this machine only.
        env.setdefault("DEBUG", "true")
    env.setdefault("DJANGO_SETTINGS_MODULE", "tradingrobot.settings")
    return env


def main() -> int:
    python = sys.executable
    bin_dir = str(Path(python).parent)
    env = process_env(dict(os.environ), bin_dir)
    for step in (["migrate", "--noinput", "-v", "0"], ["bootstrap"]):
        subprocess.run([python, "manage.py", *step], cwd=ROOT, env=env, check=True)
    os.chdir(ROOT)
    # honcho in our place: it starts the Procfile's processes and stops them on SIGINT/SIGTERM.
    os.execvpe(
        os.path.join(bin_dir, "honcho"),
        ["honcho", "--no-colour", "-f", "Procfile", "start", "-p", env["PORT"], *PROCESSES],
        env,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
