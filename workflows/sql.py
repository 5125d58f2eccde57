"""The transition hot path's statements in plain parameterised SQL.

A transition runs about ten statements; through the ORM each one costs 0.3-1.5 ms of
Python to build (bench/transitions, and the profile in the README), several times what
the database spends on it. These few are written here once per model from its `_meta`
and run through `connection.cursor()`: values go in through each field's
`get_db_prep_save` and come back through the same converters Django applies, so rows
read here equal rows read through the ORM. Tested on SQLite and PostgreSQL
(tests/workflows/test_sql.py). Everything else stays on the ORM.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import cache
from typing import Any, TypeVar

from django.db import connection, models
from django.db.models import Field

M = TypeVar("M", bound=models.Model)
Converter = Callable[[Any, Any, Any], Any]


def _quote(name: str | None) -> str:
    assert name is not None, "a concrete field always has a column"
    return connection.ops.quote_name(name)


def _field(model: type[models.Model], name: str) -> Field[Any, Any]:
    field = model._meta.get_field(name)
    assert isinstance(field, Field), f"{model._meta.label}.{name} is not a concrete field"
    return field


@cache
def _reader(
    model: type[models.Model], vendor: str
) -> tuple[str, list[str], list[list[tuple[Converter, Any]]]]:
    """The quoted column list of `model`'s concrete fields, their attnames, and for each
    the converters (backend's, then the field's from_db_value) to apply to its value."""
    table = model._meta.db_table
    fields = list(model._meta.concrete_fields)
    columns = ", ".join(f"{_quote(table)}.{_quote(f.column)}" for f in fields)
    converters = []
    for f in fields:
        col = f.get_col(table)
        found = [(c, col) for c in connection.ops.get_db_converters(col)]
        found += [(c, col) for c in f.get_db_converters(connection)]
        converters.append(found)
    return columns, [f.attname for f in fields], converters


def _build(model: type[M], row: Sequence[Any], offset: int = 0) -> M:
    _, attnames, converters = _reader(model, connection.vendor)
    values = []
    for index, convert in enumerate(converters):
        value = row[offset + index]
        for function, expression in convert:
            value = function(value, expression, connection)
        values.append(value)
    return model.from_db(connection.alias, attnames, values)


def pk_value(model: type[models.Model], raw: Any) -> Any:
    """`raw` as the primary key's database value; ValueError / ValidationError when it
    cannot be one (also an integer out of the column's range, which the ORM would simply
    not find: on PostgreSQL the statement would fail and spoil the transaction)."""
    field = model._meta.pk
    assert field is not None
    value = field.to_python(raw)
    if isinstance(value, int):
        low, high = connection.ops.integer_field_range(field.get_internal_type())
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"{value} is out of range for {model._meta.label}'s key")
    return field.get_db_prep_value(value, connection)


def row_lock(model: type[M], pk: Any, *, related: Sequence[str] = ()) -> M | None:
    """SELECT ... FOR UPDATE one row (only that row is locked), with the rows its foreign
    keys `related` point to joined in and attached to it. None when there is no such row.

    On SQLite the transaction already holds the write lock (IMMEDIATE), so no FOR UPDATE.
    """
    meta = model._meta
    base = _quote(meta.db_table)
    columns, _, _ = _reader(model, connection.vendor)
    select = [columns]
    joins = []
    links: list[tuple[Field[Any, Any], type[models.Model]]] = []
    for index, name in enumerate(related):
        fk = meta.get_field(name)
        target = fk.related_model
        assert isinstance(fk, models.ForeignKey), f"{meta.label}.{name} is not a foreign key"
        assert isinstance(target, type)
        alias = f"r{index}"
        target_columns, _, _ = _reader(target, connection.vendor)
        select.append(target_columns.replace(f"{_quote(target._meta.db_table)}.", f"{alias}."))
        target_pk = target._meta.pk
        assert target_pk is not None
        joins.append(
            f"LEFT JOIN {_quote(target._meta.db_table)} {alias} "
            f"ON {alias}.{_quote(target_pk.column)} = {base}.{_quote(fk.column)}"
        )
        links.append((fk, target))
    assert meta.pk is not None
    sql = (
        f"SELECT {', '.join(select)} FROM {base} {' '.join(joins)} WHERE {base}.{_quote(meta.pk.column)} = %s"
    )
    if connection.features.has_select_for_update:
        sql += f" FOR UPDATE OF {base}" if joins else " FOR UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(sql, [pk_value(model, pk)])
        row = cursor.fetchone()
    if row is None:
        return None
    instance = _build(model, row)
    offset = len(meta.concrete_fields)
    for fk, target in links:
        if getattr(instance, fk.attname) is None:
            setattr(instance, fk.name, None)
        else:
            setattr(instance, fk.name, _build(target, row, offset))
        offset += len(target._meta.concrete_fields)
    return instance


def rows_select(model: type[M], *, where: str, params: Sequence[Any], order_by: str = "") -> list[M]:
    """SELECT every column of `model`'s rows WHERE `where` (plain SQL with %s placeholders)."""
    columns, _, _ = _reader(model, connection.vendor)
    sql = f"SELECT {columns} FROM {_quote(model._meta.db_table)} WHERE {where}"
    if order_by:
        sql += f" ORDER BY {order_by}"
    with connection.cursor() as cursor:
        cursor.execute(sql, list(params))
        return [_build(model, row) for row in cursor.fetchall()]


