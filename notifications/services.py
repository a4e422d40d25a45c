"""Notifications: configuration, dispatch, delivery attempts, test sends and the daily summary.

Path of an event: a producer calls `streaming.publish`; after commit `hooks` reads the notices
out of the committed events and pushes them onto the inbox (`notifications.inbox`: one Redis
write in the trading path, nothing else). The `notify` worker drains it and creates one
Delivery per matching channel, unique on (event id, channel), and enqueues one
`notifications.deliver` per delivery, so each channel is tried on its own: a dead or slow
endpoint holds at most NOTIFICATIONS_CHANNEL_CONCURRENCY worker threads and delays no other
channel. Each attempt claims its delivery with a lease (one sender at a time), waits for the
channel's rate limit, sends once with a timeout, and records the outcome; a failure is retried
with exponential backoff and jitter (or the receiver's Retry-After) up to
NOTIFICATIONS_MAX_ATTEMPTS. A beat job re-enqueues deliveries whose retry is overdue (a worker
that died holding one, a lost message).

An attempt's bookkeeping (its claim and its outcome) commits without waiting for the disk
(`core.sql.unflushed_write`: one statement each on the senders' connections), so a burst of
deliveries never queues order commits behind its fsyncs; a database crash can lose at most the
last moments of it, which means one more attempt of a message, and receivers dedupe that by its
idempotency key. Creating the deliveries is an
ordinary commit: the inbox is trimmed only after it, and an event must not be lost.
"""

from __future__ import annotations

import logging
import random
import secrets
from datetime import datetime, time, timedelta
from decimal import Decimal
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db.models import F, Q
from django.utils import timezone

from core.sql import unflushed_write
from notifications import chart
from notifications import events as ev
from notifications.channels import BACKENDS, get_backend
from notifications.channels.base import ChannelError, Outgoing
from notifications.events import Notice
from notifications.models import (
    SEVERITY_RANK,
    Channel,
    ChannelKind,
    Delivery,
    DeliveryStatus,
)

logger = logging.getLogger(__name__)


# --- configuration --------------------------------------------------------------------------------


def channel_validate(
    *, kind: str, target: str, secret: str, events=None, timezone_name: str = "UTC"
) -> None:
    """Raise ValidationError naming each bad field (admin shows it beside the field)."""
    if kind not in BACKENDS:
        raise ValidationError({"kind": f"unknown channel kind {kind!r}"})
    problems = get_backend(kind).validate(target=(target or "").strip(), secret=secret or "")
    if events is not None:
        if not isinstance(events, list) or not all(isinstance(e, str) for e in events):
            problems["events"] = "must be a list of event kinds"
        elif unknown := sorted(set(events) - set(ev.KINDS)):
            problems["events"] = f"unknown event kinds: {', '.join(unknown)}"
    try:
        ZoneInfo(timezone_name or "")
    except (ZoneInfoNotFoundError, ValueError):
        problems["timezone"] = f"unknown timezone {timezone_name!r}"
    if problems:
        raise ValidationError(problems)


def _env_channel(name: str, kind: str, target: str, secret: str, variable: str) -> Channel:
    try:
        channel_validate(kind=kind, target=target, secret=secret)
    except ValidationError as exc:
        field, problems = next(iter(exc.message_dict.items()))
        raise ImproperlyConfigured(f"{variable}: {problems[0]} ({field})") from None
    channel, _ = Channel.objects.update_or_create(
        name=name,
        defaults={"kind": kind, "target": target, "secret": secret, "from_env": variable},
    )
    return channel


def channels_sync_from_env() -> list[Channel]:
    """Create or update the channels the environment describes (quick start). Idempotent;
    a bad value raises ImproperlyConfigured naming the variable."""
    synced = []
    if url := settings.NOTIFICATIONS_WEBHOOK_URL:
        if not settings.NOTIFICATIONS_WEBHOOK_SECRET:
            raise ImproperlyConfigured(
                "NOTIFICATIONS_WEBHOOK_SECRET: set a signing secret (16+ characters) for "
                "NOTIFICATIONS_WEBHOOK_URL"
            )
        synced.append(
            _env_channel(
                "env: webhook",
                ChannelKind.WEBHOOK,
                url,
                settings.NOTIFICATIONS_WEBHOOK_SECRET,
                "NOTIFICATIONS_WEBHOOK_URL",
            )
        )
    if settings.TELEGRAM_CHAT_ID and not settings.TELEGRAM_BOT_TOKEN:
        raise ImproperlyConfigured("TELEGRAM_BOT_TOKEN: needed with TELEGRAM_CHAT_ID")
    if settings.TELEGRAM_BOT_TOKEN:
        if not settings.TELEGRAM_CHAT_ID:
            raise ImproperlyConfigured("TELEGRAM_CHAT_ID: needed with TELEGRAM_BOT_TOKEN")
        for chat in settings.TELEGRAM_CHAT_ID:
            synced.append(
                _env_channel(
                    f"env: telegram {chat}",
                    ChannelKind.TELEGRAM,
                    chat,
                    settings.TELEGRAM_BOT_TOKEN,
                    "TELEGRAM_CHAT_ID",
                )
            )
    if settings.NOTIFICATIONS_EMAIL_TO:
        synced.append(
            _env_channel(
                "env: email",
                ChannelKind.EMAIL,
                ",".join(settings.NOTIFICATIONS_EMAIL_TO),
                "",
                "NOTIFICATIONS_EMAIL_TO",
            )
        )
    return synced


