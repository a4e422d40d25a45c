from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection

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


def _run_threads(targets):
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
    errors = _run_threads(targets)

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

    errors = _run_threads([lambda: services.order_resubmit(order_id=order.pk)] * 10)

    assert errors == []
    assert len(calls) == 2
    assert Trade.objects.count() == 1
    order.refresh_from_db()
    assert order.status == "filled"
