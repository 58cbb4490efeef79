"""Lean statements for the ledger's hot path.

Every hold and every capture needs about a dozen small statements. Through the ORM each one costs more
to build than to run, and each waits for its own round trip. Here they are plain SQL built from the
models' metadata (so the columns and the value conversions stay the ORM's), grouped so that on
PostgreSQL an operation makes four round trips: BEGIN; the lock, the key and the rows it needs (with
ids drawn for the rows it will insert); all its writes; COMMIT. Django's psycopg cursor binds parameters
client-side, which lets several statements travel in one call and run in order. Elsewhere (SQLite)
the same statements run one after the other.
"""

from dataclasses import dataclass
from functools import cache

from django.db import connection, models

from keter import sql


@cache
def _columns(
    model: type[models.Model], names: tuple[str, ...] | None = None, with_pk: bool = False
) -> tuple[list, str]:
    """The fields to write (all but the primary key by default) and their quoted column list."""
    if names is None:
        fields = [field for field in model._meta.concrete_fields if with_pk or not field.primary_key]
    else:
        fields = [model._meta.get_field(name) for name in names]
    return fields, ", ".join(connection.ops.quote_name(field.column) for field in fields)


def _params(row: models.Model, fields: list) -> list:
    # Foreign keys are read by attname (`team_id`), so no related object is ever loaded for this.
    return [field.get_db_prep_save(getattr(row, field.attname), connection) for field in fields]


def can_batch() -> bool:
    """Whether several statements may travel in one call (PostgreSQL with client-side binding)."""
    options = connection.settings_dict.get("OPTIONS", {})
    return connection.vendor == "postgresql" and not options.get("server_side_binding")


def insert_now(row: models.Model) -> models.Model:
    """INSERT one row now, because what follows needs its id; returns the row with its primary key."""
    model = type(row)
    fields, columns = _columns(model)
    sql = f"INSERT INTO {model._meta.db_table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
    with connection.cursor() as cursor:
        if connection.features.can_return_columns_from_insert:
            cursor.execute(f"{sql} RETURNING {model._meta.pk.column}", _params(row, fields))
            row.pk = cursor.fetchone()[0]
        else:
            cursor.execute(sql, _params(row, fields))
            row.pk = cursor.lastrowid
    row._state.adding = False
    row._state.db = connection.alias
    return row


class Writes:
    """Writes queued during an operation and sent together by `flush()`."""

    def __init__(self):
        self.statements: list[tuple[str, list]] = []

    def insert(self, rows: list[models.Model], *, with_pk: bool = False) -> None:
        if not rows:
            return
        model = type(rows[0])
        fields, columns = _columns(model, None, with_pk)
        one = "(" + ", ".join(["%s"] * len(fields)) + ")"
        params = [value for row in rows for value in _params(row, fields)]
        values = ", ".join([one] * len(rows))
        self.statements.append((f"INSERT INTO {model._meta.db_table} ({columns}) VALUES {values}", params))

    def update(self, rows: list[models.Model], names: tuple[str, ...]) -> None:
        """Set these fields of these rows to the values the rows hold (computed under the team lock)."""
        if not rows:
            return
        model = type(rows[0])
        fields, _ = _columns(model, names)
        table, pk, quote = model._meta.db_table, model._meta.pk.column, connection.ops.quote_name
        if len(rows) == 1:
            assignments = ", ".join(f"{quote(field.column)} = %s" for field in fields)
            params = [*_params(rows[0], fields), rows[0].pk]
            self.statements.append((f"UPDATE {table} SET {assignments} WHERE {pk} = %s", params))
            return
        assignments, params = [], []
        cases = " ".join(["WHEN %s THEN %s"] * len(rows))
        for field in fields:
            assignments.append(f"{quote(field.column)} = CASE {pk} {cases} END")
            for row in rows:
                params += [row.pk, field.get_db_prep_save(getattr(row, field.attname), connection)]
        params += [row.pk for row in rows]
        ids = ", ".join(["%s"] * len(rows))
        self.statements.append((f"UPDATE {table} SET {', '.join(assignments)} WHERE {pk} IN ({ids})", params))

    def flush(self) -> None:
        statements, self.statements = self.statements, []
        run(statements)


def run(statements: list[tuple[str, list]]) -> list[list[tuple]]:
    """Run the statements in order, in one round trip where possible; return each one's rows."""
    if not statements:
        return []
    results = []
    with connection.cursor() as cursor:
        if can_batch():
            cursor.execute(
                "; ".join(sql for sql, _ in statements), [p for _, params in statements for p in params]
            )
            while True:
                results.append(cursor.fetchall() if cursor.description else [])
                if not cursor.nextset():
                    break
        else:
            for sql, params in statements:
                cursor.execute(sql, params)
                results.append(cursor.fetchall() if cursor.description else [])
    return results


@dataclass(frozen=True)
class Read:
    """A SELECT of whole rows of one model, or of several side by side (a join)."""

    sql: str
    params: list
    models: tuple

    def rows(self, raw: list[tuple]) -> list:
        """Model instances (a tuple of them for a join), converted as the ORM would."""
        loaded = [sql.as_models(values, *self.models) for values in raw]
        return [objects[0] if len(objects) == 1 else objects for objects in loaded]


def select(*models_, where: str, params: list, join: str = "", order_by: str = "") -> Read:
    columns = ", ".join(sql.columns(model) for model in models_)
    statement = f"SELECT {columns} FROM {models_[0]._meta.db_table} {join} WHERE {where}"
    return Read(statement + (f" ORDER BY {order_by}" if order_by else ""), params, models_)


def moment(value):
    """A datetime as a query parameter (SQLite stores them as text)."""
    return connection.ops.adapt_datetimefield_value(value)


def next_id_sql(model: type[models.Model]) -> str:
    """Draws an id from the table's sequence (PostgreSQL), so the row can be inserted with the rest."""
    return f"SELECT nextval(pg_get_serial_sequence('{model._meta.db_table}', '{model._meta.pk.column}'))"
