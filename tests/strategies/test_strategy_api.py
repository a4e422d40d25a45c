"""The strategy API and /performance, as the WordPress plugin and a trader's script use them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from marketdata.services import bars_collect
from strategies.models import StrategyConfig
from trading.models import Order, Trade
from trading.services import order_submit, session_mark_to_market, trading_halt


@pytest.fixture
def config(make_config):
    return make_config(name="sma spy", symbols=["SPY"], params={"fast": 5, "slow": 20})


def test_list_shows_configs_and_every_plugin_with_schema_and_load_errors(
    reader, config, plugin_dir
):
    plugin_dir("broken.py", "raise RuntimeError('bad plugin')\n")
    body = reader.get("/api/v1/strategies").json()
    assert [s["name"] for s in body["strategies"]] == ["sma spy"]
    item = body["strategies"][0]
    assert item["status"] == "enabled" and item["load_error"] is None
    assert item["params_schema"]["fast"] == {
        "type": "integer",
        "default": 10,
        "minimum": 1,
        "maximum": 10000,
        "description": "fast SMA window in bars",
    }
    plugins = {p["name"]: p for p in body["plugins"] if p["name"]}
    assert {"sma_crossover", "rsi_mean_reversion", "bollinger_breakout", "momentum"} <= set(plugins)
    assert plugins["momentum"]["defaults"] == {"lookback": 20, "threshold": 0.0, "short": False}
    failed = [p for p in body["plugins"] if p["load_error"]]
    assert len(failed) == 1 and "bad plugin" in failed[0]["load_error"]


def test_detail_and_unknown_ids(reader, config, make_config):
    assert reader.get(f"/api/v1/strategies/{config.pk}").json()["params"] == {"fast": 5, "slow": 20}
    orphan = make_config(name="orphan", plugin="gone")
    body = reader.get(f"/api/v1/strategies/{orphan.pk}").json()
    assert body["status"] == "unavailable" and "'gone'" in body["load_error"]
    for bad in ("999999", "abc", "99999999999999999999999"):
        response = reader.get(f"/api/v1/strategies/{bad}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    assert reader.get("/api/v1/strategies/a.b").status_code == 404


def test_execute_needs_trade_scope_and_is_refused_while_halted(
    reader, trader, anonymous, session, market, config
):
    assert anonymous.post(f"/api/v1/strategies/{config.pk}/execute").status_code == 401
    assert reader.post(f"/api/v1/strategies/{config.pk}/execute").status_code == 403
    response = trader.post(f"/api/v1/strategies/{config.pk}/execute")
    assert response.status_code == 200
    body = response.json()
    assert body["decisions"][0]["symbol"] == "SPY"
    assert body["strategy"]["last_run_at"] is not None
    trading_halt(reason="maintenance")
    halted = trader.post(f"/api/v1/strategies/{config.pk}/execute")
    assert halted.status_code == 409
    assert halted.json()["error"]["code"] == "trading_halted"
    wp = trader.post(f"/wp-json/tradingrobotplug/v1/strategies/{config.pk}/execute")
    assert wp.status_code == 409


def test_execute_with_a_broken_plugin_is_a_clear_error_recorded_on_the_config(
    trader, session, market, fixed_target, make_config
):
    config = make_config(plugin="fixed_target", params={"explode": True})
    response = trader.post(f"/api/v1/strategies/{config.pk}/execute")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "strategy_failed"
    config.refresh_from_db()
    assert "boom" in config.last_error
    assert not Order.objects.exists()


def test_backtest_is_queued_as_a_research_run(reader, config, market):
    """The documented contract: 202 with the run's URL; the result is the run's (see
    tests/strategies/research/test_runs.py for the result itself)."""
    response = reader.post(
        f"/api/v1/strategies/{config.pk}/backtest",
        {"days": 20, "symbols": ["SPY", "QQQ"], "params": {"fast": 3}},
        format="json",
    )
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "queued" and response["Location"] == body["url"]
    assert body["inputs"]["params"] == {"fast": 3, "slow": 20}
    assert body["inputs"]["symbols"] == ["SPY", "QQQ"]
    config.refresh_from_db()
    assert config.params == {"fast": 5, "slow": 20}  # overrides are not saved


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"days": 20, "params": {"fast": 50}}, "params.fast"),
        ({"days": 20, "params": {"fast": "x"}}, "params.fast"),
        ({"days": 20, "params": {"nope": 1}}, "params.nope"),
        ({"days": 20, "symbols": ["not a ticker"]}, "symbols"),
    ],
)
def test_backtest_bad_input_is_a_400_naming_the_field(reader, config, body, field):
    response = reader.post(f"/api/v1/strategies/{config.pk}/backtest", body, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["details"]["field"] == field and error["message"].startswith(field)


@pytest.mark.parametrize(
    "body", [{}, {"days": 0}, {"days": "many"}, {"days": 5, "params": [1]}, {"days": 99999}]
)
def test_backtest_malformed_bodies_are_400(reader, config, body):
    response = reader.post(f"/api/v1/strategies/{config.pk}/backtest", body, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] in {"invalid_request", "invalid_strategy_config"}


def test_reload_needs_trade_scope_and_picks_up_new_files(reader, trader, plugin_dir):
    assert reader.post("/api/v1/strategies/reload").status_code == 403
    (plugin_dir.directory / "late.py").write_text(
        "import pandas as pd\nfrom strategies.base import Strategy\n\n"
        "class Late(Strategy):\n    name = 'late'\n\n"
        "    def generate_signals(self, bars, params):\n"
        "        return pd.Series(0.0, index=bars.index)\n"
    )
    body = trader.post("/api/v1/strategies/reload").json()
    assert "late" in {p["name"] for p in body["plugins"]}
    assert trader.get("/api/v1/strategies/reload").status_code == 405


def test_performance_uses_the_metrics_module_on_the_live_session(reader, session, market):
    empty = reader.get("/api/v1/performance").json()
    assert empty["metrics"]["trades"] == 0 and empty["equity_curve"] == []
    order_submit(symbol="SPY", side="buy", qty=Decimal("10"))
    session_mark_to_market()
    bars_collect()  # the next bar: a new price
    order_submit(symbol="SPY", side="sell", qty=Decimal("10"))
    session_mark_to_market()
    pnl = float(Trade.objects.get(side="sell").realized_pnl)
    assert pnl != 0
    body = reader.get("/api/v1/performance").json()
    assert body["session_id"] == session.pk
    assert len(body["equity_curve"]) == 2
    assert body["metrics"]["bars"] == 2
    assert body["metrics"]["final_equity"] == pytest.approx(body["equity_curve"][-1]["equity"])
    assert body["metrics"]["trades"] == 1
    assert body["metrics"]["expectancy"] == pytest.approx(pnl)
    assert body["metrics"]["win_rate"] == (1.0 if pnl > 0 else 0.0)
    wp = reader.get("/wp-json/tradingrobotplug/v1/performance").json()
    assert wp["metrics"] == body["metrics"]
    assert StrategyConfig.objects.count() == 0
