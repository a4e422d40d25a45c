"""The audit entry's hand-written INSERT (core.sql.insert_new) stores exactly what the ORM's
save would, on SQLite and PostgreSQL, and sends the same signals."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.db.models.signals import post_save, pre_save

from audit.models import AuditEntry
from core import sql

pytestmark = pytest.mark.django_db


def stored(entry: AuditEntry) -> dict:
    row = AuditEntry.objects.get(pk=entry.pk)
    return {
        f.attname: getattr(row, f.attname)
        for f in AuditEntry._meta.concrete_fields
        if f.name != "id"
    }


def test_insert_new_stores_what_the_orm_stores_and_signals_the_same(django_user_model):
    user = django_user_model.objects.create_user("ann")
    fields = dict(
        at=datetime(2024, 1, 2, 15, 30, 0, 123456, tzinfo=UTC),
        actor="ann",
        user_id=user.pk,
        via="admin",
        action="order.submit",
        target="a-target",
        details={"qty": str(Decimal("1.5")), "nested": {"list": [1, None, "é"]}},
        outcome="refused",
        code="trading_halted",
    )
    heard = []

    def listen(signal_name):
        def receiver(sender, instance, **kwargs):
            heard.append((signal_name, kwargs.get("created"), instance._state.adding))

        return receiver

    on_pre, on_post = listen("pre"), listen("post")
    pre_save.connect(on_pre, sender=AuditEntry)
    post_save.connect(on_post, sender=AuditEntry)
    try:
        ours = AuditEntry(**fields)
        sql.insert_new(ours)
        ours_heard, heard[:] = list(heard), []
        orm = AuditEntry(**fields)
        orm.save()
    finally:
        pre_save.disconnect(on_pre, sender=AuditEntry)
        post_save.disconnect(on_post, sender=AuditEntry)
    assert ours.pk is not None and orm.pk == ours.pk + 1
    assert stored(ours) == stored(orm) == {**fields, "api_key_id": None}
    assert ours_heard == heard == [("pre", None, True), ("post", True, False)]
    # The inserted instance is a saved one: saving it again is an update, which is refused.
    assert not ours._state.adding


def test_insert_new_applies_field_defaults():
    entry = AuditEntry(actor="system", via="system", action="trading.halt")
    sql.insert_new(entry)
    row = AuditEntry.objects.get(pk=entry.pk)
    assert (row.details, row.outcome, row.code, row.target) == ({}, "ok", "", "")
    assert row.at == entry.at
