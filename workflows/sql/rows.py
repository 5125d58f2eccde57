"""The plain statements: lock, select, insert and update rows.

Each writer is split in two: the statement with its parameters (`*_statement`, read from
the rows at that moment), and what is done once it ran. workflows.sql.writes runs several
of those statements as one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

from workflows.sql.tables import M, Table, concrete_field, db_of, pk_value, table_of

Link = tuple["models.ForeignKey[Any, Any]", Table]


def _joined(
    model: type[models.Model], related: Sequence[str], db: BaseDatabaseWrapper
) -> tuple[str, list[Link]]:
    """`SELECT` of every column of `model` and of the rows its foreign keys `related` point
    to (LEFT JOINed under aliases r0, r1...), up to `WHERE`; and each key with its table."""
    table = table_of(model, db)
    select = [table.columns]
    joins = []
    links: list[Link] = []
    for index, name in enumerate(related):
        fk = model._meta.get_field(name)
        assert isinstance(fk, models.ForeignKey), f"{model._meta.label}.{name} is not a foreign key"
        target_model = fk.related_model
        assert isinstance(target_model, type)
        target = table_of(target_model, db)
        alias = f"r{index}"
        select.append(target.columns.replace(f"{target.name}.", f"{alias}."))
        joins.append(
            f"LEFT JOIN {target.name} {alias} ON {alias}.{target.pk_column} = {table.name}.{table.quote(Table._column(fk))}"
        )
        links.append((fk, target))
    return f"SELECT {', '.join(select)} FROM {table.name} {' '.join(joins)}", links  # nosec B608  # identifiers come from model metadata, quoted


def _built(
    row: Sequence[Any],
    table: Table,
    links: list[Link],
    db: BaseDatabaseWrapper,
    shared: dict[tuple[str, Any], models.Model] | None = None,
) -> models.Model:
    """The instance of `row` with the related rows attached (None where a key is null);
    a related row already in `shared` (by key name and value) is reused, not built again."""
    instance = table.build(row, db)
    offset = len(table.fields)
    for fk, target in links:
        key = getattr(instance, fk.attname)
        attached = None
        if key is not None:
            attached = shared.get((fk.name, key)) if shared is not None else None
            if attached is None:
                attached = target.build(row, db, offset)
                if shared is not None:
                    shared[(fk.name, key)] = attached
        setattr(instance, fk.name, attached)
        offset += len(target.fields)
    return instance


def row_lock(model: type[M], pk: Any, *, related: Sequence[str] = ()) -> M | None:
    """SELECT ... FOR UPDATE one row (only that row is locked), with the rows its foreign
    keys `related` point to joined in and attached to it. None when there is no such row.

    On SQLite the transaction already holds the write lock (IMMEDIATE), so no FOR UPDATE.
    """
    db = db_of()
    table = table_of(model, db)
    head, links = _joined(model, related, db)
    sql = f"{head} WHERE {table.name}.{table.pk_column} = %s"
    if db.features.has_select_for_update:
        sql += f" FOR UPDATE OF {table.name}" if links else " FOR UPDATE"
    with db.cursor() as cursor:
        cursor.execute(sql, [pk_value(model, pk)])
        row = cursor.fetchone()
    if row is None:
        return None
    return _built(row, table, links, db)  # type: ignore[return-value]


def rows_related(
    model: type[M], *, related: Sequence[str], where: str, params: Sequence[Any], order_by: str
) -> list[M]:
    """`model`'s rows WHERE `where` (plain SQL with %s placeholders), ORDER BY `order_by`,
    each with the rows its foreign keys `related` point to attached (None where the key is
    null): select_related's rows, in one statement. A related row named by many rows (the
    same few people on every entry of a history) is built once and shared by them."""
    db = db_of()
    table = table_of(model, db)
    head, links = _joined(model, related, db)
    with db.cursor() as cursor:
        cursor.execute(f"{head} WHERE {where} ORDER BY {order_by}", list(params))
        fetched = cursor.fetchall()
    shared: dict[tuple[str, Any], models.Model] = {}
    return [_built(row, table, links, db, shared) for row in fetched]  # type: ignore[misc]


def rows_select(model: type[M], *, where: str, params: Sequence[Any], order_by: str = "") -> list[M]:
    """SELECT every column of `model`'s rows WHERE `where` (plain SQL with %s placeholders)."""
    db = db_of()
    table = table_of(model, db)
    sql = f"SELECT {table.columns} FROM {table.name} WHERE {where}"  # nosec B608  # identifiers come from model metadata, quoted; values are parameters
    if order_by:
        sql += f" ORDER BY {order_by}"
    with db.cursor() as cursor:
        cursor.execute(sql, list(params))
        return [table.build(row, db) for row in cursor.fetchall()]  # type: ignore[misc]


@dataclass
class Statement:
    """One writing statement: its SQL, its parameters, and whether it returns the auto
    primary keys of the rows it inserted (`RETURNING`), in order."""

    table: Table
    sql: str
    params: list[Any]
    returns_keys: bool = False


