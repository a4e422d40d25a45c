"""gunicorn settings of the `web` process (Procfile), which serves HTTP; daphne (`ws`) serves
/ws/. bench/api.py serves the API the same way. See README "How HTTP is served" for why.

    gunicorn -c python:tradingrobot.gunicorn_conf tradingrobot.wsgi:application
"""

from __future__ import annotations

import gc
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
# Sync workers: one request at a time per process, so no thread fights another for the GIL.
# Two per CPU, so that one waiting on the database or the broker leaves the CPU to another.
worker_class = "sync"


def _default_workers() -> int:
    """Two per CPU, but no more than one per 512 MB of the machine's memory: 2 on a 1 GB
    server, which leaves room for ws, worker, beat, PostgreSQL and Redis (README, "Small
    server"); each preloaded worker takes ~40-60 MB of its own."""
    try:
        memory_mb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // (1024 * 1024)
    except (ValueError, OSError):
        memory_mb = 4096
    return max(1, min(2 * (os.cpu_count() or 1), memory_mb // 512))


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


def on_starting(server) -> None:
    """Refuse to start with DEBUG on when bound to a non-loopback address."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingrobot.settings")
    django.setup()
    from django.conf import settings

    from tradingrobot.bind_check import bind_host, refuse_debug_on_public_bind

    refuse_debug_on_public_bind([bind_host(b) for b in server.cfg.bind], debug=settings.DEBUG)


def when_ready(server) -> None:
    """In the master, after the preload and before the first fork: import every view (the URLconf
    is otherwise loaded by each worker's first request) and build the NYSE schedule, so the
    workers share those pages too (issue 20: ~50 MB less per worker)."""
    from django.urls import get_resolver

    from marketdata import calendar

    get_resolver().url_patterns  # noqa: B018 - the import is the point
    calendar.is_open(calendar.utcnow())
    # Keep the collector away from what the master built: its reference-count writes would
    # copy every shared page into each worker (under load their PSS grew from ~55 to ~85 MB).
    gc.freeze()
