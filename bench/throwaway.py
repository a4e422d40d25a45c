"""What every benchmark runs on and leaves nothing of: a fresh PostgreSQL database, and Redis
(REDIS_URL's with the run's keys deleted afterwards, else an embedded one for the run)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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
