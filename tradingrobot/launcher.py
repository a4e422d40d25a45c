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
PROCESSES = ["ws", "worker", "notify", "beat"]


def main() -> int:
    python = sys.executable
    bin_dir = str(Path(python).parent)
    env = dict(os.environ, PATH=bin_dir + os.pathsep + os.environ.get("PATH", ""))
    env.setdefault("PORT", "8000")
    env["WS_PORT"] = env["PORT"]
    env.setdefault("DJANGO_SETTINGS_MODULE", "tradingrobot.settings")
    for step in (["migrate", "--noinput", "-v", "0"], ["bootstrap"]):
        subprocess.run([python, "manage.py", *step], cwd=ROOT, env=env, check=True)
    os.chdir(ROOT)
    processes = PROCESSES + (["telegram"] if env.get("TELEGRAM_BOT_TOKEN") else [])
    # honcho in our place: it starts the Procfile's processes and stops them on SIGINT/SIGTERM.
    os.execvpe(
        os.path.join(bin_dir, "honcho"),
        ["honcho", "--no-colour", "-f", "Procfile", "start", "-p", env["PORT"], *processes],
        env,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
