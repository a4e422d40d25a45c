"""Cached answers of the API's hottest reads (GET status, stock-data, trades), per process.

A cached read costs what every authenticated request costs (key lookup, scope, rate limit) plus
one Redis round trip: the answer's bytes are kept in this process's memory under a key made of

- the request's full URL (path, query string and host: filters, pagination and ordering give
  other answers, and pagination links carry the host),
- the version stamps of the data the answer shows, read from Redis on every request, so a change
  made in any process (web, worker, admin) is seen by every process at its next request,
- a time bucket, so nothing is served longer than the view's `seconds`: that bounds whatever no
  stamp covers (the clock in /status, ages in /stock-data) and an invalidation lost to a Redis
  outage.

Stamps are random, never counters: after a Redis restart or flush a stamp cannot come back to a
value some process still holds an answer for. When Redis cannot be read, nothing is cached and
every request is computed from the database. Only 200 answers are kept; auth, scope and rate
limiting run before the cache is consulted, on every request.

Writers replace a stamp when the row is saved (Django signals, `tradingrobot.api.apps`), so the
writing transaction reads its own change, and again after commit, since a concurrent read may
have cached the not yet committed state under the first new stamp. Code that changes these rows
with `QuerySet.update()` or `bulk_create()` sends no signal and must call `bump_on_commit()`.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import NamedTuple

from django.core.cache import cache
from django.db import transaction
from django.http import HttpResponse
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from tradingrobot import redis_outage

logger = logging.getLogger(__name__)

# Stamp names: what a cached answer depends on.
STATUS = "status"  # the kill switch, sessions, orders (GET status)
TRADES = "trades"  # fills and the strategy names they show (GET trades)

_STAMP_KEY = "api:stamp:{}"
# A process keeps at most this many answers and bytes (least recently used go first); bigger
# answers are not kept at all. Distinct URLs (pagination, filters) are what fills it.
MAX_ENTRIES = 512
MAX_BYTES = 32 * 1024 * 1024
MAX_BODY_BYTES = 1024 * 1024


def _new_stamp() -> str:
    return secrets.token_hex(8)


def bump(*names: str) -> None:
    """Invalidate every cached answer that depends on these stamps, in every process."""
    stamp = _new_stamp()
    try:
        cache.set_many({_STAMP_KEY.format(name): stamp for name in names}, timeout=None)
    except Exception as exc:  # noqa: BLE001 - answers then live out their time bucket at most
        redis_outage.failure("API cache invalidation", exc)
    else:
        redis_outage.recovered()


def bump_on_commit(*names: str) -> None:
    """Invalidate now and again once the surrounding transaction commits (see module doc).

    Outside a transaction the write is already committed: one bump. Inside one, the names wait
    on the connection and the first after-commit callback bumps them all in one write (an order
    fill saves several rows; each save registers a callback, so one survives a savepoint
    rolled back under it, and the later ones find nothing left to do).
    """
    bump(*names)
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        return
    pending = connection.__dict__.setdefault("api_cache_pending", set())
    pending.update(names)
    transaction.on_commit(lambda: _bump_pending(connection))


def _bump_pending(connection) -> None:
    pending = connection.__dict__.get("api_cache_pending")
    if pending:
        names = sorted(pending)
        pending.clear()
        bump(*names)


def stamp_key(name: str) -> str:
    """The cache key of one of our stamps (marketdata.cache keeps the bars' stamps)."""
    return _STAMP_KEY.format(name)


def stamps(keys: list[str], read_ahead: dict[str, object] | None = None) -> tuple[str, ...] | None:
    """The stamps under `keys` (created when missing), or None when Redis cannot be read.
    Also the market-data cache's per-symbol versions (marketdata.cache.versions).

    `read_ahead`: values already fetched in this request (by the rate limit's round trip).
    """
    found = {key: read_ahead[key] for key in keys if key in read_ahead} if read_ahead else {}
    missing = [key for key in keys if key not in found]
    if missing:
        try:
            found.update(cache.get_many(missing))
            absent = [key for key in missing if key not in found]
            if absent:
                for key in absent:
                    cache.add(key, _new_stamp(), timeout=None)  # keeps one set meanwhile
                found.update(cache.get_many(absent))
        except Exception as exc:  # noqa: BLE001 - no stamps: computed per request, never a 500
            redis_outage.failure("API cache stamps", exc)
            return None
    if len(found) != len(keys):
        return None
    return tuple(str(found[key]) for key in keys)


class _Answer(NamedTuple):
    body: bytes
    content_type: str


class _Store:
    """A thread-safe LRU of answers (daphne runs sync views in many threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: OrderedDict[tuple, _Answer] = OrderedDict()
        self._bytes = 0

    def get(self, key: tuple) -> _Answer | None:
        with self._lock:
            answer = self._answers.get(key)
            if answer is not None:
                self._answers.move_to_end(key)
            return answer

    def put(self, key: tuple, answer: _Answer) -> None:
        if len(answer.body) > MAX_BODY_BYTES:
            return
        with self._lock:
            old = self._answers.pop(key, None)
            if old is not None:
                self._bytes -= len(old.body)
            self._answers[key] = answer
            self._bytes += len(answer.body)
            while len(self._answers) > MAX_ENTRIES or self._bytes > MAX_BYTES:
                _key, dropped = self._answers.popitem(last=False)
                self._bytes -= len(dropped.body)

    def clear(self) -> None:
        with self._lock:
            self._answers.clear()
            self._bytes = 0


_store = _Store()


def clear_process_cache() -> None:
    """Forget this process's answers (tests; never needed for correctness)."""
    _store.clear()


def serve(
    view: APIView,
    request: Request,
    *,
    seconds: float,
    build: Callable[[], HttpResponse],
) -> HttpResponse:
    """A GET answer of `view`: this process's copy for (URL, stamps under `view.stamp_keys()`,
    time bucket of `seconds`), else `build()`'s, kept if it is a 200. `seconds` <= 0: no cache.
    """
    if seconds <= 0:
        return build()
    current = stamps(view.stamp_keys(), getattr(request, "read_ahead", None))
    if current is None:
        return build()
    # Scheme and host too: pagination links are absolute. (What build_absolute_uri reads,
    # without its re-parsing and quoting on every request.)
    url = (request.scheme, request.get_host(), request.get_full_path())
    key = (url, current, int(time.time() // seconds))
    answer = _store.get(key)
    if answer is not None:
        return HttpResponse(answer.body, content_type=answer.content_type)
    response = build()
    if isinstance(response, Response) and not response.is_rendered:
        # What DRF's finalize_response does, done here so that the bytes can be kept.
        response.accepted_renderer = request.accepted_renderer
        response.accepted_media_type = request.accepted_media_type
        response.renderer_context = view.get_renderer_context()
        response.render()
    if response.status_code == 200 and not response.streaming:
        _store.put(key, _Answer(response.content, response["Content-Type"]))
    return response
