"""Protective exits declared by strategies: validation, the backtest simulation (off the fast
path) and live execution on the paper broker, and the two taking the same exits on the same
bars."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest

from core import protective as rules
from marketdata import calendar
from marketdata.selectors import bars_recent, last_price, latest_bar_time
from strategies import protective, registry
from strategies.engine import run_backtest
from strategies.exceptions import InvalidStrategyConfig
from strategies.services import strategy_execute
from strategies.validation import strategy_config_validate
from tests.helpers import next_bar
from trading.models import Order, OrderStatus, Position

TOGGLE = """
import numpy as np
import pandas as pd
from strategies.base import Strategy


class Toggle(Strategy):
    name = "toggle"
    params = {}

    def generate_signals(self, bars, params):
        slot = bars.index.as_unit("ns").asi8 // (300 * 10**9)
        return pd.Series(np.where((slot // 6) % 2 == 0, 1.0, 0.0), index=bars.index)
"""


@pytest.fixture
def toggle(plugin_dir):
    plugin_dir("toggle.py", TOGGLE)
    return registry.get_strategy("toggle")


# --- the shared rule ---------------------------------------------------------------------------


def test_a_path_crossing_both_exits_fills_the_stop():
    path = rules.PricePath(100, 110, 90, 100)
    hit = rules.exit_hit(side="sell", path=path, take_profit=105, stop=95)
    assert (hit.role, hit.price, hit.market) == ("stop_loss", 95, True)
    short = rules.exit_hit(side="buy", path=path, take_profit=95, stop=105)
    assert (short.role, short.price) == ("stop_loss", 105)


def test_an_open_through_an_exit_fills_it_at_the_open():
    gap_up = rules.exit_hit(
        side="sell", path=rules.PricePath(107, 110, 90, 100), take_profit=105, stop=95
    )
    assert (gap_up.role, gap_up.price, gap_up.market) == ("take_profit", 107, False)
    gap_down = rules.exit_hit(
        side="sell", path=rules.PricePath(93, 110, 90, 100), take_profit=105, stop=95
    )
    assert (gap_down.role, gap_down.price) == ("stop_loss", 93)


def test_a_single_price_is_a_path_too():
    assert rules.exit_hit(side="sell", path=rules.PricePath.tick(104), take_profit=105).role is None
    assert rules.exit_hit(side="sell", path=rules.PricePath.tick(105), take_profit=105).price == 105


def test_trailing_marks_move_after_the_check():
    hit, mark, level = rules.trailing_step(
        side="sell", mark=100, path=rules.PricePath(101, 110, 99.5, 109), trail_price=2
    )
    assert hit.role is None and mark == 110 and level == 108
    hit, mark, _ = rules.trailing_step(
        side="sell", mark=mark, path=rules.PricePath(109, 109, 107, 107), trail_price=2
    )
    assert (hit.role, hit.price) == ("stop_loss", 108)


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"stop_loss_pct": 0}, "params.stop_loss_pct"),
        ({"take_profit_pct": 100}, "params.take_profit_pct"),
        ({"trailing_pct": "2"}, "params.trailing_pct"),
        ({"trailing_pct": 2, "stop_loss_pct": 1}, "params.trailing_pct"),
    ],
)
def test_bad_exits_name_the_param(db, params, field):
    with pytest.raises(InvalidStrategyConfig) as refused:
        strategy_config_validate(
            plugin="sma_crossover", symbols=["SPY"], params=params, allocation=1
        )
    assert refused.value.field == field


def test_exits_are_kept_apart_from_the_strategys_own_params(db):
    cleaned = strategy_config_validate(
        plugin="sma_crossover",
        symbols=["SPY"],
        params={"stop_loss_pct": 2, "take_profit_pct": 3},
        allocation=1,
    )
    own, exits = protective.split(cleaned)
    assert "stop_loss_pct" not in own and exits == protective.Exits(2.0, 3.0, None)


def test_grid_searches_refuse_exits_they_would_not_simulate():
    from strategies.research.grid import search_build

    with pytest.raises(InvalidStrategyConfig) as refused:
        search_build(
            registry.get_strategy("sma_crossover"),
            base_params={"stop_loss_pct": 2},
            grid={"fast": [5, 10]},
        )
    assert refused.value.field == "params.stop_loss_pct"


# --- backtests ---------------------------------------------------------------------------------


def _walk(n=400, seed=7):
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.006, n)))
    open_ = np.concatenate(([100.0], close[:-1])) * (1 + rng.normal(0, 0.001, n))
    high = np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 0.004, n)))
    low = np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 0.004, n)))
    target = np.where((np.arange(n) // 20) % 2 == 0, 1.0, 0.0)
    return open_, high, low, close, target


def test_without_exits_the_backtest_is_the_fast_path_unchanged():
    open_, high, low, close, target = _walk()
    plain = run_backtest(open_, close, target, slippage_bps=5)
    declared_none = run_backtest(open_, close, target, slippage_bps=5, high=high, low=low)
    assert np.array_equal(plain.equity, declared_none.equity)


def test_a_stop_loss_cuts_trades_and_keeps_them_flat_until_the_signal_changes():
    open_, high, low, close, target = _walk()
    exits = protective.Exits(stop_loss_pct=0.5)
    plain = run_backtest(open_, close, target)
    stopped = run_backtest(open_, close, target, high=high, low=low, exits=exits)
    assert stopped.trades.shape[0] == plain.trades.shape[0]  # no re-entry on the same signal
    assert (stopped.trades["exit_index"] <= plain.trades["exit_index"]).all()
    cut = stopped.trades[stopped.trades["exit_index"] < plain.trades["exit_index"]]
    assert cut.shape[0] > 0
    for trade in cut:
        stop = float(protective.levels(close[trade["entry_index"] - 1], True, exits)[1])
        assert trade["exit_price"] <= stop + 1e-9  # at the stop, or a gap below it
    assert stopped.params["exits"] == {"stop_loss_pct": 0.5}


def test_a_take_profit_exits_at_its_limit_without_slippage():
    open_, high, low, close, target = _walk()
    exits = protective.Exits(take_profit_pct=0.4)
    result = run_backtest(open_, close, target, high=high, low=low, exits=exits, slippage_bps=10)
    plain = run_backtest(open_, close, target, slippage_bps=10)
    early = result.trades[result.trades["exit_index"] < plain.trades["exit_index"]]
    assert early.shape[0] > 0
    for trade in early:
        limit = float(protective.levels(close[trade["entry_index"] - 1], True, exits)[0])
        assert trade["exit_price"] >= limit - 1e-9


# --- live, and live against the backtest -------------------------------------------------------


def _plant(symbol, o, h, low, c):
    return next_bar(symbol, open_=o, high=h, low=low, close=c)


def _to_session_start(symbol):
    """Flat bars until the next bar opens a session, so the test's bars are one trading day."""
    while True:
        latest = latest_bar_time()
        if calendar.next_bar_start(latest) - latest > calendar.BAR:
            break
        price = last_price(symbol)
        _plant(symbol, price, price, price, price)


@pytest.mark.django_db
def test_live_bracket_entry_exit_and_no_reentry_after_a_stop(
    session, market, toggle, make_config, settings
):
    config = make_config(
        plugin="toggle", params={"stop_loss_pct": 1, "take_profit_pct": 2}, allocation=1
    )
    _to_session_start("SPY")
    # Step to a bar whose signal is long.
    while True:
        price = last_price("SPY")
        _plant("SPY", price, price, price, price)
        slot = int(pd.Timestamp(latest_bar_time()).value // (300 * 10**9))
        if (slot // 6) % 2 == 0 and slot % 6 < 3:
            break
    strategy_execute(config=config)
    entry = Order.objects.get(strategy_config=config, parent__isnull=True)
    assert entry.order_class == "bracket" and entry.status == OrderStatus.FILLED
    legs = {leg.leg_role: leg for leg in entry.legs.all()}
    assert legs["stop_loss"].stop_price == (price * Decimal("0.99")).quantize(Decimal("0.01"))
    assert legs["take_profit"].limit_price == (price * Decimal("1.02")).quantize(Decimal("0.01"))
    _plant("SPY", price, price, price * Decimal("0.95"), price * Decimal("0.96"))
    from trading.services import orders_process_bars

    orders_process_bars()
    strategy_execute(config=config)
    assert Position.objects.get(symbol="SPY").qty == 0
    assert config.orders.filter(parent__isnull=True).count() == 1  # stopped out: no re-entry
    assert strategy_execute(config=config)[0].note == "stopped out: waiting for a new signal"


@pytest.mark.django_db
def test_paper_and_backtest_take_the_same_exits_on_the_same_bars(
    session, market, toggle, make_config, settings
):
    from trading.services import orders_process_bars

    config = make_config(
        plugin="toggle", params={"stop_loss_pct": 0.6, "take_profit_pct": 0.8}, allocation=1
    )
    _to_session_start("SPY")
    rng = np.random.default_rng(3)
    price = float(last_price("SPY"))
    _plant("SPY", price, price, price, price)  # the session's first bar: the first decision
    first = latest_bar_time()
    strategy_execute(config=config)
    for _ in range(60):
        o = round(price * (1 + rng.normal(0, 0.001)), 2)
        c = round(o * (1 + rng.normal(0, 0.005)), 2)
        h = round(max(o, c) * (1 + abs(rng.normal(0, 0.004))), 2)
        low = round(min(o, c) * (1 - abs(rng.normal(0, 0.004))), 2)
        _plant("SPY", o, h, low, c)
        price = c
        orders_process_bars()
        strategy_execute(config=config)

    bars = bars_recent("SPY", 200)
    bars = bars[bars.index >= pd.Timestamp(first)]
    target = toggle().generate_signals(bars, {}).to_numpy()
    exits = protective.Exits(stop_loss_pct=0.6, take_profit_pct=0.8)
    arrays = {k: bars[k].to_numpy() for k in ("open", "high", "low", "close")}
    slip = float(settings.PAPER_SLIPPAGE_BPS)
    result = run_backtest(
        arrays["open"], arrays["close"], target, high=arrays["high"], low=arrays["low"],
        exits=exits, slippage_bps=slip, timestamps=bars.index,
    )  # fmt: skip
    _held, exit_open = protective.apply_exits(
        arrays["open"], arrays["high"], arrays["low"], arrays["close"],
        np.concatenate(([0.0], target[:-1])), exits, slip / 1e4,
    )  # fmt: skip
    slots = set(np.flatnonzero(exit_open != arrays["open"]).tolist())
    backtest_exits = sorted(
        (bars.index[int(t["exit_index"]) - 1].to_pydatetime(), round(float(t["exit_price"]), 3))
        for t in result.trades
        if int(t["exit_index"]) in slots
    )
    paper_exits = sorted(
        (leg.filled_at - timedelta(minutes=5), round(float(leg.filled_avg_price), 3))
        for leg in Order.objects.filter(
            strategy_config=config, parent__isnull=False, status=OrderStatus.FILLED
        )
    )
    assert len(paper_exits) >= 2, "the path should trigger some exits"
    assert paper_exits == backtest_exits
    entries = sorted(
        datetime.strptime(o.client_order_id.split("-")[-1], "%Y%m%dT%H%M").replace(
            tzinfo=first.tzinfo
        )
        for o in Order.objects.filter(strategy_config=config, order_class="bracket", parent=None)
    )
    assert entries == sorted(
        bars.index[int(t["entry_index"]) - 1].to_pydatetime() for t in result.trades
    )


@pytest.mark.django_db
def test_live_trailing_stop_follows_a_filled_entry_and_the_exit_cancels_it(
    session, market, fixed_target, make_config
):
    from strategies.models import StrategyConfig

    config = make_config(plugin="fixed_target", params={"trailing_pct": 2}, allocation=1)
    strategy_execute(config=config)
    trailing = Order.objects.get(strategy_config=config, type="trailing_stop")
    held = Position.objects.get(symbol="SPY").qty
    assert trailing.side == "sell" and trailing.qty == held and trailing.status == "accepted"
    assert trailing.trail_percent == Decimal("2") and trailing.hwm == last_price("SPY")
    strategy_execute(config=config)  # holding: no second trailing stop
    assert Order.objects.filter(strategy_config=config, type="trailing_stop").count() == 1
    # The signal goes flat: the trailing stop is canceled before the position is closed.
    StrategyConfig.objects.filter(pk=config.pk).update(params={"target": 0.0, "trailing_pct": 2})
    price = last_price("SPY")
    next_bar("SPY", open_=price, high=price, low=price, close=price)
    config.refresh_from_db()
    strategy_execute(config=config)
    trailing.refresh_from_db()
    assert trailing.status == OrderStatus.CANCELED
    assert Position.objects.get(symbol="SPY").qty == 0
