"""A collection plus a strategy run: exactly one order, one trade, one position change; running
it again for the same bar creates nothing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from marketdata.services import bars_collect
from strategies.models import StrategyConfig
from strategies.services import strategies_run_enabled
from trading.models import Order, Position, Trade


@pytest.fixture
def config(session):
    return StrategyConfig.objects.create(
        name="test sma",
        plugin="sma_crossover",
        symbols=["NVDA"],
        params={"fast": 2, "slow": 5},
        allocation=Decimal("0.5"),
        enabled=True,
    )


def test_collect_then_run_trades_once_per_bar(config):
    bars_collect()
    # Advance the simulated market until the crossover asks for a position change.
    for _ in range(200):
        before = Order.objects.count()
        bars_collect()
        strategies_run_enabled()
        if Order.objects.count() > before:
            break
    else:
        pytest.fail("the SMA(2/5) crossover never traded in 200 bars")

    assert Order.objects.count() == before + 1
    order = Order.objects.latest("created_at")
    assert order.status == "filled" and order.source == "strategy"
    assert order.client_order_id.startswith(f"s{config.pk}-NVDA-")
    assert Trade.objects.filter(order=order).count() == 1
    position = Position.objects.get(symbol="NVDA")
    snapshot = (Order.objects.count(), Trade.objects.count(), position.qty, position.updated_at)

    # The same bar again: nothing new, whether the run repeats or the config's own state is reset.
    strategies_run_enabled()
    StrategyConfig.objects.filter(pk=config.pk).update(last_signal={})
    strategies_run_enabled()
    position.refresh_from_db()
    assert (
        Order.objects.count(),
        Trade.objects.count(),
        position.qty,
        position.updated_at,
    ) == snapshot
    config.refresh_from_db()
    assert config.last_error == ""
    assert config.last_signal["NVDA"]["note"] == "no change"
