"""The `stream` process: holds the configured stream sources' connections (`manage.py stream`).

- **One holder per broker account across the cluster**: a Redis lease (`core.lease.Lease`, SET
  NX PX, renewed by compare-and-PEXPIRE every third of STREAM_LEASE_SECONDS). A process that
  does not hold it waits as standby and takes over when the lease expires (within about one
  lease of the holder's death). A holder that fails to renew stops every source at once, before
  the lease can expire for anyone else, so two connections to one account never overlap.
- **Reconnection is ours**: each source runs as a task; when `run()` returns or raises, the next
  attempt waits an exponential backoff with full jitter (uniform in [0, min(MAX, MIN * 2**n)],
  STREAM_BACKOFF_MIN/MAX_SECONDS), reset once the source calls `link.ready()`. A broker that
  allows one connection per account answers a storm of retries with 429s (alpaca-py issue 740).
- **Dead sockets count as dead**: no message for `source.silence_limit()` seconds, or not live
  within STREAM_CONNECT_TIMEOUT_SECONDS, closes the connection and reconnects.
- **SIGTERM/SIGINT** close every source, write their state and release the lease.

Each stream's state goes to Redis (`realtime.state`) and, on every change, out as a `status`
event `{"streams": {...}}`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import signal
import threading
import time
from collections.abc import Callable

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

from core.lease import Lease
from realtime import state as states
from realtime.sources.base import StreamSource

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT_SECONDS = 5.0


class Backoff:
    """Exponential backoff with full jitter: attempt n waits uniform [0, min(cap, base * 2**n))."""

    def __init__(
        self, minimum: float, maximum: float, rng: Callable[[], float] | None = None
    ) -> None:
        self.minimum, self.maximum = minimum, maximum
        self.rng = rng or (lambda: random.random())  # looked up per call (tests pin it)
        self.attempt = 0

    def ceiling(self) -> float:
        return min(self.maximum, self.minimum * 2 ** min(self.attempt, 32))

    def next(self) -> float:
        delay = self.rng() * self.ceiling()
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0


class Supervisor:
    """One source: its connection attempts, watchdog, backoff and state. It is the source's
    `StreamLink`."""

    def __init__(self, source: StreamSource, on_change: Callable[[], None]) -> None:
        self.source = source
        self.name = source.name
        self.backoff = Backoff(
            settings.STREAM_BACKOFF_MIN_SECONDS, settings.STREAM_BACKOFF_MAX_SECONDS
        )
        self.state = states.RECONNECTING
        self.reconnects = 0
        self.live = False
        self.last_message_at: float | None = None  # wall clock, for status
        self.written_state = ""  # the state last written to Redis
        self._last_activity = time.monotonic()  # for the watchdog
        self._attempt_started = time.monotonic()
        self._on_change = on_change

    # -- StreamLink ---------------------------------------------------------------------------

    def ready(self) -> None:
        self.live = True
        self._last_activity = time.monotonic()
        self.backoff.reset()
        self._set_state(states.LIVE)
        logger.info("stream %s: live", self.name)

    def received(self) -> None:
        self._last_activity = time.monotonic()
        self.last_message_at = time.time()

    # -- the loop -----------------------------------------------------------------------------

    def _set_state(self, value: str) -> None:
        if value != self.state:
            self.state = value
            self._on_change()

    async def run_forever(self) -> None:
        first = True
        while True:
            if not first:
                self.reconnects += 1
            first = False
            self.live = False
            self._attempt_started = self._last_activity = time.monotonic()
            self._set_state(states.RECONNECTING)
            await self._one_connection()
            self._set_state(states.RECONNECTING)
            delay = self.backoff.next()
            logger.info("stream %s: reconnecting in %.2fs", self.name, delay)
            await asyncio.sleep(delay)

    def _dead_reason(self) -> str:
        now = time.monotonic()
        if not self.live:
            if now - self._attempt_started > settings.STREAM_CONNECT_TIMEOUT_SECONDS:
                return f"not live within {settings.STREAM_CONNECT_TIMEOUT_SECONDS}s"
            return ""
        try:
            limit = self.source.silence_limit()
        except Exception:  # noqa: BLE001 - a source's bug must not stop the watchdog
            logger.exception("stream %s: silence_limit failed", self.name)
            limit = None
        if limit and now - self._last_activity > limit:
            return f"no message for {limit}s"
        return ""

    async def _one_connection(self) -> None:
        task = asyncio.create_task(self.source.run(self), name=f"stream-{self.name}")
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=0.25)
                reason = "" if task.done() else self._dead_reason()
                if reason:
                    logger.warning("stream %s: %s; closing it", self.name, reason)
                    break
        finally:
            if not task.done():
                await self._close(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            logger.warning("stream %s ended: %s: %s", self.name, type(exc).__name__, exc)
        else:
            logger.info("stream %s: connection ended", self.name)

    async def _close(self, task: asyncio.Task) -> None:
        """Close the connection and wait for `run` to return; cancel it if it does not."""
        try:
            await asyncio.wait_for(self.source.close(), CLOSE_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001 - closing is best effort; cancel follows
            logger.warning("stream %s: close failed: %s", self.name, exc)
        await asyncio.wait({task}, timeout=CLOSE_TIMEOUT_SECONDS)
        if not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=CLOSE_TIMEOUT_SECONDS)
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: a closed connection's error is the expected end


def lease_key(sources: list[StreamSource]) -> str:
    """One lease per broker account (and market-data account): what the sources connect as."""
    accounts = sorted({source.account() for source in sources})
    digest = hashlib.sha256("\n".join([settings.BROKER, *accounts]).encode()).hexdigest()[:16]
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"].get("prefix", "trp")
    return f"{prefix}:realtime:lease:{digest}"


class Runner:
    def __init__(self, make_sources: Callable[[], list[StreamSource]]) -> None:
        self._make_sources = make_sources
        self._stop = asyncio.Event()
        self._changed = asyncio.Event()
        self.supervisors: list[Supervisor] = []

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(signum, self.stop)
            except (NotImplementedError, RuntimeError):  # not the main thread (tests)
                pass
        sources = self._make_sources()
        if not sources:
            logger.info("stream: no stream source configured (broker and provider); idle")
            await self._stop.wait()
            return
        ttl = settings.STREAM_LEASE_SECONDS
        lease = Lease(lease_key(sources), seconds=ttl)
        try:
            while not self._stop.is_set():
                if await self._try(lease.acquire):
                    logger.info("stream: holding the lease %s; connecting", lease.key)
                    await self._lead(lease, sources)
                    sources = self._make_sources()  # fresh clients for the next term
                    continue
                await self._try(lambda: states.standby_announce(ttl * 2))
                await self._sleep(ttl / 3)
        finally:
            await self._try(lease.release)
            # The sources' ORM work ran in one thread: close its connection before exiting.
            await sync_to_async(connections.close_all, thread_sensitive=True)()
            logger.info("stream: stopped")

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stop.wait(), seconds)
        except TimeoutError:
            pass

    @staticmethod
    async def _try(fn: Callable[[], object]) -> bool:
        """Run one Redis call in a thread: its result, or False when Redis fails."""
        try:
            return bool(await asyncio.to_thread(fn))
        except Exception as exc:  # noqa: BLE001 - Redis down: standby (or lost) until it is back
            logger.warning("stream: redis call failed: %s", exc)
            return False

    async def _lead(self, lease: Lease, sources: list[StreamSource]) -> None:
        self.supervisors = [Supervisor(source, self._changed.set) for source in sources]
        tasks = [asyncio.create_task(s.run_forever()) for s in self.supervisors]
        writer = asyncio.create_task(self._write_states())
        try:
            await self._hold(lease)
        finally:
            # Lost or stopping: every connection closes now, before anyone else may connect.
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
            for supervisor in self.supervisors:
                supervisor.state = states.DOWN
            await self._try(self._write_all)
            await self._try(self._publish)

    async def _hold(self, lease: Lease) -> None:
        """Renew the lease until stopped; return at once when a renewal fails or when none has
        succeeded for 2/3 of the lease (Redis slow or away), so every connection is closed
        before the lease can expire for a standby."""
        ttl = settings.STREAM_LEASE_SECONDS
        renewed = time.monotonic()  # acquired just before this (taken before the call: safe)
        while not self._stop.is_set():
            await self._sleep(ttl / 3)
            if self._stop.is_set():
                return
            sent = time.monotonic()
            budget = renewed + ttl * 2 / 3 - sent
            try:
                ok = budget > 0 and await asyncio.wait_for(self._try(lease.renew), budget)
            except TimeoutError:
                ok = False
            if not ok:
                logger.error("stream: lost the lease %s; closing every stream", lease.key)
                return
            renewed = sent

    async def _write_states(self) -> None:
        """The heartbeat and each state change to Redis; a `status` event per change."""
        published: dict[str, str] = {}
        while True:
            try:
                await asyncio.wait_for(self._changed.wait(), settings.STREAM_LEASE_SECONDS / 3)
            except TimeoutError:
                pass
            self._changed.clear()
            await self._try(self._write_all)
            current = {s.name: s.state for s in self.supervisors}
            if current != published and await self._try(self._publish):
                published = current

    def _write_all(self) -> bool:
        for s in self.supervisors:
            state = s.state
            states.stream_state_write(
                s.name,
                state=state if state != s.written_state else None,
                last_message_at=s.last_message_at,
                reconnects=s.reconnects,
            )
            s.written_state = state
        return True

    def _publish(self) -> bool:
        from streaming import events
        from streaming.publish import send_now

        return send_now(events.STATUS, {"streams": states.streams_get()}) is not None


def stream_forever() -> None:
    """`manage.py stream`: run the configured sources until SIGTERM/SIGINT."""
    from realtime.sources import sources_configured

    asyncio.run(Runner(sources_configured).run())


class StreamThread:
    """The runner on a thread of another process, with an event loop of its own: `make run`'s one
    worker holds the streams (STREAM_IN_WORKER, tradingrobot/celery.py) instead of a `stream`
    process, which would cost ~150 MB for a few sockets (issue 20's 400 MB budget). The lease
    works the same, so a `stream` process started beside it waits as standby."""

    def __init__(self) -> None:
        from realtime.sources import sources_configured

        self.loop = asyncio.new_event_loop()
        self.runner = Runner(sources_configured)
        self.thread = threading.Thread(target=self._main, name="stream", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.runner.run())
        except Exception:  # noqa: BLE001 - the worker goes on; its log says why the streams stopped
            logger.exception("stream: the runner stopped")
        finally:
            self.loop.close()

    def start(self) -> None:
        self.thread.start()

    def stop(self, timeout: float = 10) -> None:
        """Close every connection and release the lease (from any thread)."""
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.runner.stop)
            self.thread.join(timeout)
