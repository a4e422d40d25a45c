"""The Robinhood broker under concurrent workers, on PostgreSQL: one login for many callers,
and the pacing shared by all of them."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from tests.fakes.robinhood_fixtures import fake_robinhood, robinhood_settings  # noqa: F401
from trading.brokers import get_broker

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _in_thread(fn):
    def run(*args):
        try:
            return fn(*args)
        finally:
            connection.close()

    return run


def test_concurrent_first_calls_log_in_once(robinhood_settings):  # noqa: F811
    fake = robinhood_settings

    with ThreadPoolExecutor(max_workers=4) as pool:
        accounts = list(pool.map(_in_thread(lambda _: get_broker().account()), range(4)))

    assert len({a.buying_power for a in accounts}) == 1
    assert len(fake.requests_to("POST", "/oauth2/token/")) == 1


def test_pacing_holds_across_concurrent_callers(robinhood_settings, settings):  # noqa: F811
    fake = robinhood_settings
    get_broker().account()  # logged in
    settings.ROBINHOOD_MIN_INTERVAL_SECONDS = 0.2
    before = len(fake.requests)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=3) as pool:
        list(pool.map(_in_thread(lambda _: get_broker().positions()), range(6)))

    assert time.monotonic() - started >= 1.0  # 6 calls, one per 0.2 s
    stamps = sorted(r.at for r in fake.requests[before:])
    gaps = [(b - a).total_seconds() for a, b in zip(stamps, stamps[1:], strict=False)]
    assert len(stamps) == 6 and min(gaps) >= 0.15
