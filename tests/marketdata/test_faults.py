"""A failing provider degrades the system: stored data keeps being served and is flagged stale,
calls back off and a circuit breaker stops hammering it, and everything recovers when it
answers again. The worker's task never raises."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from marketdata.models import Bar, ProviderBreaker, SymbolFeed
from marketdata.providers.base import BarData, ProviderError
from marketdata.providers.synthetic import SyntheticProvider
from marketdata.services import bars_collect

pytestmark = pytest.mark.django_db


class FlakyProvider(SyntheticProvider):
    """The synthetic market behind a switch: down raises like a dead upstream would."""

    name = "flaky"

    def __init__(self) -> None:
        super().__init__(seed=42)
        self.down = False
        self.calls = 0

    def fetch_bars(self, symbol, timeframe, start, end):
        self.calls += 1
        if self.down:
            raise ProviderError("upstream unreachable (connection refused)")
        return super().fetch_bars(symbol, timeframe, start, end)


@pytest.fixture(autouse=True)
def _clean_cache():
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def provider(settings, monkeypatch):
    settings.MARKETDATA_PROVIDER = "flaky"
    settings.MARKETDATA_PROVIDERS = {**settings.MARKETDATA_PROVIDERS, "flaky": __name__ + ".X"}
    settings.MARKETDATA_RETRY_ATTEMPTS = 3
    settings.MARKETDATA_BREAKER_THRESHOLD = 3
    settings.MARKETDATA_BREAKER_COOLDOWN_SECONDS = 60
    sleeps: list[float] = []
    monkeypatch.setattr("marketdata.resilience.time.sleep", sleeps.append)
    flaky = FlakyProvider()
    flaky.sleeps = sleeps
    monkeypatch.setattr("marketdata.providers._provider_class", lambda path: lambda: flaky)
    bars_collect(provider=flaky)  # history while it is up
    return flaky


def _age(symbol: str, seconds: float) -> None:
    """Pretend the last successful collection of `symbol` was `seconds` ago."""
    SymbolFeed.objects.filter(symbol=symbol).update(
        last_success_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_down_provider_keeps_serving_stored_data_flagged_stale(provider, reader, settings):
    before = Bar.objects.count()
    provider.down = True
    result = bars_collect(provider=provider)
    assert set(result.errors) == set(settings.PRIMARY_SYMBOLS) and not result.new_bars
    assert Bar.objects.count() == before
    for symbol in settings.PRIMARY_SYMBOLS:
        _age(symbol, settings.STALE_AFTER_SECONDS + 1)

    body = reader.get("/api/v1/stock-data").json()
    assert {r["symbol"] for r in body["stock_data"]} == set(settings.PRIMARY_SYMBOLS)
    assert all(
        r["stale"] and r["age_seconds"] > settings.STALE_AFTER_SECONDS for r in body["stock_data"]
    )
    history = reader.get("/api/v1/stock-data/SPY").json()
    assert history["stale"] is True and history["stock_data"]

    health = reader.get("/api/v1/health").json()["market_data"]
    assert health["stale"] is True
    assert health["symbols"]["SPY"]["stale"] is True
    assert "unreachable" in health["symbols"]["SPY"]["last_error"]
    assert health["provider"]["breaker"]["state"] == "open"


def test_retries_back_off_then_the_breaker_stops_calling(provider, settings):
    provider.down = True
    provider.calls = 0
    bars_collect(provider=provider, symbols=["SPY"])
    # Three attempts with full-jitter exponential backoff between them.
    assert provider.calls == 3
    assert len(provider.sleeps) == 2
    assert 0 <= provider.sleeps[0] <= settings.MARKETDATA_RETRY_BASE_SECONDS
    assert 0 <= provider.sleeps[1] <= 2 * settings.MARKETDATA_RETRY_BASE_SECONDS

    bars_collect(provider=provider, symbols=["SPY"])
    bars_collect(provider=provider, symbols=["SPY"])  # third failed collection: breaker opens
    assert provider.calls == 9
    breaker = ProviderBreaker.objects.get(provider="flaky")
    assert breaker.opened_until > timezone.now() + timedelta(seconds=40)

    provider.calls = 0
    for _ in range(5):
        result = bars_collect(provider=provider)
        assert "circuit breaker" in result.errors["SPY"]
    assert provider.calls == 0  # not hammered while open

    # Cooldown over, still down: one half-open try, then open again for longer.
    first_cooldown = breaker.opened_until - breaker.last_failure_at
    ProviderBreaker.objects.filter(pk=breaker.pk).update(opened_until=timezone.now())
    bars_collect(provider=provider, symbols=["SPY"])
    assert provider.calls == 3
    breaker.refresh_from_db()
    assert breaker.opened_until - breaker.last_failure_at > first_cooldown * 1.3


def test_recovery_when_the_provider_comes_back(provider, reader, settings):
    provider.down = True
    for _ in range(3):
        bars_collect(provider=provider)
    stored = Bar.objects.filter(symbol="SPY").count()
    provider.down = False
    ProviderBreaker.objects.filter(provider="flaky").update(opened_until=timezone.now())

    result = bars_collect(provider=provider)
    assert not result.errors and sorted(result.new_bars) == sorted(settings.PRIMARY_SYMBOLS)
    assert Bar.objects.filter(symbol="SPY").count() == stored + 1
    breaker = ProviderBreaker.objects.get(provider="flaky")
    assert breaker.failures == 0 and breaker.opened_until is None
    rows = reader.get("/api/v1/stock-data").json()["stock_data"]
    assert not any(r["stale"] for r in rows)
    health = reader.get("/api/v1/health").json()["market_data"]
    assert health["provider"]["breaker"]["state"] == "closed" and health["stale"] is False


def test_the_collect_task_never_raises(provider, settings, monkeypatch):
    from marketdata.tasks import collect_bars

    monkeypatch.setattr("strategies.tasks.run_strategies.delay", lambda *a, **k: None)
    provider.down = True
    out = collect_bars()
    assert set(out["errors"]) == set(settings.PRIMARY_SYMBOLS)

    def broken():
        raise RuntimeError("cannot even build the provider")

    monkeypatch.setattr("marketdata.providers._provider_class", lambda path: broken)
    out = collect_bars()
    assert all("provider unavailable" in e for e in out["errors"].values())


def test_malformed_bars_are_skipped_never_stored(provider, settings):
    from decimal import Decimal

    good = provider.fetch_bars("SPY", "5Min", *_next_window())
    bad = BarData(
        symbol="SPY",
        timeframe="5Min",
        timestamp=good[0].timestamp,
        open=Decimal("10"),
        high=Decimal("9"),  # high below open
        low=Decimal("8"),
        close=Decimal("8.5"),
        volume=1,
    )
    provider.fetch_bars = lambda *a, **k: [bad]
    result = bars_collect(provider=provider, symbols=["SPY"])
    assert not result.errors and not result.new_bars
    assert not Bar.objects.filter(symbol="SPY", close=Decimal("8.5")).exists()


def _next_window():
    from marketdata import calendar, selectors

    latest = selectors.latest_bar_time("SPY")
    nxt = calendar.next_bar_start(latest)
    return nxt, nxt + calendar.BAR


def test_exchange_clock_skips_collection_when_the_market_is_closed(provider, settings, monkeypatch):
    from datetime import UTC, datetime

    from marketdata import calendar

    settings.MARKET_CLOCK = "exchange"
    latest = Bar.objects.latest("timestamp").timestamp
    saturday = datetime.combine(
        latest.date() + timedelta(days=(5 - latest.weekday()) % 7 or 7),
        datetime.min.time(),
        tzinfo=UTC,
    ) + timedelta(hours=15)
    monkeypatch.setattr(calendar, "utcnow", lambda: saturday)
    provider.calls = 0
    result = bars_collect(provider=provider)
    assert result.skipped == "market closed" and provider.calls == 0

    settings.MARKETDATA_COLLECT_WHEN_CLOSED = True
    bars_collect(provider=provider)
    assert provider.calls > 0
