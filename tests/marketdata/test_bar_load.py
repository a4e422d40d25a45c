"""Loading bars in bulk (backfill, imports): one row per bar whatever ran before or alongside,
and the newest values win."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import psycopg
import pytest
from django.db import connection

from marketdata import services
from marketdata.models import Bar
from marketdata.providers.base import ProviderError
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import bars_backfill, bars_upsert

pytestmark = pytest.mark.django_db

# Two weeks: 10 sessions of 78 five-minute bars per symbol, enough for the COPY path (>= 200).
START = datetime(2025, 3, 3, tzinfo=UTC)
END = datetime(2025, 3, 17, tzinfo=UTC)
PER_SYMBOL = 780


class Rerun(SyntheticProvider):
    """Another answer for the same bars, as after an upstream correction."""

    name = "rerun"


def _stored() -> dict:
    return {
        (b.symbol, b.timestamp): (b.close, b.volume, b.source)
        for b in Bar.objects.filter(timeframe="5Min")
    }


def _expected(provider, symbols) -> dict:
    return {
        (b.symbol, b.timestamp): (b.close, b.volume, provider.name)
        for s in symbols
        for b in provider.fetch_bars(s, "5Min", START, END)
    }


def test_backfill_twice_keeps_one_row_per_bar_and_the_later_values_win():
    symbols = ["SPY", "QQQ"]
    # Small chunks and batches: several stores, some holding both symbols.
    kwargs = dict(symbols=symbols, start=START, end=END, chunk_days=3, batch_rows=500)
    assert bars_backfill(provider=SyntheticProvider(seed=1), **kwargs) == 2 * PER_SYMBOL
    first = _expected(SyntheticProvider(seed=1), symbols)
    assert _stored() == first

    assert bars_backfill(provider=Rerun(seed=2), **kwargs) == 2 * PER_SYMBOL
    assert Bar.objects.count() == 2 * PER_SYMBOL
    second = _expected(Rerun(seed=2), symbols)
    assert _stored() == second
    assert sum(first[key][:2] != second[key][:2] for key in first) > PER_SYMBOL  # new prices


def test_backfill_over_partly_stored_bars_stores_each_bar_once_with_the_backfilled_values():
    recent = SyntheticProvider(seed=9).fetch_bars(
        "SPY", "5Min", datetime(2025, 3, 12, tzinfo=UTC), END
    )
    bars_upsert(bars=recent, source="collected")
    assert Bar.objects.count() == len(recent) == 3 * 78

    stored = bars_backfill(
        provider=SyntheticProvider(seed=1), symbols=["SPY", "NVDA"], start=START, end=END
    )

    assert stored == Bar.objects.count() == 2 * PER_SYMBOL
    assert _stored() == _expected(SyntheticProvider(seed=1), ["SPY", "NVDA"])


def test_backfill_stores_the_chunks_fetched_before_a_failing_one(settings):
    settings.MARKETDATA_RETRY_ATTEMPTS = 2
    settings.MARKETDATA_RETRY_BASE_SECONDS = 0

    class DiesOnMarch10(SyntheticProvider):
        def fetch_bars(self, symbol, timeframe, start, end):
            if start >= datetime(2025, 3, 10, tzinfo=UTC):
                raise ProviderError("upstream unreachable")
            return super().fetch_bars(symbol, timeframe, start, end)

    with pytest.raises(ProviderError):
        bars_backfill(
            provider=DiesOnMarch10(seed=1), symbols=["SPY"], start=START, end=END, chunk_days=7
        )
    # The first week (5 sessions) was fetched before the failure and is kept.
    assert Bar.objects.count() == 5 * 78
    assert Bar.objects.latest("timestamp").timestamp < datetime(2025, 3, 10, tzinfo=UTC)


def _other_connection(autocommit: bool) -> psycopg.Connection:
    """A second client of the test database, outside Django: a concurrent writer."""
    params = connection.settings_dict
    return psycopg.connect(
        dbname=params["NAME"],
        user=params.get("USER") or None,
        password=params.get("PASSWORD") or None,
        host=params.get("HOST") or "127.0.0.1",
        port=params.get("PORT") or 5432,
        autocommit=autocommit,
    )


PLANT = (
    "INSERT INTO marketdata_bar (symbol, timeframe, timestamp, open, high, low, close, volume,"
    " source, collected_at) VALUES ('SPY', '5Min', %s, 1, 1, 1, 1, 1, 'planted', now())"
)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_bar_stored_between_the_check_and_the_copy_is_merged_not_lost_or_doubled(monkeypatch):
    bars = SyntheticProvider(seed=1).fetch_bars("SPY", "5Min", START, END)
    planted_at = bars[400].timestamp
    check = services._stored_keys

    def check_then_a_writer_commits(*args, **kwargs):
        found = check(*args, **kwargs)
        with _other_connection(autocommit=True) as other:
            other.execute(PLANT, [planted_at])
        return found

    monkeypatch.setattr(services, "_stored_keys", check_then_a_writer_commits)

    assert (
        bars_backfill(provider=SyntheticProvider(seed=1), symbols=["SPY"], start=START, end=END)
        == PER_SYMBOL
    )

    assert _stored() == _expected(SyntheticProvider(seed=1), ["SPY"])
    assert Bar.objects.filter(timestamp=planted_at).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_load_that_meets_a_concurrent_uncommitted_bar_waits_and_merges_after_it():
    bars = SyntheticProvider(seed=1).fetch_bars("SPY", "5Min", START, END)
    planted_at = bars[400].timestamp
    errors, results = [], []

    def load():
        try:
            results.append(
                bars_backfill(
                    provider=SyntheticProvider(seed=1), symbols=["SPY"], start=START, end=END
                )
            )
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    with _other_connection(autocommit=False) as writer, _other_connection(True) as watcher:
        writer.execute(PLANT, [planted_at])  # not committed: invisible to the load's check
        loader = threading.Thread(target=load)
        loader.start()
        blocked_on = None
        deadline = time.monotonic() + 30
        while blocked_on is None and time.monotonic() < deadline and loader.is_alive():
            row = watcher.execute(
                "SELECT query FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock'"
            ).fetchone()
            blocked_on = row[0] if row else None
            time.sleep(0.02)
        writer.commit()
        loader.join(30)

    # The straight COPY reached the planted bar and waited for its writer, then was redone.
    assert blocked_on is not None and blocked_on.startswith("COPY marketdata_bar")
    assert errors == [] and results == [PER_SYMBOL]
    assert _stored() == _expected(SyntheticProvider(seed=1), ["SPY"])
    assert Bar.objects.filter(timestamp=planted_at).count() == 1
