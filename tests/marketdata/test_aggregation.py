"""Timeframes aggregated in the database equal a pandas resample of the same 5-minute bars."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from marketdata.providers.synthetic import SyntheticProvider
from marketdata.selectors import bars_ohlcv
from marketdata.services import bars_upsert

pytestmark = pytest.mark.django_db

# Across the start of US daylight saving time (9 March 2025) and a weekend.
START = datetime(2025, 3, 5, tzinfo=UTC)
END = datetime(2025, 3, 13, tzinfo=UTC)
RULES = {"15Min": "15min", "1Hour": "1h", "1Day": "1D"}


@pytest.fixture
def bars():
    bars = SyntheticProvider(seed=3).fetch_bars("QQQ", "5Min", START, END)
    bars_upsert(bars=bars, source="synthetic")
    return bars


def _pandas(bars, timeframe: str) -> pd.DataFrame:
    frame = pd.DataFrame(
        [
            (b.timestamp, float(b.open), float(b.high), float(b.low), float(b.close), b.volume)
            for b in bars
        ],
        columns=["timestamp", "open", "high", "low", "close", "volume"],
    ).set_index("timestamp")
    frame.index = pd.DatetimeIndex(frame.index).tz_convert("UTC")
    if timeframe == "1Day":
        # The NYSE session date: resample in New York time, report the bucket's start in UTC.
        frame = frame.tz_convert("America/New_York")
    out = frame.resample(RULES[timeframe]).agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    out = out.dropna(subset=["open"])
    out.index = out.index.tz_convert("UTC")
    return out


def _ours(rows) -> pd.DataFrame:
    frame = pd.DataFrame(rows).set_index("timestamp")
    frame.index = pd.DatetimeIndex(frame.index).tz_convert("UTC")
    return frame.astype({c: "float64" for c in ("open", "high", "low", "close")}).astype(
        {"volume": "int64"}
    )


@pytest.mark.parametrize("timeframe", ["15Min", "1Hour", "1Day"])
def test_aggregation_equals_pandas_resample(bars, timeframe):
    ours = _ours(bars_ohlcv("QQQ", timeframe))
    expected = _pandas(bars, timeframe).astype({"volume": "int64"})
    pd.testing.assert_frame_equal(ours, expected, check_freq=False, check_names=False)


def test_daily_bars_follow_the_new_york_session_date(bars):
    days = bars_ohlcv("QQQ", "1Day")
    # Six sessions (Wed 5th .. Wed 12th without the weekend), each at midnight New York time:
    # 05:00Z before daylight saving time starts on the 9th, 04:00Z after it.
    assert [d["timestamp"].isoformat() for d in days] == [
        "2025-03-05T05:00:00+00:00",
        "2025-03-06T05:00:00+00:00",
        "2025-03-07T05:00:00+00:00",
        "2025-03-10T04:00:00+00:00",
        "2025-03-11T04:00:00+00:00",
        "2025-03-12T04:00:00+00:00",
    ]
    first_day = [b for b in bars if b.timestamp.date() == START.date()]
    assert days[0]["open"] == first_day[0].open and days[0]["close"] == first_day[-1].close
    assert days[0]["volume"] == sum(b.volume for b in first_day)


def test_limit_keeps_the_newest_buckets(bars):
    every = bars_ohlcv("QQQ", "1Hour")
    assert bars_ohlcv("QQQ", "1Hour", limit=5) == every[-5:]
    assert bars_ohlcv("QQQ", "5Min", limit=3) == bars_ohlcv("QQQ", "5Min")[-3:]
