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
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * (os.cpu_count() or 1)))
# A burst of connections waits in the kernel's queue rather than being refused.
backlog = 2048
# Under sync workers a request never shares its thread, so a database connection can outlive
# it (not under daphne, where each request runs in a thread of its own): saves the connection
# setup on every request that reads the database.
os.environ.setdefault("CONN_MAX_AGE", "60")
# gunicorn's default. No request computes a backtest any more (research runs are Celery jobs on
# the `research` queue), so a request this slow is stuck, and the worker is better restarted.
timeout = int(os.environ.get("WEB_TIMEOUT", 30))
