"""Live execution: one order per config, symbol and bar; failures recorded and contained."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from marketdata.services import bars_collect
from strategies.exceptions import InvalidStrategyConfig
from strategies.models import StrategyConfig
from strategies.services import strategies_run_enabled, strategy_execute, strategy_run_now
from trading.exceptions import TradingHalted
from trading.models import Order, Position
from trading.services import session_ensure_running, trading_halt


def test_a_long_target_buys_once_per_bar_and_again_only_on_a_new_bar(
    session, market, fixed_target, make_config
):
    config = make_config(plugin="fixed_target", symbols=["SPY", "QQQ"])
    strategies_run_enabled()
    orders = Order.objects.filter(strategy_config=config)
    assert orders.count() == 2
    assert {o.side for o in orders} == {"buy"}
    assert all(o.client_order_id.startswith(f"s{config.pk}-") for o in orders)
    spy = Position.objects.get(symbol="SPY").qty
    assert spy > 0
    strategies_run_enabled()
    strategies_run_enabled()
    assert Order.objects.count() == 2
    # Flip the target: the next bar sells everything, exactly once.
    StrategyConfig.objects.filter(pk=config.pk).update(params={"target": 0.0})
    bars_collect()
    strategies_run_enabled()
    strategies_run_enabled()
    sells = Order.objects.filter(side="sell")
    assert sells.count() == 2
    assert Position.objects.get(symbol="SPY").qty == 0
    config.refresh_from_db()
    assert config.last_error == "" and config.last_signal["SPY"]["note"] == "no change"


def test_one_failing_strategy_never_blocks_the_others_and_its_error_is_recorded(
    session, market, fixed_target, make_config
):
    broken = make_config(name="a broken", plugin="fixed_target", params={"explode": True})
    missing = make_config(name="b missing", plugin="no_such_plugin")
    good = make_config(name="c good", plugin="fixed_target", symbols=["NVDA"])
    outcome = strategies_run_enabled()
    assert outcome["c good"] == "ok"
    assert Order.objects.filter(strategy_config=good).count() == 1
    broken.refresh_from_db()
    missing.refresh_from_db()
    assert "boom" in broken.last_error and broken.last_run_at is not None
    assert "'no_such_plugin' is not loaded" in missing.last_error
    assert not Order.objects.filter(strategy_config__in=[broken, missing]).exists()


def test_a_refused_order_on_one_symbol_does_not_stop_the_next(
    session, market, fixed_target, make_config
):
    config = make_config(plugin="fixed_target", symbols=["ZZZZ", "SPY"])
    strategies_run_enabled()
    config.refresh_from_db()
    assert config.last_signal["ZZZZ"]["note"] == "not enough bars"
    assert Order.objects.filter(symbol="SPY").count() == 1


def test_unsupported_timeframe_is_a_clear_error(session, market, make_config):
    config = make_config(timeframe="1Hour")
    with pytest.raises(InvalidStrategyConfig, match="timeframe: '1Hour' is not supported"):
        strategy_execute(config=config)
    strategies_run_enabled()
    config.refresh_from_db()
    assert "timeframe" in config.last_error
    assert not Order.objects.exists()


def test_run_now_is_refused_while_halted_and_the_enabled_run_sends_nothing(
    session, market, fixed_target, make_config
):
    config = make_config(plugin="fixed_target")
    trading_halt(reason="test")
    with pytest.raises(TradingHalted):
        strategy_run_now(config=config)
    assert strategies_run_enabled() == {}
    assert not Order.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_live_runs_send_one_order(fixed_target):
    session_ensure_running()
    bars_collect()
    config = StrategyConfig.objects.create(
        name="race", plugin="fixed_target", symbols=["SPY"], enabled=True
    )
    barrier = threading.Barrier(2)
    errors, notes = [], []

    def run():
        try:
            barrier.wait()
            notes.extend(d.note for d in strategy_execute(config=config))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    order = Order.objects.get(strategy_config=config)
    assert order.qty > 0 and order.status == "filled"
    assert Position.objects.get(symbol="SPY").qty == order.qty
    assert "ordered" in notes
