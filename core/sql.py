"""Hand-written SQL for the few statements on the order hot path.

Every order runs about fifteen statements. Django's ORM spends 0.3 to 0.8 ms of CPU building
each one, against about 0.1 ms for the database to answer, so the per-order reads the trading
gate, the market reading, the risk checks and the fill's row locks do are written out here as
plain SQL that runs unchanged on PostgreSQL and SQLite. Their columns are converted exactly as
the ORM converts them (Decimal quantized to the field's places, aware datetimes, UUIDs), so a
caller cannot tell the difference (tests/trading/test_hot_path_sql.py compares them).

`commit_unflushed()` is a transaction that does not wait for the disk (for bookkeeping a crash
may lose without harm: the notification delivery log); `unflushed_write()` is one such write, a
single round trip on a connection `unflushed_session()` set so.

`save_existing` is `instance.save()` for a row that exists (the order and position of a fill,
locked by the caller): the same auto_now stamps and the same pre_save/post_save signals, so the
API cache's invalidation (tradingrobot.api.apps) holds on this path too.

Everything else stays on the ORM.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from django.db import DatabaseError, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models.signals import post_save, pre_save

Converters = list[tuple[int, list, Any]]
_converters: dict[tuple[str, tuple[models.Field, ...]], Converters] = {}


def _column_converters(
    connection: BaseDatabaseWrapper, fields: Sequence[models.Field]
) -> Converters:
    """What the ORM's compiler would apply to each column of `fields` (cached per backend)."""
    key = (connection.vendor, tuple(fields))
    found = _converters.get(key)
    if found is None:
        found = []
        for index, field in enumerate(fields):
            column = field.get_col(field.model._meta.db_table)
            steps = connection.ops.get_db_converters(column) + field.get_db_converters(connection)
            if steps:
                found.append((index, steps, column))
        _converters[key] = found
    return found


def select(statement: str, params: Sequence[Any], fields: Sequence[models.Field]) -> list[tuple]:
    """Run a SELECT whose columns hold the values of `fields`, converted as the ORM would."""
    connection = transaction.get_connection()
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    converters = _column_converters(connection, fields)
    if not converters or not rows:
        return rows
    converted = []
    for row in rows:
        values = list(row)
        for index, steps, column in converters:
            for step in steps:
                values[index] = step(values[index], column, connection)
        converted.append(tuple(values))
    return converted


def select_one(
    statement: str, params: Sequence[Any], fields: Sequence[models.Field]
) -> tuple | None:
    rows = select(statement, params, fields)
    return rows[0] if rows else None


def fields_of(model: type[models.Model], *names: str) -> list[models.Field]:
    return [model._meta.get_field(name) for name in names]


def db_value(model: type[models.Model], name: str, value: Any) -> Any:
    """`value` as the database stores `model.name` (a UUID is hex text on SQLite, say)."""
    return model._meta.get_field(name).get_db_prep_value(value, transaction.get_connection())


def for_update() -> str:
    """The row-lock clause, or nothing on a backend without one (SQLite locks the database)."""
    return " FOR UPDATE" if transaction.get_connection().features.has_select_for_update else ""


def instance(
    model: type[models.Model], statement: str, params: Sequence[Any]
) -> models.Model | None:
    """The `model` row a `SELECT <columns(model)> ...` returns first, or None."""
    row = select_one(statement, params, model._meta.concrete_fields)
    return None if row is None else instance_from_row(model, row)


def instance_from_row(model: type[models.Model], row: Sequence[Any]) -> models.Model:
    """A `model` instance from converted values of its concrete fields, in field order."""
    names = [field.attname for field in model._meta.concrete_fields]
    return model.from_db(transaction.get_connection().alias, names, row)


def quote(name: str) -> str:
    return transaction.get_connection().ops.quote_name(name)


def columns(model: type[models.Model], alias: str = "") -> str:
    """The concrete columns of `model` in field order, as `instance` reads them."""
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{quote(field.column)}" for field in model._meta.concrete_fields)


_updates: dict[tuple[str, type[models.Model]], str] = {}


