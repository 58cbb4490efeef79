"""Plain statements for hot paths, with the ORM's columns and conversions.

On a request behind every keystroke (the scene editor) or a ledger operation, a few small queries cost
more to build through the ORM than to run. Those statements are written out with the tables and column
lists taken from the models' metadata, and their rows become model instances through the fields' own
converters, so what the rest of the code gets is what the ORM would have loaded. Used by the scene
editor (planner) and the ledger's hot path (ledger/services/_sql.py).
"""

from functools import cache

import psycopg
from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import Model, signals
from django.db.models.base import ModelState

# The largest id a primary key (bigint) can hold: the ORM answers "no such row" past it, and so must we.
MAX_ID = 2**63 - 1


@cache
def columns(model: type[Model]) -> str:
    """The model's columns, qualified by its table, in field order: what `as_model` reads back."""
    table, quote = model._meta.db_table, connection.ops.quote_name
    return ", ".join(f"{table}.{quote(field.column)}" for field in model._meta.concrete_fields)


def as_models(row, *models: type[Model]) -> tuple:
    """The row's leading columns as instances of these models (`columns(model)` of each, in turn), then
    its other values. A model whose primary key is NULL (no row in an outer join) comes as None."""
    loaded, start = [], 0
    for model in models:
        end = start + len(model._meta.concrete_fields)
        loaded.append(None if row[start] is None else as_model(model, row[start:end]))
        start = end
    return (*loaded, *row[start:])


def as_model(model: type[Model], values) -> Model:
    """A row of `columns(model)` as the model instance the ORM would have loaded."""
    attnames, converters = _converters(model)
    pairs = zip(converters, values, strict=True)
    return model.from_db(connection.alias, attnames, [v if c is None else c(v) for c, v in pairs])


def loaded(model: type[Model], **values) -> Model:
    """The instance the ORM would have loaded from a row of these values (fields by attribute name; a
    field not given is deferred, read from the database if used), for a row the caller has just written
    or read itself. Built as unpickling builds one (`Model.__setstate__`): the values go straight into
    the instance, without `Model.__init__`'s work per field, which on the hot paths (a ledger call, a
    take's claim) cost more than the rest of the client side."""
    if not values.keys() <= _attnames(model):
        raise TypeError(f"{model.__name__} has no field {sorted(values.keys() - _attnames(model))}")
    if signals.pre_init.has_listeners(model) or signals.post_init.has_listeners(model):
        return model.from_db(DEFAULT_DB_ALIAS, list(values), list(values.values()))
    instance = model.__new__(model)
    instance.__dict__.update(values)
    state = instance._state = ModelState()
    state.adding, state.db = False, DEFAULT_DB_ALIAS
    return instance


@cache
def _attnames(model: type[Model]) -> frozenset[str]:
    return frozenset(field.attname for field in model._meta.concrete_fields)


@cache
def _converters(model: type[Model]) -> tuple[list[str], list]:
    """Per field: its attribute name, and what turns the database's value into the field's (None: nothing)."""
    attnames, converters = [], []
    for field in model._meta.concrete_fields:
        column = field.get_col(model._meta.db_table)
        steps = [*connection.ops.get_db_converters(column), *column.get_db_converters(connection)]
        attnames.append(field.attname)
        converters.append(_chain(steps, column) if steps else None)
    return attnames, converters


def update(row: Model, names: list[str]) -> None:
    """Write these fields of the row, as `row.save(update_fields=names)` would (for a model without signals
    or fields that change on save), in one UPDATE."""
    meta, quote = row._meta, connection.ops.quote_name
    fields = [meta.get_field(name) for name in names]
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
    params = [field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {meta.db_table} SET {assignments} WHERE {quote(meta.pk.column)} = %s", [*params, row.pk]
        )


def prepared(sql: str, params: list, *, pipeline: list[tuple[str, list]] = ()) -> list[tuple]:
    """Run a statement on PostgreSQL as a prepared statement, with its parameters bound by the server, and
    return its rows. For the few statements a busy worker runs thousands of times per connection (the
    ledger's calls, a take's claim and settlement): the server parses and plans each once per
    connection, where the ORM's client-side binding has it parse and plan every call anew.

    `pipeline` statements run first, in the same round trip and in order (each sees what the one before
    it did); their rows are dropped. Outside a transaction block the statements are one transaction, which
    the round trip's single sync commits (or an error rolls back whole); inside the caller's, an error
    marks that transaction for rollback, as a failed ORM write would. The cursor is kept with the
    connection, so a call costs one round trip and no set-up."""
    return prepared_many([*pipeline, (sql, params)])[-1]


def prepared_many(statements: list[tuple[str, list]]) -> list[list[tuple]]:
    """`prepared` for several statements sent in one round trip, in order; returns the rows of each."""
    db = connections[DEFAULT_DB_ALIAS]
    if db.in_atomic_block:
        with transaction.atomic(savepoint=False):
            return _run_prepared(db, statements)
    return _run_prepared(db, statements)


def _run_prepared(db, statements: list[tuple[str, list]]) -> list[list[tuple]]:
    db.ensure_connection()
    cursors = getattr(db, "_prepared_cursors", None)
    if not cursors or cursors[0].connection is not db.connection:
        cursors = db._prepared_cursors = [psycopg.Cursor(db.connection)]
    while len(cursors) < len(statements):  # one per statement: each keeps its own rows
        cursors.append(psycopg.Cursor(db.connection))
    with db.wrap_database_errors:
        if len(statements) == 1:
            (sql, params), cursor = statements[0], cursors[0]
            cursor.execute(sql, params, prepare=True)
            return [cursor.fetchall()]
        with db.connection.pipeline():
            for (sql, params), cursor in zip(statements, cursors, strict=False):
                cursor.execute(sql, params, prepare=True)
        return [
            cursor.fetchall() if cursor.pgresult is not None and cursor.description else []
            for cursor in cursors[: len(statements)]
        ]


def _chain(steps: list, column):
    def convert(value):
        for step in steps:
            value = step(value, column, connection)
        return value

    return convert