@cache
def _writer(model: type[models.Model]) -> tuple[list[Field[Any, Any]], Field[Any, Any] | None]:
    """The fields an INSERT writes, and the auto primary key it returns (if any)."""
    pk = model._meta.pk
    auto = pk if isinstance(pk, models.AutoField) else None  # BigAutoField is one too
    return [f for f in model._meta.concrete_fields if f is not auto], auto


def rows_insert(objs: Sequence[M]) -> None:
    """INSERT `objs` (all of one model) in one statement; sets their auto primary keys.

    Each field's `pre_save` runs as on a save (auto_now and the like), then its
    `get_db_prep_save`. Model `save()` methods are not called.
    """
    if not objs:
        return
    model = type(objs[0])
    fields, auto = _writer(model)
    params: list[Any] = []
    for obj in objs:
        for f in fields:
            params.append(f.get_db_prep_save(f.pre_save(obj, True), connection))
    placeholders = "(" + ", ".join(["%s"] * len(fields)) + ")"
    sql = (
        f"INSERT INTO {_quote(model._meta.db_table)} ({', '.join(_quote(f.column) for f in fields)}) "
        f"VALUES {', '.join([placeholders] * len(objs))}"
    )
    if auto is not None:
        sql += f" RETURNING {_quote(auto.column)}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        keys = [row[0] for row in cursor.fetchall()] if auto is not None else []
    for index, obj in enumerate(objs):
        if auto is not None:
            setattr(obj, auto.attname, keys[index])
        obj._state.adding = False
        obj._state.db = connection.alias


def rows_insert_grouped(rows: Iterable[models.Model]) -> None:
    """INSERT rows of several models: one statement per model, in order of first appearance."""
    groups: dict[type[models.Model], list[models.Model]] = {}
    for row in rows:
        groups.setdefault(type(row), []).append(row)
    for group in groups.values():
        rows_insert(group)


def row_update(obj: models.Model, fields: Iterable[str]) -> None:
    """UPDATE the columns `fields` (attnames or names) of `obj`'s row from its attributes."""
    meta = obj._meta
    targets = [_field(type(obj), name) for name in fields]
    assert meta.pk is not None
    values = [f.get_db_prep_save(f.pre_save(obj, False), connection) for f in targets]
    assignments = ", ".join(f"{_quote(f.column)} = %s" for f in targets)
    sql = f"UPDATE {_quote(meta.db_table)} SET {assignments} WHERE {_quote(meta.pk.column)} = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*values, meta.pk.get_db_prep_value(obj.pk, connection)])


def rows_update(
    model: type[models.Model], *, values: dict[str, Any], where: str, params: Sequence[Any]
) -> int:
    """UPDATE `values` (field name → value, or an SQL snippet given as `Raw`) WHERE `where`."""
    meta = model._meta
    assignments = []
    prepared: list[Any] = []
    for name, value in values.items():
        f = _field(model, name)
        if isinstance(value, Raw):
            assignments.append(f"{_quote(f.column)} = {value.sql}")
        else:
            assignments.append(f"{_quote(f.column)} = %s")
            prepared.append(f.get_db_prep_save(value, connection))
    sql = f"UPDATE {_quote(meta.db_table)} SET {', '.join(assignments)} WHERE {where}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*prepared, *params])
        return cursor.rowcount


class Raw:
    """An SQL expression for `rows_update` (e.g. 'attempts + 1'), written as given."""

    def __init__(self, sql: str) -> None:
        self.sql = sql


def in_list(model: type[models.Model], name: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """`column IN (%s, …)` of field `name` and its parameters as the database takes them,
    for `where` clauses."""
    field = _field(model, name)
    params = [field.get_db_prep_value(v, connection) for v in values]
    return f"{_quote(field.column)} IN ({', '.join(['%s'] * len(values))})", params