def insert_statement(objs: Sequence[models.Model], db: BaseDatabaseWrapper) -> Statement:
    """The INSERT of `objs` (all of one model): each field's `pre_save` as on a save
    (auto_now and the like), then its value as `get_db_prep_save` gives it."""
    table = table_of(type(objs[0]), db)
    rows: list[list[Any]] = []
    for obj in objs:
        for fk in table.foreign_keys:
            # A related row inserted just before (e.g. a comment and its attachments):
            # take its key now, as Model.save() would.
            if getattr(obj, fk.attname) is None:
                related = getattr(obj, fk.name, None)
                if related is not None and related.pk is not None:
                    setattr(obj, fk.attname, related.pk)
        rows.append([prepare(read(obj, True)) for read, prepare in table.insert_values])
    returns_keys = table.auto is not None
    if table.unnest and len(rows) > 1 and not any(hasattr(v, "as_sql") for row in rows for v in row):
        columns = [list(column) for column in zip(*rows, strict=True)]
        sql = table.insert_into + table.unnest + table.returning
        return Statement(table=table, sql=sql, params=columns, returns_keys=returns_keys)
    sql = table.insert_head + ", ".join([table.insert_row] * len(rows)) + table.returning
    params = [value for row in rows for value in row]
    return Statement(table=table, sql=sql, params=params, returns_keys=returns_keys)


def inserted(objs: Sequence[models.Model], keys: Sequence[Any], db: BaseDatabaseWrapper) -> None:
    """Mark `objs` saved, with the auto primary keys their INSERT returned."""
    table = table_of(type(objs[0]), db)
    for index, obj in enumerate(objs):
        if table.auto is not None:
            setattr(obj, table.auto.attname, keys[index])
        obj._state.adding = False
        obj._state.db = db.alias


def rows_insert(objs: Sequence[models.Model]) -> None:
    """INSERT `objs` (all of one model) in one statement; sets their auto primary keys.
    Model `save()` methods are not called."""
    if not objs:
        return
    db = db_of()
    statement = insert_statement(objs, db)
    with db.cursor() as cursor:
        cursor.execute(statement.sql, statement.params)
        keys = [row[0] for row in cursor.fetchall()] if statement.returns_keys else []
    inserted(objs, keys, db)


def rows_insert_grouped(rows: Iterable[models.Model]) -> None:
    """INSERT rows of several models: one statement per model, in order of first appearance."""
    for group in grouped(rows):
        rows_insert(group)


def grouped(rows: Iterable[models.Model]) -> list[list[models.Model]]:
    """Rows by model, in order of first appearance."""
    groups: dict[type[models.Model], list[models.Model]] = {}
    for row in rows:
        groups.setdefault(type(row), []).append(row)
    return list(groups.values())


def update_statement(obj: models.Model, fields: Iterable[str], db: BaseDatabaseWrapper) -> Statement:
    """The UPDATE of the columns `fields` (attnames or names) of `obj`'s row from its attributes."""
    table = table_of(type(obj), db)
    targets = [concrete_field(type(obj), name) for name in fields]
    values = [table.prepare[f.attname](f.pre_save(obj, False)) for f in targets]
    assignments = ", ".join(f"{table.quote(Table._column(f))} = %s" for f in targets)
    sql = f"UPDATE {table.name} SET {assignments} WHERE {table.pk_column} = %s"  # nosec B608  # identifiers come from model metadata, quoted; values are parameters
    return Statement(table=table, sql=sql, params=[*values, table.pk.get_db_prep_value(obj.pk, db)])


def row_update(obj: models.Model, fields: Iterable[str]) -> None:
    """UPDATE the columns `fields` (attnames or names) of `obj`'s row from its attributes."""
    db = db_of()
    statement = update_statement(obj, fields, db)
    with db.cursor() as cursor:
        cursor.execute(statement.sql, statement.params)


class Raw:
    """An SQL expression for `rows_update` (e.g. 'attempts + 1'), written as given."""

    def __init__(self, sql: str) -> None:
        self.sql = sql


def update_where_statement(
    model: type[models.Model],
    *,
    values: dict[str, Any],
    where: str,
    params: Sequence[Any],
    db: BaseDatabaseWrapper,
) -> Statement:
    """The UPDATE of `values` (field name → value, or an SQL expression given as `Raw`) WHERE `where`."""
    table = table_of(model, db)
    assignments = []
    prepared: list[Any] = []
    for name, value in values.items():
        f = concrete_field(model, name)
        if isinstance(value, Raw):
            assignments.append(f"{table.quote(Table._column(f))} = {value.sql}")
        else:
            assignments.append(f"{table.quote(Table._column(f))} = %s")
            prepared.append(table.prepare[f.attname](value))
    sql = f"UPDATE {table.name} SET {', '.join(assignments)} WHERE {where}"  # nosec B608  # identifiers come from model metadata, quoted; values are parameters
    return Statement(table=table, sql=sql, params=[*prepared, *params])


def rows_update(
    model: type[models.Model], *, values: dict[str, Any], where: str, params: Sequence[Any]
) -> int:
    """UPDATE `values` (field name → value, or an SQL expression given as `Raw`) WHERE
    `where`; how many rows it changed."""
    db = db_of()
    statement = update_where_statement(model, values=values, where=where, params=params, db=db)
    with db.cursor() as cursor:
        cursor.execute(statement.sql, statement.params)
        return cursor.rowcount


def in_list(model: type[models.Model], name: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """`column IN (%s, …)` of field `name` and its parameters as the database takes them,
    for `where` clauses."""
    db = db_of()
    field = concrete_field(model, name)
    params = [field.get_db_prep_value(v, db) for v in values]
    return f"{db.ops.quote_name(Table._column(field))} IN ({', '.join(['%s'] * len(values))})", params
