"""The dashboard in headless Chromium against a real daphne while the synthetic tick source
streams: the price text ticks, the forming candle appears on the chart and moves, and the
stream-status indicator follows the `status` event's `streams`."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from django.contrib.auth import get_user_model

from realtime.sources.synthetic_ticks import SyntheticTickSource
from streaming import events
from streaming.publish import send_now
from tests.helpers import ARTIFACTS, chromium, dashboard_logged_in, off_loop
from tests.realtime.quotes_support import RecordingLink

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


class SourceThread:
    """A stream source running in a thread of its own, as the `stream` process would run it."""

    def __init__(self, source) -> None:
        self.source = source
        self.link = RecordingLink()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from django.db import connection

        try:
            self.loop.run_until_complete(self.source.run(self.link))
        finally:
            connection.close()

    def __enter__(self) -> SourceThread:
        self.thread.start()
        assert self.link.live.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.source.close(), self.loop).result(10)
        self.thread.join(10)


def _buy(symbol: str) -> None:
    from decimal import Decimal

    from trading.services import order_submit

    order_submit(symbol=symbol, side="buy", qty=Decimal("3"))


def _price_texts(page, symbol: str, seconds: float) -> list[str]:
    seen, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.append(page.inner_text(f"[data-price-for={symbol}]"))
        page.wait_for_timeout(100)
    return seen


def test_dashboard_live_price_forming_candle_and_stream_status(
    market, session, daphne_factory, settings
):
    get_user_model().objects.create_user("alice", password="correct-horse-9")
    settings.COLLECT_INTERVAL_SECONDS = 30  # the simulated bar forms over 30 s of wall time
    web = daphne_factory()
    with chromium() as browser:
        page, errors = dashboard_logged_in(browser, web.base, height=1100)
        page.wait_for_function(
            "() => /^[1-9][0-9]* bars$/.test("
            "document.querySelector('[data-bars-for=SPY]').textContent)",
            timeout=10_000,
        )
        bars_before = int(page.inner_text("[data-bars-for=SPY]").split()[0])
        # No stream reported yet: the indicator says off.
        assert page.get_attribute("#streams", "data-state") == "off"
        still = _price_texts(page, "SPY", 1.0)
        assert len(set(still)) == 1  # without a stream the price shows the last close, unmoving

        source = SyntheticTickSource(symbols=["SPY", "QQQ"], ticks_per_second=10)
        with SourceThread(source):
            # The price text changes as ticks are published (at most 4 events a second).
            page.wait_for_function(
                "() => Number(document.querySelector('[data-price-for=SPY]').dataset.ticks) > 0",
                timeout=5_000,
            )
            seen = _price_texts(page, "SPY", 3.0)
            assert len(set(seen)) >= 3, seen
            assert page.inner_text("[data-quote-for=SPY]") != ""
            # The forming candle: one more candle on the chart, the bar after the stored ones.
            page.wait_for_function(
                f"() => document.querySelector('[data-bars-for=SPY]').textContent"
                f" === '{bars_before + 1} bars'",
                timeout=5_000,
            )
            ticks = int(page.get_attribute("[data-price-for=SPY]", "data-ticks"))
            assert ticks <= 4 * 6 + 4  # coalesced: about 4 a second since the stream began

            # A fill shows at once (highlighted), and the position is priced at each quote.
            off_loop(_buy, "SPY")
            page.wait_for_selector("#trades tr.trade-row.fresh", timeout=2_000)
            page.wait_for_selector("#positions tr[data-key=SPY]", timeout=2_000)
            lasts = set()
            for _ in range(30):
                lasts.add(page.inner_text("#positions tr[data-key=SPY] td:nth-child(4)"))
                page.wait_for_timeout(100)
            assert len(lasts) >= 2, lasts

            # The stream-status indicator, from the status event's `streams`.
            off_loop(
                send_now,
                events.STATUS,
                {
                    "streams": {
                        "market_data": {"state": "live", "last_message_age_s": 0.2, "reconnects": 0}
                    }
                },  # fmt: skip
            )
            page.wait_for_selector(
                "#streams [data-stream=market_data][data-state=live]", timeout=3_000
            )
            assert page.get_attribute("#streams", "data-state") == "live"
            assert "market data: live" in page.inner_text("#streams")
            page.screenshot(path=str(ARTIFACTS / "dashboard-live.png"), full_page=True)
            off_loop(
                send_now,
                events.STATUS,
                {
                    "streams": {
                        "market_data": {"state": "reconnecting", "last_message_age_s": 31.0,
                                        "reconnects": 2},
                        "trade_updates": {"state": "polling", "last_message_age_s": None,
                                          "reconnects": 5},
                    }
                },
            )  # fmt: skip
            page.wait_for_selector("#streams[data-state=reconnecting]", timeout=3_000)
            assert (
                page.get_attribute("#streams [data-stream=trade_updates]", "data-state")
                == "polling"
            )
            assert "31.0 s ago · 2 reconnects" in page.get_attribute(
                "#streams [data-stream=market_data]", "title"
            )
            # The stream process's own record (realtime.state): a stream with no holder is
            # "down" and the REST fallback polls; its age is `last_message_age_seconds`.
            off_loop(
                send_now,
                events.STATUS,
                {
                    "streams": {
                        "market_data": {"state": "live", "last_message_age_seconds": 0.4,
                                        "reconnects": 2, "polling": False},
                        "trade_updates": {"state": "down", "last_message_age_seconds": None,
                                          "reconnects": 5, "polling": True},
                    }
                },
            )  # fmt: skip
            page.wait_for_selector("#streams[data-state=polling]", timeout=3_000)
            assert "0.4 s ago" in page.get_attribute("#streams [data-stream=market_data]", "title")
            assert "trade updates: polling" in page.inner_text("#streams")
        assert errors == []
