"""The hand-off from the trading path to the notification worker: a Redis list.

After commit, the publishing process LPUSHes its notices onto `<prefix>:notify:inbox`: one
Redis round trip (about 0.25 ms) where a Celery `apply_async` costs about 1.6 ms of CPU,
measured on this machine, and order submission is a 5-10 ms path. The list is durable in
Redis like a Celery queue. In the `notify` worker one thread per process drains it, and only
the holder of a Redis lease does, so the cluster drains it once: every DRAIN_SECONDS it reads
the oldest notices, creates their deliveries (idempotent: unique on event id and channel) and
trims them from the list, by the lease holder; then the process's own sender threads make each
delivery's first attempt. A drainer that dies mid-batch leaves the batch in the list for the
next holder, which re-dispatches it harmlessly; a delivery whose process died before trying it
is found overdue by the beat sweep.

Why senders of its own, not a Celery task per delivery: the task's round trip through the broker
(publish, consume, the worker's bookkeeping) cost more CPU than the attempt itself, and the
notification worker shares the machine with order submission (bench/notify.py,
`submit_p99_ratio`). Retries, rarer, are Celery tasks with a countdown (notifications.tasks).
The senders keep each channel to NOTIFICATIONS_CHANNEL_CONCURRENCY attempts at once (`Senders`),
so a slow channel holds at most that many of the SENDER_THREADS; across processes the channel's
Redis slots (notifications.services) still hold.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections import Counter, defaultdict, deque
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections

from core.sql import unflushed_session
from notifications.events import Notice
from notifications.services import _key, _redis

logger = logging.getLogger(__name__)

BATCH = 500
# Between drains: a batch of what arrived meanwhile costs one insert, where a drain per notice
# cost one each; a notice waits at most this long before its first attempt.
DRAIN_SECONDS = 0.05
LEASE_SECONDS = 30
SENDER_THREADS = 16

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
"""
# Remove the batch just handled (the oldest `n`, at the list's right end; new notices arrive on
# the left), only while still holding the lease.
_TRIM = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('LTRIM', KEYS[1], 0, -tonumber(ARGV[2]) - 1)
return 1
"""


def inbox_key() -> str:
    return _key("inbox")


def push(notices: list[Notice]) -> None:
    # The stream's client (1-s timeouts): with Redis down, an order waits no longer here than
    # its events already do.
    from streaming.redis import client

    client().lpush(inbox_key(), *[json.dumps(n.as_dict(), default=str) for n in notices])


class Senders:
    """This process's sender threads. Each channel has at most NOTIFICATIONS_CHANNEL_CONCURRENCY
    attempts running here; its other deliveries wait in its own queue, holding no thread, so a
    slow channel never takes the threads of the others (and a burst to one channel does not
    bounce off its busy slots)."""

    def __init__(self, threads: int = SENDER_THREADS) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="notify-send")
        self._lock = threading.Lock()
        self._waiting: dict[int, deque[int]] = defaultdict(deque)
        self._running: Counter[int] = Counter()
        self._stopping = False

    def submit(self, deliveries: list[tuple[int, int]]) -> None:
        """Attempt each (delivery id, channel id) once, in order per channel."""
        limit = max(1, settings.NOTIFICATIONS_CHANNEL_CONCURRENCY)
        with self._lock:
            for delivery_id, channel_id in deliveries:
                if self._running[channel_id] < limit:
                    self._running[channel_id] += 1
                    self._pool.submit(self._run, channel_id, delivery_id)
                else:
                    self._waiting[channel_id].append(delivery_id)

    def _run(self, channel_id: int, delivery_id: int) -> None:
        while True:
            _send(delivery_id)
            with self._lock:
                queue = self._waiting.get(channel_id)
                if not queue or self._stopping:
                    self._waiting.pop(channel_id, None)
                    self._running[channel_id] -= 1
                    if not self._running[channel_id]:
                        del self._running[channel_id]
                    return
                delivery_id = queue.popleft()

    def stop(self) -> None:
        """Shutting down: finish the attempts under way, start no more. What was waiting stays
        pending in the database, where the beat sweep finds it."""
        with self._lock:
            self._stopping = True
            self._waiting.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)


def _send(delivery_id: int) -> None:
    from notifications.tasks import attempt

    close_old_connections()  # as Celery's threads do around a task (tradingrobot.celery)
    try:
        unflushed_session()  # these threads write nothing but delivery bookkeeping
        attempt(delivery_id)
    except Exception:  # noqa: BLE001 - a sender thread must go on to the next delivery
        logger.exception("delivery %s: could not be attempted; the sweep will find it", delivery_id)
    finally:
        close_old_connections()


_senders: Senders | None = None
_senders_lock = threading.Lock()


def send_soon(deliveries: list[tuple[int, int]]) -> None:
    """Hand (delivery id, channel id) pairs to this process's senders for a first attempt."""
    global _senders
    with _senders_lock:
        if _senders is None:
            _senders = Senders()
    _senders.submit(deliveries)


def drain_once(token: str) -> int:
    """Dispatch the oldest notices (up to BATCH); returns how many."""
    from notifications.services import notices_dispatch

    client = _redis()
    raw = client.lrange(inbox_key(), -BATCH, -1)
    if not raw:
        return 0
    notices = []
    for item in reversed(raw):  # oldest first
        try:
            notices.append(json.loads(item))
        except ValueError:
            logger.error("dropping a malformed notice from the inbox")
    deliveries = notices_dispatch(notices)
    client.eval(_TRIM, 2, inbox_key(), _key("inbox_lease"), token, len(raw))
    send_soon(deliveries)
    return len(raw)


def drain_forever(stop: threading.Event) -> None:
    token = secrets.token_hex(8)
    lease_ms = LEASE_SECONDS * 1000
    while not stop.is_set():
        try:
            if not _redis().eval(_RENEW, 1, _key("inbox_lease"), token, lease_ms):
                stop.wait(1)  # another process drains
                continue
            close_old_connections()
            if drain_once(token) < BATCH:
                stop.wait(DRAIN_SECONDS)
        except Exception:  # noqa: BLE001 - keep draining after Redis or database hiccups
            logger.exception("notification inbox: draining failed; retrying")
            stop.wait(1)
    try:
        _redis().eval(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end"
            " return 0",
            1,
            _key("inbox_lease"),
            token,
        )
    except Exception:  # noqa: BLE001
        pass


_thread: threading.Thread | None = None
_stop = threading.Event()


def start_drainer() -> None:
    """Start this process's drain thread (once)."""
    global _thread
    if _thread is None or not _thread.is_alive():
        _stop.clear()
        _thread = threading.Thread(
            target=drain_forever, args=(_stop,), name="notify-inbox", daemon=True
        )
        _thread.start()


def stop_drainer(timeout: float = 5) -> None:
    global _senders
    _stop.set()
    if _thread is not None:
        _thread.join(timeout)
    with _senders_lock:
        if _senders is not None:
            _senders.stop()
            _senders = None


def wait_empty(timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _redis().llen(inbox_key()):
            return True
        time.sleep(0.05)
    return False
