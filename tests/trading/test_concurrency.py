from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

from tests.helpers import run_together
from trading import services
from trading.brokers import paper
from trading.models import Order, Trade

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_twenty_identical_submissions_at_once_make_one_order_and_one_broker_call(monkeypatch):
    from marketdata.services import bars_collect

    services.session_ensure_running()
    bars_collect()
    calls = []
    original = paper.PaperBroker.submit_order

    async def counting(self, request):
        calls.append(request.client_order_id)
        return await original(self, request)

    monkeypatch.setattr(paper.PaperBroker, "submit_order", counting)
    barrier = threading.Barrier(20)
    results, errors = [], []

    def submit():
        try:
            barrier.wait()
            results.append(
                services.order_submit(
                    symbol="SPY", side="buy", qty=Decimal("1"), client_order_id="same-key"
                )
            )
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert Order.objects.filter(client_order_id="same-key").count() == 1
    assert calls == ["same-key"]
    assert Trade.objects.count() == 1
    assert sum(r.created for r in results) == 1
    assert {r.order.pk for r in results} == {Order.objects.get().pk}


def test_halt_racing_submissions_leaves_no_open_order():
    from marketdata.selectors import last_price
    from marketdata.services import bars_collect
    from trading.exceptions import TradingHalted
    from trading.models import OPEN_STATUSES

    services.session_ensure_running()
    bars_collect()
    price = last_price("SPY")

    def submit(i):
        def run():
            try:
                services.order_submit(
                    symbol="SPY",
                    side="buy",
                    qty=Decimal("1"),
                    type="limit",
                    limit_price=price - 1,
                    client_order_id=f"race-{i}",
                )
            except TradingHalted:
                pass

        return run

    targets = [submit(i) for i in range(12)]
    targets.insert(6, lambda: services.trading_halt(reason="race"))
    errors = run_together(targets)

    assert errors == []
    # Whatever got in before the switch, nothing is left working at the broker.
    assert not Order.objects.filter(status__in=OPEN_STATUSES).exists()


def test_concurrent_retries_of_one_pending_order_send_it_once(monkeypatch):
    from marketdata.services import bars_collect
    from trading.brokers.base import BrokerError

    services.session_ensure_running()
    bars_collect()
    calls = []
    original = paper.PaperBroker.submit_order

    async def failing_once(self, request):
        calls.append(request.client_order_id)
        if len(calls) == 1:
            raise BrokerError("timeout", permanent=False, code="broker_unavailable")
        return await original(self, request)

    monkeypatch.setattr(paper.PaperBroker, "submit_order", failing_once)
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    assert order.status == "pending_submit"

    errors = run_together([lambda: services.order_resubmit(order_id=order.pk)] * 10)

    assert errors == []
    assert len(calls) == 2
    assert Trade.objects.count() == 1
    order.refresh_from_db()
    assert order.status == "filled"


def test_concurrent_fills_of_one_symbol_book_every_share_and_every_dollar():
    """Twelve market orders at once, buys and sells of SPY and buys of QQQ: each fill takes
    its position's row lock and adds to the session's cash atomically, so none is lost."""
    from marketdata.selectors import last_price
    from marketdata.services import bars_collect
    from trading.models import OrderStatus, Position, TradingSession

    session = services.session_ensure_running()
    bars_collect()
    services.order_submit(symbol="SPY", side="buy", qty=Decimal("10"), client_order_id="seed")
    start_cash = TradingSession.objects.get(pk=session.pk).cash
    spy, qqq = last_price("SPY"), last_price("QQQ")
    orders = [("SPY", "buy", "3")] * 5 + [("SPY", "sell", "2")] * 4 + [("QQQ", "buy", "1")] * 3

    def submit(i, symbol, side, qty):
        return lambda: services.order_submit(
            symbol=symbol, side=side, qty=Decimal(qty), client_order_id=f"fill-{i}"
        )

    errors = run_together([submit(i, *order) for i, order in enumerate(orders)])

    assert errors == []
    filled = Order.objects.filter(client_order_id__startswith="fill-", status=OrderStatus.FILLED)
    assert filled.count() == 12
    assert Trade.objects.filter(order__in=filled).count() == 12
    held = dict(Position.objects.filter(session=session).values_list("symbol", "qty"))
    assert held == {"SPY": Decimal("10") + 5 * 3 - 4 * 2, "QQQ": Decimal("3")}
    # No slippage or fee by default: cash moves by exactly the notional of every fill.
    spent = 5 * 3 * spy - 4 * 2 * spy + 3 * qqq
    assert TradingSession.objects.get(pk=session.pk).cash == start_cash - spent
