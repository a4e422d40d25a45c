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


def test_a_sender_connection_writes_bookkeeping_in_one_statement_and_others_stay_flushed():
    """The notification senders' connections skip the flush for their whole session, so each
    bookkeeping write is one statement with no transaction around it; a new connection, or any
    other thread's, is flushed as before."""
    import threading

    from django.db import close_old_connections, connections

    from core.sql import unflushed_session, unflushed_write

    unflushed_session()
    assert synchronous_commit() == "off"
    with unflushed_write():
        assert not connection.in_atomic_block  # no BEGIN, SET LOCAL, COMMIT around it
    with transaction.atomic(), unflushed_write():  # a caller's transaction: as before
        assert connection.in_atomic_block

    seen = []

    def other_thread() -> None:
        seen.append(synchronous_commit())
        with unflushed_write():
            seen.append((connection.in_atomic_block, synchronous_commit()))
        close_old_connections()
        connections.close_all()

    worker = threading.Thread(target=other_thread)
    worker.start()
    worker.join(10)
    assert seen == ["on", (True, "off")]

    connection.close()  # a new connection starts flushed, and unflushed_write is a transaction
    assert synchronous_commit() == "on"
    with unflushed_write():
        assert connection.in_atomic_block and synchronous_commit() == "off"
    assert synchronous_commit() == "on"
