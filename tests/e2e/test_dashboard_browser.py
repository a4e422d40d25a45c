"""The dashboard in headless Chromium against a real daphne: log in, see the charts render with
bars, see a submitted order's trade row appear within 2 seconds, see the kill switch banner,
and see the page reconnect and catch up after the web process is stopped and started again."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from tests.helpers import ARTIFACTS, chromium, dashboard_logged_in, off_loop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _submit_order_over_api(base: str, trade_key: str, symbol: str) -> str:
    import json
    import urllib.request

    request = urllib.request.Request(
        base + "/api/v1/orders/submit",
        data=json.dumps({"symbol": symbol, "side": "buy", "qty": "3", "type": "market"}).encode(),
        headers={"Authorization": f"Bearer {trade_key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())["id"]


def _submit_order_in_worker(symbol: str) -> str:
    """What a strategy run in the Celery worker does: the same order service, no web process."""
    from trading.services import order_submit

    return str(order_submit(symbol=symbol, side="buy", qty=Decimal("3")).order.pk)


@pytest.fixture
def trading_ready(market, session):
    from strategies.models import StrategyConfig

    get_user_model().objects.create_user("alice", password="correct-horse-9")
    StrategyConfig.objects.create(
        name="demo sma",
        plugin="sma_crossover",
        symbols=["SPY"],
        params={"fast": 5, "slow": 20},
        enabled=True,
        last_signal={"SPY": {"target": 1.0, "bar_time": None, "note": "ordered", "order_id": None}},
    )


def test_dashboard_live_updates_and_reconnect(trading_ready, trade_key, daphne_factory):
    from trading.services import trading_halt

    web = daphne_factory()
    with chromium() as browser:
        page, errors = dashboard_logged_in(browser, web.base, height=1300)

        # Charts render from the REST bars: a canvas and a bar count per symbol.
        page.wait_for_function(
            "() => /^[1-9][0-9]* bars$/.test("
            "document.querySelector('[data-bars-for=SPY]').textContent)",
            timeout=10_000,
        )
        assert page.locator(".chart[data-symbol=SPY] canvas").count() > 0
        page.wait_for_function(
            "() => document.querySelector('#equity').textContent !== '–'", timeout=5_000
        )

        # An order: its trade row appears within 2 seconds, through the stream.
        assert page.locator("#trades tr.trade-row").count() == 0
        off_loop(_submit_order_over_api, web.base, trade_key, "SPY")
        page.wait_for_selector("#trades tr.trade-row", timeout=2_000)
        assert "SPY" in page.locator("#trades tr.trade-row").first.inner_text()
        page.wait_for_selector("#positions tr[data-key=SPY]", timeout=2_000)
        # ... a marker on SPY's chart, and the strategies table reads as text, not JSON.
        page.wait_for_selector(".chart[data-symbol=SPY][data-markers='1']", timeout=2_000)
        assert "SPY long 100% · ordered" in page.inner_text("#strategies")
        # The enabled strategy's two averages are drawn over SPY's candles.
        page.wait_for_selector(".chart[data-symbol=SPY][data-lines='2']", timeout=5_000)

        # The kill switch: the halted banner appears, the resume button replaces stop.
        off_loop(trading_halt, reason="test halt")
        page.wait_for_selector("#halted-banner:not([hidden])", timeout=2_000)
        assert "test halt" in page.locator("#halted-banner").inner_text()
        assert page.locator("#resume-trading").is_visible()
        from trading.services import trading_resume

        off_loop(trading_resume)
        page.wait_for_selector("#halted-banner[hidden]", state="attached", timeout=2_000)

        # Stop the web process: the indicator says so. Meanwhile a trade happens that no
        # connected process can deliver. Start it again: the page reconnects by itself
        # and re-fetches the snapshot, so the missed trade shows up.
        port = web.port
        web.stop()
        page.wait_for_selector("#connection[data-state=reconnecting]", timeout=5_000)
        assert page.locator("#stream-banner").is_visible()
        off_loop(_submit_order_in_worker, "QQQ")
        daphne_factory(port=port)
        page.wait_for_selector("#connection[data-state=live]", timeout=15_000)
        page.wait_for_function(
            "() => document.querySelectorAll('#trades tr.trade-row').length === 2",
            timeout=5_000,
        )
        assert "QQQ" in page.locator("#trades tr.trade-row").first.inner_text()
        page.wait_for_selector("#positions tr[data-key=QQQ]", timeout=2_000)
        assert page.locator("#stream-banner").is_hidden()

        # Still live after the restart: a new event arrives through the new process.
        off_loop(_submit_order_over_api, web.base, trade_key, "NVDA")
        page.wait_for_function(
            "() => document.querySelectorAll('#trades tr.trade-row').length === 3",
            timeout=2_000,
        )
        page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        assert errors == []
