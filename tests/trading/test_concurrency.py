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
