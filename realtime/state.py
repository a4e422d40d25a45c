"""Each stream's state, kept in Redis by the `stream` process that holds it and read by status,
health and the polling fallback (any process).

One hash per stream (`<prefix>:realtime:stream:<name>`): `state` (`live` | `reconnecting`),
`since`, `last_message_at`, `reconnects` and `heartbeat_at`, which the holder refreshes with
every lease renewal. A stream whose heartbeat is older than two leases has no live holder: it is
reported `standby` when a standby `stream` process is waiting to take over, else `down`.
While a stream is not `live`, the REST fallback (polling) is what keeps the data current.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from functools import cache

import redis
from django.conf import settings

from core.times import iso_utc

logger = logging.getLogger(__name__)

LIVE = "live"
RECONNECTING = "reconnecting"
STANDBY = "standby"
DOWN = "down"
STATES = (LIVE, RECONNECTING, STANDBY, DOWN)
FORGET_AFTER_SECONDS = 24 * 3600


def _prefix() -> str:
    return f"{settings.CHANNEL_LAYERS['default']['CONFIG'].get('prefix', 'trp')}:realtime"


def names_key() -> str:
    return f"{_prefix()}:streams"


def stream_key(name: str) -> str:
    return f"{_prefix()}:stream:{name}"


def standby_key() -> str:
    return f"{_prefix()}:standby"


@cache
def _client_for(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)


def client() -> redis.Redis:
    return _client_for(settings.REDIS_URL)


def _iso(epoch: float | None) -> str | None:
    return iso_utc(datetime.fromtimestamp(epoch, UTC)) if epoch else None


def stream_state_write(
    name: str,
    *,
    state: str | None = None,
    last_message_at: float | None = None,
    reconnects: int | None = None,
) -> None:
    """Record what the holder knows about one stream (and that it is alive: the heartbeat)."""
    now = time.time()
    fields: dict[str, float | int | str] = {"heartbeat_at": now}
    if state is not None:
        fields.update(state=state, since=now)
    if last_message_at is not None:
        fields["last_message_at"] = last_message_at
    if reconnects is not None:
        fields["reconnects"] = reconnects
    pipe = client().pipeline(transaction=False)
    pipe.sadd(names_key(), name)
    pipe.hset(stream_key(name), mapping=fields)
    # A stream nobody has held for a day (the broker or provider changed) drops out of status.
    pipe.expire(stream_key(name), FORGET_AFTER_SECONDS)
    pipe.execute()


def standby_announce(seconds: float) -> None:
    """A standby `stream` process is waiting (for `seconds`, renewed while it waits)."""
    client().set(standby_key(), "1", px=max(1, int(seconds * 1000)))


def _num(raw: dict, field: str) -> float | None:
    value = raw.get(field.encode())
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def streams_get() -> dict[str, dict]:
    """Every stream's state, for status, health and the `status` event; {} if Redis is down."""
    try:
        rds = client()
        names = sorted(n.decode() for n in rds.smembers(names_key()))
        raws = [rds.hgetall(stream_key(name)) for name in names]
        standby = bool(rds.exists(standby_key()))
    except redis.RedisError as exc:
        logger.info("stream states unavailable: %s", exc)
        return {}
    now = time.time()
    result = {}
    for name, raw in zip(names, raws, strict=True):
        if not raw:
            continue  # forgotten (see FORGET_AFTER_SECONDS)
        heartbeat = _num(raw, "heartbeat_at") or 0.0
        state = (raw.get(b"state") or b"").decode() or DOWN
        since = _num(raw, "since")
        if now - heartbeat > 2 * settings.STREAM_LEASE_SECONDS + 1:
            # The holder is gone (killed, or stopped): it cannot say so itself.
            state, since = (STANDBY if standby else DOWN), heartbeat or None
        last = _num(raw, "last_message_at")
        result[name] = {
            "state": state,
            "since": _iso(since),
            "last_message_at": _iso(last),
            "last_message_age_seconds": round(now - last, 3) if last else None,
            "reconnects": int(_num(raw, "reconnects") or 0),
            # Not live: the REST fallback (order polling, bar collection) carries on alone.
            "polling": state != LIVE,
        }
    return result


def stream_is_live(name: str) -> bool:
    return streams_get().get(name, {}).get("state") == LIVE