# --- enqueue and dispatch -------------------------------------------------------------------------


def notices_enqueue(notices: list[Notice]) -> None:
    """Hand notices to the notification worker (callers run after commit): one Redis write
    (notifications.inbox); a failure is logged and never reaches the trading path."""
    if not notices:
        return
    from notifications import inbox

    try:
        inbox.push(notices)
    except Exception:  # noqa: BLE001 - a Redis outage must not break trading
        logger.warning("could not enqueue notifications %s", [n.id for n in notices], exc_info=True)


def _in_quiet_hours(channel: Channel, now: datetime) -> bool:
    if channel.quiet_start is None or channel.quiet_end is None:
        return False
    try:
        local = now.astimezone(ZoneInfo(channel.timezone)).time()
    except (ZoneInfoNotFoundError, ValueError):  # saved around admin's validation: not quiet
        return False
    start, end = channel.quiet_start, channel.quiet_end
    return start <= local < end if start <= end else (local >= start or local < end)


def _wants(channel: Channel, notice: Notice) -> bool:
    if channel.events and notice.kind not in channel.events:
        return False
    return SEVERITY_RANK.get(notice.severity, 0) >= SEVERITY_RANK.get(channel.min_severity, 0)


def notices_dispatch(notices: list[dict]) -> list[tuple[int, int]]:
    """One Delivery per (notice, matching channel); returns the ones to attempt, as (delivery
    id, channel id). A notice already
    recorded for a channel (published twice, a batch drained again) is not recorded again; a
    delivery not attempted yet is returned again, which is harmless (attempts claim a lease)."""
    channels = list(Channel.objects.filter(enabled=True))
    if not channels or not notices:
        return []
    now = timezone.now()
    rows = []
    for raw in notices:
        try:
            notice = Notice.from_dict(raw)
        except (TypeError, KeyError, AttributeError):
            # One malformed notice must not hold up the batch (it would be drained forever).
            logger.error("dropping a malformed notice: %.200r", raw)
            continue
        for channel in channels:
            if not _wants(channel, notice):
                continue
            quiet = notice.severity != "critical" and _in_quiet_hours(channel, now)
            rows.append(
                Delivery(
                    event_id=notice.id[:200],
                    kind=notice.kind,
                    severity=notice.severity,
                    channel=channel,
                    notice=notice.as_dict(),
                    status=DeliveryStatus.SKIPPED if quiet else DeliveryStatus.PENDING,
                    last_error="quiet hours" if quiet else "",
                    next_attempt_at=now,
                )
            )
    if not rows:
        return []
    # One INSERT for the batch; the unique (event_id, channel) drops the ones recorded before.
    Delivery.objects.bulk_create(rows, ignore_conflicts=True, batch_size=500)
    return list(
        Delivery.objects.filter(
            event_id__in={row.event_id for row in rows},
            status=DeliveryStatus.PENDING,
            attempts=0,
            lease_until__isnull=True,
        )
        .order_by("pk")
        .values_list("pk", "channel_id")
    )


# --- one attempt ----------------------------------------------------------------------------------


@cache
def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)


def _key(name: str) -> str:
    return f"{settings.CHANNEL_LAYERS['default']['CONFIG'].get('prefix', 'trp')}:notify:{name}"


