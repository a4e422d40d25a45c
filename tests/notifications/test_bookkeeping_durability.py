"""A delivery attempt's bookkeeping commits without waiting for the disk on PostgreSQL (so a burst
of deliveries does not queue order commits behind its fsyncs), and nothing else does."""

from __future__ import annotations

import pytest
from django.db import connection, transaction

from core.sql import commit_unflushed

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def synchronous_commit() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def test_only_the_bookkeeping_transaction_skips_the_flush():
    assert synchronous_commit() == "on"
    with commit_unflushed():
        assert synchronous_commit() == "off"
    assert synchronous_commit() == "on"  # SET LOCAL: gone with its transaction
    with transaction.atomic():
        assert synchronous_commit() == "on"


def test_a_failed_bookkeeping_transaction_leaves_the_connection_as_it_was():
    with pytest.raises(RuntimeError), commit_unflushed():
        raise RuntimeError("send failed")
    assert synchronous_commit() == "on"


def test_inside_a_callers_transaction_the_caller_keeps_its_durability():
    with transaction.atomic():
        with commit_unflushed():
            assert synchronous_commit() == "on"
        assert synchronous_commit() == "on"
