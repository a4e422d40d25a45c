"""A Celery worker keeps its database connection from one task to the next (by CONN_MAX_AGE, as a
web process does between requests), instead of opening a new PostgreSQL connection for every
task, which cost the `notify` worker most of its CPU per delivery; a broken one is replaced."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from celery.fixups.django import DjangoWorkerFixup
from django.db import OperationalError, connection

from tradingrobot.celery import app, connections_by_age

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _run_tasks(fixup: DjangoWorkerFixup, count: int) -> set[int]:
    """What a worker thread does around `count` tasks; the PostgreSQL backends they used."""
    task = SimpleNamespace(request=SimpleNamespace(is_eager=False))
    backends = set()
    for _ in range(count):
        fixup.on_task_prerun(sender=task)
        connections_by_age(sender=task)
        with connection.cursor() as cursor:  # the task's work
            cursor.execute("SELECT pg_backend_pid()")
            backends.add(cursor.fetchone()[0])
        fixup.on_task_postrun(sender=task)
        connections_by_age(sender=task)
    return backends


@pytest.fixture
def conn_max_age():
    saved = connection.settings_dict["CONN_MAX_AGE"]

    def set_to(seconds: int) -> None:
        connection.close()
        connection.settings_dict["CONN_MAX_AGE"] = seconds

    yield set_to
    set_to(saved)


def test_tasks_share_one_connection_while_conn_max_age_allows(conn_max_age):
    conn_max_age(60)
    assert len(_run_tasks(DjangoWorkerFixup(app), 20)) == 1
    conn_max_age(0)  # the default: a connection per task, as Django does per request
    assert len(_run_tasks(DjangoWorkerFixup(app), 3)) == 3


def test_a_connection_the_server_dropped_is_replaced_before_the_next_task(conn_max_age):
    conn_max_age(60)
    fixup = DjangoWorkerFixup(app)
    [first] = _run_tasks(fixup, 1)
    # The server ends it (a restart, an idle timeout); Django notes the failed query.
    with pytest.raises(OperationalError), connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
    [second] = _run_tasks(fixup, 1)
    assert second != first