# A channel's slot: at most ARGV[2] senders at once; a holder that died frees its slot when its
# lease (the score) runs out.
_ACQUIRE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1e6
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', t)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], t + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], math.ceil(tonumber(ARGV[3]) * 1000))
return 1
"""
# The channel's rate limit: the earliest time the next message may go. Returns the wait in
# milliseconds, or 0 after reserving the slot.
_RATE = """
local now = redis.call('TIME')
local t = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
if nxt > t then return nxt - t end
redis.call('SET', KEYS[1], t + tonumber(ARGV[1]), 'PX', tonumber(ARGV[1]) + 1000)
return 0
"""


def _backoff(attempts: int, retry_after: float | None) -> float:
    cap = settings.NOTIFICATIONS_RETRY_MAX_SECONDS
    if retry_after is not None:
        return min(cap, max(0.0, retry_after)) + random.uniform(0, 0.25)
    delay = min(cap, settings.NOTIFICATIONS_RETRY_BASE_SECONDS * 2 ** (attempts - 1))
    return delay * random.uniform(0.5, 1.0)  # jitter: receivers recovering see no stampede


def _scrub(text: str, channel: Channel) -> str:
    for secret in (channel.secret, channel.target if channel.kind != "telegram" else ""):
        if secret and len(secret) >= 8:
            text = text.replace(secret, "***")
    return text[:1000]


def outgoing_for(channel: Channel, notice: Notice, key: str) -> Outgoing:
    backend = get_backend(channel.kind)
    image = None
    if backend.supports_image and notice.data.get("equity_curve"):
        image = chart.equity_png([float(v) for v in notice.data["equity_curve"]])
    return Outgoing(notice, channel.target.strip(), channel.secret, key, image)


def _unclaim(delivery_id: int, wait: float) -> float:
    _record(
        delivery_id,
        attempts=F("attempts") - 1,
        lease_until=None,
        next_attempt_at=timezone.now() + timedelta(seconds=wait),
    )
    return wait


def _record(delivery_id: int, **changes) -> int:
    """Update one delivery's bookkeeping (module docstring: not waiting for the disk)."""
    with unflushed_write():
        return Delivery.objects.filter(pk=delivery_id).update(**changes)


def delivery_attempt(*, delivery_id: int) -> float | None:
    """Try one delivery once. Returns None when done (delivered, failed for good, or not ours
    to send), else the seconds after which to try again."""
    now = timezone.now()
    lease = settings.NOTIFICATIONS_TIMEOUT_SECONDS + 30
    with unflushed_write():
        claimed = (
            Delivery.objects.filter(
                pk=delivery_id,
                status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRY],
                next_attempt_at__lte=now + timedelta(milliseconds=50),
            )
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .update(lease_until=now + timedelta(seconds=lease), attempts=F("attempts") + 1)
        )
    if not claimed:
        return None
    delivery = Delivery.objects.select_related("channel").get(pk=delivery_id)
    channel = delivery.channel
    if not channel.enabled:
        _record(
            delivery_id,
            status=DeliveryStatus.FAILED,
            last_error="channel disabled",
            lease_until=None,
        )
        return None
    backend = get_backend(channel.kind)
    token = secrets.token_hex(8)
    slot = _key(f"busy:{channel.pk}")
    if not _redis().eval(
        _ACQUIRE, 1, slot, token, settings.NOTIFICATIONS_CHANNEL_CONCURRENCY, lease
    ):
        return _unclaim(delivery_id, random.uniform(0.05, 0.5))
    try:
        interval = backend.interval_for(channel.target)
        if interval:
            wait_ms = _redis().eval(_RATE, 1, _key(f"rate:{channel.pk}"), int(interval * 1000))
            if wait_ms:
                return _unclaim(delivery_id, wait_ms / 1000 + random.uniform(0, 0.05))
        notice = Notice.from_dict(delivery.notice)
        try:
            backend.send(outgoing_for(channel, notice, delivery.idempotency_key))
        except ChannelError as exc:
            return _record_failure(delivery, channel, exc)
        except Exception as exc:  # noqa: BLE001 - a bug in one channel must not stall deliveries
            logger.exception("channel %r failed unexpectedly", channel)
            return _record_failure(delivery, channel, ChannelError(type(exc).__name__))
        _record(
            delivery_id,
            status=DeliveryStatus.DELIVERED,
            delivered_at=timezone.now(),
            last_error="",
            lease_until=None,
        )
        return None
    finally:
        _redis().zrem(slot, token)


def _record_failure(delivery: Delivery, channel: Channel, exc: ChannelError) -> float | None:
    error = _scrub(exc.message, channel)
    final = exc.permanent or delivery.attempts >= settings.NOTIFICATIONS_MAX_ATTEMPTS
    delay = None if final else _backoff(delivery.attempts, exc.retry_after)
    _record(
        delivery.pk,
        status=DeliveryStatus.FAILED if final else DeliveryStatus.RETRY,
        last_error=error,
        lease_until=None,
        next_attempt_at=timezone.now() + timedelta(seconds=delay or 0),
    )
    logger.warning(
        "notification %s to %r: attempt %d failed (%s)%s",
        delivery.event_id,
        channel,
        delivery.attempts,
        error,
        "; giving up" if final else f"; retry in {delay:.1f}s",
    )
    return delay


