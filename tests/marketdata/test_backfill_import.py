"""manage.py backfill and import_bars, and the synthetic provider's session shape over a year."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime
from io import StringIO

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from marketdata import calendar
from marketdata.models import Bar
from marketdata.providers.synthetic import SyntheticProvider

pytestmark = pytest.mark.django_db


def test_backfill_stores_every_session_bar_and_is_idempotent():
    err = StringIO()
    out = StringIO()
    call_command(
        "backfill",
        "--provider",
        "synthetic",
        "--symbols",
        "spy",
        "tsla",
        "--days",
        "10",
        stdout=out,
        stderr=err,
    )
    count = Bar.objects.count()
    end = calendar.last_completed_bar_start(calendar.utcnow()) + calendar.BAR
    expected = len(
        calendar.bar_starts_ns(calendar._ns(end) - 10 * 86_400 * 10**9, calendar._ns(end))
    )
    assert count == 2 * expected > 0
    assert f"Stored {count} bars" in out.getvalue()
    assert "backfill synthetic" in err.getvalue()  # the progress bar
    closes = list(Bar.objects.order_by("symbol", "timestamp").values_list("close", flat=True))
    call_command(
        "backfill",
        "--provider",
        "synthetic",
        "--symbols",
        "SPY",
        "TSLA",
        "--days",
        "10",
        "--no-progress",
        stdout=StringIO(),
    )
    assert (
        list(Bar.objects.order_by("symbol", "timestamp").values_list("close", flat=True)) == closes
    )


def test_backfill_takes_symbols_comma_separated_as_backtest_does():
    call_command(
        "backfill",
        "--symbols",
        "spy,QQQ",
        "nvda",
        "--days",
        "3",
        "--no-progress",
        stdout=StringIO(),
    )
    assert set(Bar.objects.values_list("symbol", flat=True)) == {"SPY", "QQQ", "NVDA"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--provider", "nope"], "--provider"),
        (["--days", "0"], "--days"),
        (["--symbols", "SPY;QQQ"], "'SPY;QQQ' is not a ticker symbol"),
        (["--symbols", ","], "--symbols"),
    ],
)
def test_backfill_rejects_bad_arguments(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("backfill", *args, stdout=StringIO())
    assert not Bar.objects.exists()


def test_import_bars_reports_bad_rows_by_line(tmp_path):
    path = tmp_path / "bars.csv"
    path.write_text(
        "symbol,timestamp,open,high,low,close,volume\n"
        "spy,2025-03-03T14:30:00Z,580.10,581.00,579.90,580.50,1200\n"
        "SPY,2025-03-03 09:35:00-05:00,580.50,580.90,580.00,580.20,\n"
        "SPY,yesterday,1,1,1,1,1\n"
        "SPY,2025-03-03T14:45:00Z,580,579,578,578.5,10\n"
        "SPY,2025-03-03T14:50:00Z,abc,1,1,1,1\n"
        "SPY,2025-03-03T14:55:00Z,1,1,1,1,-4\n"
    )
    err = StringIO()
    with pytest.raises(CommandError, match="4 bad row"):
        call_command("import_bars", str(path), stdout=StringIO(), stderr=err)
    lines = [line.split(":")[1] for line in err.getvalue().splitlines()]
    assert lines == ["4", "5", "6", "7"]
    stored = list(Bar.objects.values_list("symbol", "timestamp", "volume", "source"))
    assert stored == [
        ("SPY", datetime(2025, 3, 3, 14, 30, tzinfo=UTC), 1200, "csv"),
        ("SPY", datetime(2025, 3, 3, 14, 35, tzinfo=UTC), 0, "csv"),
    ]
    Bar.objects.all().delete()
    with pytest.raises(CommandError):
        call_command("import_bars", str(path), "--strict", stdout=StringIO(), stderr=StringIO())
    assert not Bar.objects.exists()


def test_synthetic_session_shape_over_a_year():
    start, end = datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
    bars = SyntheticProvider(seed=11).fetch_bars("NVDA", "5Min", start, end)
    per_day = Counter(calendar_date(b.timestamp) for b in bars)
    for day, count in per_day.items():
        hours = calendar.session_hours(day)
        assert hours is not None, f"bar on a non-session day {day}"
        assert count == (78 if not hours.early_close else 42)
    assert len(per_day) == 252  # NYSE sessions in 2024
    assert date(2024, 12, 25) not in per_day and date(2024, 7, 4) not in per_day
    assert all(d.weekday() < 5 for d in per_day)
    for bar in bars:
        assert bar.low <= min(bar.open, bar.close) and max(bar.open, bar.close) <= bar.high
        ny = bar.timestamp.astimezone(calendar_tz())
        assert (ny.hour, ny.minute) >= (9, 30) and (ny.hour, ny.minute) <= (15, 55)
    # U-shaped volume: the open and close are busier than midday.
    full_days = [d for d, c in per_day.items() if c == 78]
    volumes = np.array(
        [[b.volume for b in bars if calendar_date(b.timestamp) == d] for d in full_days[:60]]
    ).mean(axis=0)
    assert volumes[0] > 2 * volumes[39] and volumes[-1] > 2 * volumes[39]


def calendar_tz():
    from zoneinfo import ZoneInfo

    return ZoneInfo("America/New_York")


def calendar_date(ts):
    return ts.astimezone(calendar_tz()).date()
