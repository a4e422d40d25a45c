"""gunicorn settings of the `web` process (Procfile), which serves HTTP; daphne (`ws`) serves
/ws/. bench/api.py serves the API the same way. See README "How HTTP is served" for why.

    gunicorn -c python:tradingrobot.gunicorn_conf tradingrobot.wsgi:application
"""

from __future__ import annotations

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# Sync workers: one request at a time per process, so no thread fights another for the GIL.
# Two per CPU, so that one waiting on the database or the broker leaves the CPU to another.
worker_class = "sync"


def _default_workers() -> int:
    """Two per CPU, but no more than one per 256 MB of the machine's memory: on a 1 GB server
    with 2 CPUs that is 4 workers of ~40 MB each once the application is preloaded (below)
    beside ws, worker and beat (README, "Small server")."""
    try:
        memory_mb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024)
    except (ValueError, OSError):
        memory_mb = 4096
    return max(1, min(2 * (os.cpu_count() or 1), memory_mb // 256))


workers = int(os.environ.get("WEB_CONCURRENCY") or _default_workers())
# The application is imported once, before the workers fork, so they share its pages (Django,
# DRF, pandas ...) instead of each loading its own copy. Django opens no database connection
# and the Redis client none at import, so nothing open is shared across the fork.
preload_app = True
# A burst of connections waits in the kernel's queue rather than being refused.
backlog = 2048
# Under sync workers a request never shares its thread, so a database connection can outlive
# it (not under daphne, where each request runs in a thread of its own): saves the connection
# setup on every request that reads the database.
os.environ.setdefault("CONN_MAX_AGE", "60")
# A backtest runs inside its request: ten symbols over ten years took 16 s on this 2-CPU machine
# (synthetic data), and gunicorn's default 30 s would kill the worker mid-answer on a slower one.
timeout = int(os.environ.get("WEB_TIMEOUT", 120))
