"""Work no request carries (Celery tasks, reconciliation) is recorded as the system's."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from audit.models import AuditEntry
from trading import services, tasks
from trading.models import Order, OrderStatus

pytestmark = pytest.mark.django_db


def test_a_reconcile_task_that_repairs_is_recorded_as_system(alpaca):
    tasks.reconcile()
    # Nothing to repair: a run every minute leaves no entry.
    assert not AuditEntry.objects.filter(action="orders.reconcile").exists()

    alpaca.fail_next("POST", "/v2/orders", status=503)
    order = services.order_submit(symbol="SPY", side="buy", qty=Decimal("1")).order
    Order.objects.filter(pk=order.pk).update(created_at=timezone.now() - timedelta(hours=3))
    tasks.reconcile()

    order.refresh_from_db()
    assert order.status == OrderStatus.REJECTED
    entry = AuditEntry.objects.get(action="orders.reconcile")
    assert (entry.actor, entry.via, entry.outcome) == ("system", "system", "ok")
    assert any(order.client_order_id in repair for repair in entry.details["repairs"])
    submitted = AuditEntry.objects.get(action="order.submit")
    assert (submitted.actor, submitted.via, submitted.target) == ("system", "system", str(order.pk))
