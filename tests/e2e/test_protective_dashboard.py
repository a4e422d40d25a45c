"""The dashboard in headless Chromium: a bracket order's legs show right under their parent,
live from the stream and again from the snapshot after a reload, and leave with the kill
switch."""

from __future__ import annotations

import json
import urllib.request

import pytest

from tests.e2e.test_dashboard_browser import trading_ready  # noqa: F401 - fixture
from tests.helpers import ARTIFACTS, chromium, dashboard_logged_in, off_loop

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _submit_bracket(base: str, trade_key: str) -> str:
    from marketdata.selectors import last_price

    price = last_price("SPY")
    body = {
        "symbol": "SPY",
        "side": "buy",
        "qty": "3",
        "order_class": "bracket",
        "take_profit": {"limit_price": str(price + 5)},
        "stop_loss": {"stop_price": str(price - 5)},
    }
    request = urllib.request.Request(
        base + "/api/v1/orders/submit",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {trade_key}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())["id"]


ROWS = "() => [...document.querySelectorAll('#orders tbody tr')].map(r => [r.dataset.key, r.className, r.cells[3].textContent, r.cells[5].textContent])"  # noqa: E501


def _rows_follow_parent(page, parent_id: str) -> list:
    rows = page.evaluate(ROWS)
    keys = [row[0] for row in rows]
    at = keys.index(parent_id)
    legs = rows[at + 1 : at + 3]
    assert rows[at][2] == "market (bracket)" and rows[at][3] == "filled"
    assert all(row[1] == "leg" and row[3] == "accepted" for row in legs)
    assert sorted(row[2].split()[1] for row in legs) == ["stop-loss", "take-profit"]
    return legs


def test_bracket_legs_show_under_their_parent(trading_ready, trade_key, daphne_factory):  # noqa: F811
    from trading.services import trading_halt

    web = daphne_factory()
    with chromium() as browser:
        page, errors = dashboard_logged_in(browser, web.base, height=1300)

        parent_id = off_loop(_submit_bracket, web.base, trade_key)
        page.wait_for_selector("#orders tr.leg", timeout=3_000)
        page.wait_for_function(
            "() => document.querySelectorAll('#orders tr.leg').length === 2", timeout=3_000
        )
        _rows_follow_parent(page, parent_id)

        page.reload()  # the snapshot lists the filled entry whose exits still work
        page.wait_for_selector("#connection[data-state=live]", timeout=10_000)
        page.wait_for_function(
            "() => document.querySelectorAll('#orders tr.leg').length === 2", timeout=3_000
        )
        _rows_follow_parent(page, parent_id)
        page.screenshot(path=str(ARTIFACTS / "dashboard-bracket.png"), full_page=True)

        off_loop(trading_halt, reason="test halt")
        page.wait_for_function(
            "() => document.querySelectorAll('#orders tbody tr').length === 0", timeout=3_000
        )
        assert errors == []