def deliveries_overdue(*, grace_seconds: float = 30) -> list[int]:
    """Deliveries whose retry time passed long ago with no one holding them (lost messages,
    a worker that died mid-send)."""
    now = timezone.now()
    return list(
        Delivery.objects.filter(
            status__in=[DeliveryStatus.PENDING, DeliveryStatus.RETRY],
            next_attempt_at__lt=now - timedelta(seconds=grace_seconds),
        )
        .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
        .values_list("pk", flat=True)[:1000]
    )


def channel_send_test(*, channel: Channel) -> None:
    """Send a test message now, synchronously (admin "Send test"); raises ChannelError."""
    notice = Notice(
        f"test:{secrets.token_hex(8)}",
        ev.TEST,
        "info",
        "Test notification",
        f"Channel {channel.name!r} works.",
    )
    try:
        get_backend(channel.kind).send(outgoing_for(channel, notice, f"{notice.id}#{channel.pk}"))
    except ChannelError as exc:
        raise ChannelError(_scrub(exc.message, channel), permanent=exc.permanent) from None


# --- daily summary --------------------------------------------------------------------------------

NEW_YORK = ZoneInfo("America/New_York")


def daily_summary_build(*, day=None) -> Notice | None:
    """The summary of one NYSE trading date (default: today's, market clock) for the current or
    latest session: equity, P&L since the previous close, trades, the day's max drawdown and the
    equity curve (drawn as a PNG by channels that take images)."""
    from marketdata.selectors import market_now
    from trading import selectors as trading_selectors
    from trading.models import EquitySnapshot, Trade

    session = trading_selectors.session_current() or trading_selectors.session_latest()
    if session is None:
        return None
    # Fills carry wall-clock times (also under the simulated clock), snapshots market time: today's
    # trades are those of today's wall-clock date, as the dashboard counts them
    # (tradingrobot.api.selectors.overview_get); the two dates differ only under the simulated
    # clock outside New York's trading hours.
    trades_day = day or timezone.now().astimezone(NEW_YORK).date()
    day = day or market_now().astimezone(NEW_YORK).date()
    start = datetime.combine(day, time(0), NEW_YORK)
    end = start + timedelta(days=1)
    snapshots = list(
        EquitySnapshot.objects.filter(
            session=session, timestamp__gte=start, timestamp__lt=end
        ).values_list("equity", flat=True)
    )
    before = (
        EquitySnapshot.objects.filter(session=session, timestamp__lt=start)
        .order_by("-timestamp")
        .values_list("equity", flat=True)
        .first()
    )
    previous = before if before is not None else session.starting_equity
    equity = snapshots[-1] if snapshots else trading_selectors.portfolio_get(session)["equity"]
    pnl = equity - previous
    peak, drawdown = previous, Decimal(0)
    for value in [previous, *snapshots]:
        peak = max(peak, value)
        if peak > 0:
            drawdown = max(drawdown, (peak - value) / peak)
    trades_start = datetime.combine(trades_day, time(0), NEW_YORK)
    trades = Trade.objects.filter(
        session=session,
        executed_at__gte=trades_start,
        executed_at__lt=trades_start + timedelta(days=1),
    )
    count = trades.count()
    curve = [float(v) for v in [previous, *snapshots]]
    if len(curve) > 400:  # a chart 640 pixels wide needs no more
        step = len(curve) / 400
        curve = [curve[int(i * step)] for i in range(400)] + [curve[-1]]
    pct = (pnl / previous * 100) if previous else Decimal(0)
    return Notice(
        f"{ev.DAILY_SUMMARY}:{session.pk}:{day.isoformat()}",
        ev.DAILY_SUMMARY,
        "info",
        f"Daily summary {day.isoformat()}: P&L {pnl:+.2f} ({pct:+.2f}%)",
        f"Equity {equity:.2f}, P&L {pnl:+.2f} ({pct:+.2f}%), {count} trades, "
        f"max drawdown {drawdown * 100:.2f}%.",
        {
            "session_id": session.pk,
            "date": day.isoformat(),
            "equity": str(equity),
            "pnl": str(pnl),
            "trades": count,
            "max_drawdown": float(drawdown),
            "equity_curve": curve,
        },
    )


def daily_summary_send(*, day=None) -> Notice | None:
    notice = daily_summary_build(day=day)
    if notice is not None:
        notices_enqueue([notice])
    return notice