def save_existing(instance: models.Model) -> None:
    """`instance.save()` for a row known to exist: every concrete field is written, auto_now
    fields are stamped and the save signals are sent. Raises DatabaseError if the row is gone
    (where `save()` would insert it again)."""
    model = type(instance)
    meta = model._meta
    connection = transaction.get_connection()
    pre_save.send(
        sender=model, instance=instance, raw=False, using=connection.alias, update_fields=None
    )
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    statement = _updates.get((connection.vendor, model))
    if statement is None:
        assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
        statement = (
            f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"
        )
        _updates[(connection.vendor, model)] = statement
    values = [
        field.get_db_prep_save(field.pre_save(instance, False), connection) for field in fields
    ]
    with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:
        cursor.execute(statement, [*values, meta.pk.get_db_prep_value(instance.pk, connection)])
        if cursor.rowcount != 1:
            raise DatabaseError(f"{meta.label} {instance.pk} no longer exists")
    instance._state.adding = False
    instance._state.db = connection.alias
    post_save.send(
        sender=model,
        instance=instance,
        created=False,
        update_fields=None,
        raw=False,
        using=connection.alias,
    )


_inserts: dict[tuple[str, type[models.Model]], str] = {}


def insert_new(instance: models.Model) -> None:
    """`instance.save(force_insert=True)` for a model with an auto-increment primary key: every
    other concrete field is written (defaults and auto_now_add applied by `pre_save`), the new
    id is set on the instance, and the save signals are sent."""
    model = type(instance)
    meta = model._meta
    connection = transaction.get_connection()
    pre_save.send(
        sender=model, instance=instance, raw=False, using=connection.alias, update_fields=None
    )
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    statement = _inserts.get((connection.vendor, model))
    if statement is None:
        names = ", ".join(quote(field.column) for field in fields)
        marks = ", ".join(["%s"] * len(fields))
        statement = f"INSERT INTO {quote(meta.db_table)} ({names}) VALUES ({marks})"
        if connection.features.can_return_columns_from_insert:
            statement += f" RETURNING {quote(meta.pk.column)}"
        _inserts[(connection.vendor, model)] = statement
    values = [
        field.get_db_prep_save(field.pre_save(instance, True), connection) for field in fields
    ]
    with transaction.mark_for_rollback_on_error(), connection.cursor() as cursor:
        cursor.execute(statement, values)
        if connection.features.can_return_columns_from_insert:
            new_id = cursor.fetchone()[0]
        else:
            new_id = connection.ops.last_insert_id(cursor, meta.db_table, meta.pk.column)
    instance.pk = new_id
    instance._state.adding = False
    instance._state.db = connection.alias
    post_save.send(
        sender=model,
        instance=instance,
        created=True,
        update_fields=None,
        raw=False,
        using=connection.alias,
    )


@contextmanager
def commit_unflushed() -> Iterator[None]:
    """A transaction whose COMMIT does not wait for its write-ahead log to reach the disk
    (PostgreSQL's `synchronous_commit = off`, for this transaction only; elsewhere a plain
    transaction). Inside a caller's transaction it is a savepoint: the caller's commit decides.

    For writes a database crash may lose without harm, never for money or orders: the crash
    loses at most the last fraction of a second of them (PostgreSQL still never corrupts or
    reorders). What it buys: each synchronous commit waits for an fsync (about 3 ms on this
    machine's disk), and every commit's fsync queues behind the others', so a burst of
    bookkeeping commits used to delay order commits (bench/notify.py, issue 16).
    """
    connection = transaction.get_connection()
    outermost = not connection.in_atomic_block  # never relax a caller's transaction
    with transaction.atomic():
        if outermost and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")
        yield


# The DB-API connection `unflushed_session` set, on Django's connection wrapper.
_UNFLUSHED_SESSION = "_unflushed_session"


def unflushed_session() -> None:
    """Set this thread's PostgreSQL connection to commit without waiting for the disk for as long
    as it lives (session-level `synchronous_commit = off`), so that `unflushed_write` needs no
    transaction of its own. Only for threads that write nothing but bookkeeping (the notification
    senders, notifications.inbox); they call it before each use, as a new connection starts
    flushed again. Elsewhere (SQLite, inside a transaction), nothing."""
    connection = transaction.get_connection()
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return
    connection.ensure_connection()
    if getattr(connection, _UNFLUSHED_SESSION, None) is connection.connection:
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    setattr(connection, _UNFLUSHED_SESSION, connection.connection)


@contextmanager
def unflushed_write() -> Iterator[None]:
    """Around one write statement that need not wait for the disk: on a connection set by
    `unflushed_session` it commits by itself (one round trip, where `commit_unflushed` takes
    four: BEGIN, SET LOCAL, the statement, COMMIT); anywhere else it is `commit_unflushed()`."""
    connection = transaction.get_connection()
    if (
        not connection.in_atomic_block
        and connection.connection is not None
        and getattr(connection, _UNFLUSHED_SESSION, None) is connection.connection
    ):
        yield
        return
    with commit_unflushed():
        yield
