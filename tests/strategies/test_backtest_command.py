from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from marketdata.models import Bar


def run(*args) -> str:
    out, err = StringIO(), StringIO()
    call_command("backtest", *args, stdout=out, stderr=err)
    return out.getvalue()


def test_backtest_fetches_missing_history_without_storing_it_and_prints_a_table(db):
    output = run("sma_crossover", "--symbols", "SPY,QQQ", "--days", "30", "--param", "fast=4")
    assert "Sharpe" in output and "Max drawdown" in output and "Win rate" in output
    assert "Portfolio" in output and "SPY" in output and "QQQ" in output
    assert "bars from synthetic" in output
    assert not Bar.objects.exists()


def test_backtest_uses_the_database_when_it_holds_the_range(market):
    result = json.loads(run("momentum", "--symbols", "SPY", "--days", "1", "--json"))
    assert result["per_symbol"]["SPY"]["data_source"] == "database"
    assert result["params"] == {"lookback": 20, "threshold": 0.0, "short": False}


def test_same_input_same_result(db):
    args = ("rsi_mean_reversion", "--symbols", "NVDA", "--days", "20", "--json")
    assert json.loads(run(*args))["metrics"] == json.loads(run(*args))["metrics"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope",), "no strategy plugin or config named 'nope'"),
        (("sma_crossover", "--param", "fast=50"), "params.fast: must be smaller than slow"),
        (("sma_crossover", "--param", "fast"), "expected key=value"),
        (("sma_crossover", "--days", "0"), "days: must be an integer"),
    ],
)
def test_bad_arguments_are_clear_errors(db, args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)


def test_a_provider_failure_fails_the_run_with_a_clear_reason(reader, make_config, monkeypatch):
    from marketdata.providers.synthetic import SyntheticProvider
    from strategies.research.services import run_execute

    def down(self, *args, **kwargs):
        raise ConnectionError("upstream down")

    monkeypatch.setattr(SyntheticProvider, "fetch_bars", down)
    config = make_config()
    response = reader.post(f"/api/v1/strategies/{config.pk}/backtest", {"days": 5}, format="json")
    assert response.status_code == 202
    run = run_execute(run_id=response.json()["id"])
    assert run.status == "failed" and run.error.startswith("marketdata_unavailable")


def test_stored_bars_load_exactly_as_the_provider_gave_them(market):
    """The database path (epoch seconds, floats) and the provider path agree bar for bar."""
    import pandas as pd

    from marketdata.providers import get_provider
    from strategies.selectors import bars_for_backtest

    stored = Bar.objects.filter(symbol="SPY", timeframe="5Min").order_by("timestamp")
    start, end = stored.first().timestamp, stored.last().timestamp + pd.Timedelta(minutes=5)
    frame, source = bars_for_backtest("SPY", "5Min", start, end)
    assert source == "database"
    fetched = get_provider().fetch_bars("SPY", "5Min", start, end)
    assert list(frame.index) == [b.timestamp for b in fetched]
    assert str(frame.index.tz) == "UTC"
    assert frame["close"].tolist() == [float(b.close) for b in fetched]
    assert frame["volume"].tolist() == [float(b.volume) for b in fetched]
