"""The NYSE calendar (exchange-calendars: hours, holidays, early closes) and the market clock.

Bars are 5 minutes long and start on the session grid: 9:30, 9:35, ... the last one starting
5 minutes before the close (15:55 ET, or 12:55 ET on an early-close day).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache

import exchange_calendars as xcals
import numpy as np
import pandas as pd

BAR = timedelta(minutes=5)
BAR_NS = np.int64(5 * 60 * 1_000_000_000)
CALENDAR_START = "2016-01-01"


@cache
def nyse() -> xcals.ExchangeCalendar:
    end = (pd.Timestamp.now(tz="UTC") + pd.DateOffset(years=5)).strftime("%Y-%m-%d")
    return xcals.get_calendar("XNYS", start=CALENDAR_START, end=end)


@cache
def _schedule_ns() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(session dates as datetime64[D], opens ns UTC, closes ns UTC)."""
    schedule = nyse().schedule
    sessions = schedule.index.values.astype("datetime64[D]")
    opens = schedule["open"].dt.tz_convert(None).to_numpy("datetime64[ns]").astype(np.int64)
    closes = schedule["close"].dt.tz_convert(None).to_numpy("datetime64[ns]").astype(np.int64)
    return sessions, opens, closes


def _ns(ts: datetime) -> np.int64:
    return np.int64(pd.Timestamp(ts).tz_convert("UTC").value)


def _dt(ns: int) -> datetime:
    return pd.Timestamp(int(ns), tz="UTC").to_pydatetime()


def datetimes(ns: np.ndarray) -> list[datetime]:
    """Aware UTC datetimes of nanosecond stamps, many at once (microseconds kept)."""
    return (
        pd.DatetimeIndex(np.asarray(ns, dtype="datetime64[ns]"), tz="UTC").to_pydatetime().tolist()
    )


def bar_starts(start: datetime, end: datetime) -> list[datetime]:
    """Every 5-minute bar start t in market hours with start <= t < end."""
    return [_dt(ns) for ns in bar_starts_ns(_ns(start), _ns(end))]


def bar_starts_ns(start_ns: int, end_ns: int) -> np.ndarray:
    _, opens, closes = _schedule_ns()
    first = np.searchsorted(closes, start_ns, side="right")
    last = np.searchsorted(opens, end_ns, side="left")
    chunks = []
    for open_ns, close_ns in zip(opens[first:last], closes[first:last], strict=True):
        grid = np.arange(open_ns, close_ns, BAR_NS, dtype=np.int64)
        chunks.append(grid[(grid >= start_ns) & (grid < end_ns)])
    return np.concatenate(chunks) if chunks else np.empty(0, dtype=np.int64)


def next_bar_start(after: datetime) -> datetime:
    """The first bar start strictly after `after`."""
    after_ns = _ns(after)
    grid = bar_starts_ns(after_ns + 1, after_ns + 10 * 86_400 * 1_000_000_000)
    return _dt(grid[0])


def last_completed_bar_start(now: datetime) -> datetime:
    """The start of the latest bar that had ended by `now`."""
    now_ns = _ns(now)
    grid = bar_starts_ns(now_ns - 10 * 86_400 * 1_000_000_000, now_ns - BAR_NS + 1)
    return _dt(grid[-1])


def previous_bar_starts(anchor: datetime, count: int) -> list[datetime]:
    """The `count` bar starts ending with `anchor` (inclusive), oldest first."""
    anchor_ns = _ns(anchor)
    span_days = 10 + count // 60
    grid = bar_starts_ns(anchor_ns - span_days * 86_400 * 1_000_000_000, anchor_ns + 1)
    return [_dt(ns) for ns in grid[-count:]]


@dataclass(frozen=True)
class SessionHours:
    date: date
    open: datetime
    close: datetime
    early_close: bool


def session_hours(day: date) -> SessionHours | None:
    """Open and close (UTC) of the NYSE session on `day`, or None on a weekend or holiday."""
    sessions, opens, closes = _schedule_ns()
    idx = np.searchsorted(sessions, np.datetime64(day, "D"))
    if idx >= len(sessions) or sessions[idx] != np.datetime64(day, "D"):
        return None
    open_dt, close_dt = _dt(opens[idx]), _dt(closes[idx])
    regular_close = pd.Timestamp(f"{day} 16:00", tz="America/New_York").tz_convert("UTC")
    return SessionHours(day, open_dt, close_dt, close_dt < regular_close.to_pydatetime())


def is_open(at: datetime) -> bool:
    _, opens, closes = _schedule_ns()
    at_ns = _ns(at)
    idx = np.searchsorted(opens, at_ns, side="right") - 1
    return bool(idx >= 0 and at_ns < closes[idx])


def next_open(after: datetime) -> datetime:
    _, opens, _ = _schedule_ns()
    return _dt(opens[np.searchsorted(opens, _ns(after), side="right")])


def next_close(after: datetime) -> datetime:
    _, _, closes = _schedule_ns()
    return _dt(closes[np.searchsorted(closes, _ns(after), side="right")])


def utcnow() -> datetime:
    return datetime.now(UTC)


def sessions_start(now: datetime, sessions: int) -> datetime:
    """Midnight New York time (as UTC) of the session `sessions - 1` before the latest one that
    has opened by `now`: where "the last N trading days" begin."""
    dates, opens, _ = _schedule_ns()
    idx = max(int(np.searchsorted(opens, _ns(now), side="right")) - 1, 0)
    day = pd.Timestamp(dates[max(idx - sessions + 1, 0)]).date()
    return pd.Timestamp(f"{day} 00:00", tz="America/New_York").tz_convert("UTC").to_pydatetime()
