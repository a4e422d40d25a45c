"""The reads every order and every status make (the simulated clock's newest bar, the last
arrival, the last price) stay index lookups however many bars are stored: no table scan."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from marketdata import selectors

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


@pytest.fixture
def many_bars():
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO marketdata_bar
                (symbol, timeframe, timestamp, open, high, low, close, volume, source,
                 collected_at)
            SELECT s, '5Min', '2025-01-02 14:30+00'::timestamptz + i * interval '5 minutes',
                   1, 1, 1, 1, 100, 'synthetic', now() - i * interval '1 second'
            FROM generate_series(1, 20000) AS i, unnest(ARRAY['SPY', 'QQQ', 'TSLA', 'NVDA']) AS s
            """
        )
        cursor.execute("ANALYZE marketdata_bar")


@pytest.mark.parametrize(
    "read",
    [
        selectors.market_now,
        selectors.last_collected_at,
        lambda: selectors.last_price_and_clock("SPY"),
    ],
    ids=["market_now", "last_collected_at", "last_price_and_clock"],
)
def test_hot_reads_use_an_index(many_bars, settings, read):
    settings.MARKET_CLOCK = "simulated"
    with CaptureQueriesContext(connection) as queries:
        read()
    assert queries.captured_queries
    with connection.cursor() as cursor:
        for query in queries.captured_queries:
            cursor.execute(f"EXPLAIN {query['sql']}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
            assert "Seq Scan" not in plan, f"{query['sql']}\nscans the table:\n{plan}"
