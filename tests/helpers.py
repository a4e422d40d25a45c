"""Helpers the tests share (fixtures live in conftest.py). Import them, never copy them."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async


def submit(client, **body):
    """POST /api/v1/orders/submit: a market buy of 1 SPY unless `body` says otherwise."""
    return client.post(
        "/api/v1/orders/submit", {"symbol": "SPY", "side": "buy", "qty": "1", **body}, format="json"
    )


@database_sync_to_async
def ws_token() -> str:
    """A /ws/updates token bound to a new read key."""
    from streaming.tokens import token_issue
    from trading.models import ApiKey

    key, _raw = ApiKey.objects.create_key(name="ws", scope="read")
    return token_issue(key_id=key.id, user_id=None).token


# --- Browser tests: Debian's Chromium through Playwright ------------------------------------------

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"  # screenshots
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser; skips the test where Debian's chromium is not installed."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    ARTIFACTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def off_loop(fn, *args, **kwargs):
    """Run fn in a worker thread: Playwright's sync API keeps an event loop on this one, where
    the ORM and the broker's async_to_sync refuse to run."""
    from django.db import connection

    def call():
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


def next_bar(symbol: str, *, open_, high, low, close):
    """Plant the market's next bar for `symbol` (and advance the others at the same time)."""
    from decimal import Decimal

    from marketdata import calendar
    from marketdata.models import Bar
    from marketdata.selectors import last_price, latest_bar_time

    start = calendar.next_bar_start(latest_bar_time())
    bar = None
    for sym in {symbol, "SPY", "QQQ", "TSLA", "NVDA"}:
        price = last_price(sym)
        values = (open_, high, low, close) if sym == symbol else (price, price, price, price)
        created = Bar.objects.create(
            symbol=sym,
            timeframe="5Min",
            timestamp=start,
            open=Decimal(str(values[0])),
            high=Decimal(str(values[1])),
            low=Decimal(str(values[2])),
            close=Decimal(str(values[3])),
        )
        if sym == symbol:
            bar = created
    return bar


def run_together(targets) -> list[Exception]:
    """Run each callable in a thread of its own, all released at once (a barrier); each thread
    closes its database connection. Returns the exceptions raised."""
    from django.db import connection

    barrier = threading.Barrier(len(targets))
    errors = []

    def wrap(fn):
        def run():
            try:
                barrier.wait()
                fn()
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
            finally:
                connection.close()

        return run

    threads = [threading.Thread(target=wrap(fn)) for fn in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors


def dashboard_logged_in(browser, base: str, *, height: int = 1300) -> tuple[Any, list[str]]:
    """A dashboard page logged in as alice (password correct-horse-9), its stream live; and the
    list its page errors go to."""
    page = browser.new_page(viewport={"width": 1400, "height": height})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base + "/")
    page.fill("#id_username", "alice")
    page.fill("#id_password", "correct-horse-9")
    page.click("#login-submit")
    page.wait_for_selector("#connection[data-state=live]", timeout=10_000)
    return page, errors
