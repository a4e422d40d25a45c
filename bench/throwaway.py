"""What every benchmark runs on and leaves nothing of: a fresh PostgreSQL database, and Redis
(REDIS_URL's with the run's keys deleted afterwards, else an embedded one for the run)."""

from __future__ import annotations

import os
import secrets
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


def _admin(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


@contextmanager
def postgres_database(url: str) -> Iterator[str]:
    """A new database on the server of `url`, named for this run; yields its URL and drops it
    afterwards (also while connections to it are still open)."""
    name = f"trp_bench_{uuid.uuid4().hex[:10]}"
    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    _admin(admin, f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        _admin(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def redis_for_run(url: str | None, prefix: str, var_dir: Path) -> Iterator[str]:
    """`url` when given, with every key under `prefix` (the run's CACHE_PREFIX and
    CHANNELS_PREFIX) deleted afterwards; else an embedded Redis in `var_dir` for the run."""
    if not url:
        from tradingrobot.embedded_redis import EmbeddedRedis

        redis = EmbeddedRedis(var_dir)
        try:
            yield redis.start()
        finally:
            redis.stop()
        return
    try:
        yield url
    finally:
        import redis

        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
        client.close()


def run_environment(cleanup: ExitStack) -> Path:
    """The run's environment, undone by `cleanup`: a temporary VAR_DIR (returned), production
    settings (DEBUG off, warnings only), one key prefix for cache and channels, and its own
    database (`postgres_database` next to DATABASE_URL's when that is PostgreSQL, else SQLite in
    VAR_DIR) and Redis (`redis_for_run`). Django is not set up yet: callers set what else they
    need in the environment first."""
    tmp = tempfile.TemporaryDirectory(prefix="trp-bench-")
    cleanup.callback(tmp.cleanup)
    var_dir = Path(tmp.name)
    os.environ["VAR_DIR"] = tmp.name
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingrobot.settings")
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    # One prefix for both, so the run's keys can be deleted afterwards.
    prefix = f"bench{os.getpid()}"
    os.environ["CHANNELS_PREFIX"] = os.environ["CACHE_PREFIX"] = prefix
    if os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        database = postgres_database(os.environ["DATABASE_URL"])
        os.environ["DATABASE_URL"] = cleanup.enter_context(database)
    else:
        os.environ["DATABASE_URL"] = f"sqlite:///{var_dir / 'bench.sqlite3'}"
    os.environ["REDIS_URL"] = cleanup.enter_context(
        redis_for_run(os.environ.get("REDIS_URL"), prefix, var_dir)
    )
    return var_dir


def trading_client():
    """Django set up on the run's database: migrated, a running paper session, one collection
    of bars, and an API client holding a new trade key (HTTPS, as behind the TLS proxy)."""
    import django

    django.setup()
    from django.core.management import call_command
    from rest_framework.test import APIClient

    call_command("migrate", verbosity=0)
    from marketdata.services import bars_collect
    from trading.models import ApiKey, ApiScope
    from trading.services import session_ensure_running

    session_ensure_running()
    bars_collect()
    _, raw_key = ApiKey.objects.create_key(name="bench", scope=ApiScope.TRADE)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}", HTTP_X_FORWARDED_PROTO="https")
    return client
