"""The transition hot path's statements in plain parameterised SQL.

A transition runs about ten statements; through the ORM each one costs 0.3-1.5 ms of
Python to build (bench/transitions; the profile is in the README), several times what
the database spends on it. These few are written here once per model from its `_meta`
(cached per database connection) and run through `connection.cursor()`: values go in
through each field's `get_db_prep_save` and come back through the converters Django
applies, so rows read here equal rows read through the ORM. Tested on SQLite and
PostgreSQL (tests/workflows/test_sql.py). Everything else stays on the ORM.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.base.operations import BaseDatabaseOperations
from django.db.models import Field
from django.db.models.fields import AutoFieldMixin

M = TypeVar("M", bound=models.Model)
Converter = Callable[[Any, Any, Any], Any]
Prepare = Callable[[Any], Any]


def _passes(field: Field[Any, Any], db: BaseDatabaseWrapper) -> tuple[type, ...]:
    """The value types `field.get_db_prep_save` returns unchanged on `db` (None too), found
    from which methods the field's class uses: a str for a plain CharField, an int for an
    integer field or a key to one... Writing those as they are skips Django's per-value
    conversion, the hot cost of a row writer. Anything unrecognised: no type passes."""
    cls, ops = type(field), type(db.ops)
    if isinstance(field, models.ForeignKey):
        if cls.get_db_prep_save is not models.ForeignKey.get_db_prep_save:
            return ()
        target = field.target_field
        assert isinstance(target, Field)
        return _passes(target, db)
    if cls.get_db_prep_save is not Field.get_db_prep_save:
        return ()
    prep, db_prep = cls.get_prep_value, cls.get_db_prep_value
    if prep in (models.CharField.get_prep_value, models.TextField.get_prep_value):
        return (str,) if db_prep is Field.get_db_prep_value else ()
    if prep is models.IntegerField.get_prep_value and ops.adapt_integerfield_value is (
        BaseDatabaseOperations.adapt_integerfield_value
    ):
        if db_prep is models.IntegerField.get_db_prep_value:
            return (int,)
        if db_prep is AutoFieldMixin.get_db_prep_value:
            return (int,) if ops.validate_autopk_value is BaseDatabaseOperations.validate_autopk_value else ()
        return ()
    if prep is models.BooleanField.get_prep_value and db_prep is Field.get_db_prep_value:
        return (bool,)
    if prep is models.UUIDField.get_prep_value and db_prep is models.UUIDField.get_db_prep_value:
        return (uuid.UUID,) if db.features.has_native_uuid_field else ()
    return ()


def _preparer(field: Field[Any, Any], db: BaseDatabaseWrapper) -> Prepare:
    """A function from a field's value to the parameter `get_db_prep_save` would give."""
    slow = field.get_db_prep_save
    cls = type(field)
    if (
        db.vendor == "postgresql"
        and cls.get_prep_value is models.DateTimeField.get_prep_value
        and cls.get_db_prep_value is models.DateTimeField.get_db_prep_value
        and cls.get_db_prep_save is Field.get_db_prep_save
    ):
        # PostgreSQL takes an aware datetime as it is (a naive one needs Django's warning
        # and conversion).
        return lambda v: v if v is None or (type(v) is datetime and v.tzinfo is not None) else slow(v, db)
    passes = _passes(field, db)
    if not passes:
        return lambda v: slow(v, db)
    return lambda v: v if v is None or type(v) in passes else slow(v, db)


def _reader(field: Field[Any, Any]) -> Callable[[models.Model, bool], Any]:
    """`field.pre_save` where it does more than read the attribute (auto_now and the like)."""
    if type(field).pre_save is Field.pre_save:
        attname = field.attname
        return lambda obj, add: getattr(obj, attname)
    return field.pre_save


def _db() -> BaseDatabaseWrapper:
    # The wrapper itself: `django.db.connection` looks it up again on every attribute.
    return connections[DEFAULT_DB_ALIAS]


def _field(model: type[models.Model], name: str) -> Field[Any, Any]:
    field = model._meta.get_field(name)
    assert isinstance(field, Field), f"{model._meta.label}.{name} is not a concrete field"
    return field


class _Table:
    """What the statements of one model need, worked out once per database connection."""

    def __init__(self, model: type[models.Model], db: BaseDatabaseWrapper) -> None:
        meta = model._meta
        quote = db.ops.quote_name
        self.model = model
        self.name = quote(meta.db_table)
        self.fields = list(meta.concrete_fields)
        self.columns = ", ".join(f"{self.name}.{quote(self._column(f))}" for f in self.fields)
        self.attnames = [f.attname for f in self.fields]
        self.converters: list[list[tuple[Converter, Any]]] = []
        for f in self.fields:
            col = f.get_col(meta.db_table)
            found = [(c, col) for c in db.ops.get_db_converters(col)]
            found += [(c, col) for c in f.get_db_converters(db)]
            self.converters.append(found)
        pk = meta.pk
        assert pk is not None
        self.pk = pk
        self.pk_column = quote(self._column(pk))
        # BigAutoField is an AutoField too: the database numbers it, INSERT returns it.
        self.auto = pk if isinstance(pk, models.AutoField) else None
        self.insert_fields = [f for f in self.fields if f is not self.auto]
        self.insert_head = f"INSERT INTO {self.name} ({', '.join(quote(self._column(f)) for f in self.insert_fields)}) VALUES "  # nosec B608  # identifiers come from model metadata, quoted; values are parameters
        self.insert_row = "(" + ", ".join(["%s"] * len(self.insert_fields)) + ")"
        self.foreign_keys = [f for f in self.insert_fields if isinstance(f, models.ForeignKey)]
        self.prepare = {f.attname: _preparer(f, db) for f in self.fields}
        self.insert_values = [(_reader(f), self.prepare[f.attname]) for f in self.insert_fields]
        self.returning = f" RETURNING {quote(self._column(self.auto))}" if self.auto is not None else ""
        self.quote = quote

    @staticmethod
    def _column(field: Field[Any, Any]) -> str:
        assert field.column is not None, "a concrete field always has a column"
        return field.column

    def build(self, row: Sequence[Any], db: BaseDatabaseWrapper, offset: int = 0) -> models.Model:
        values = []
        for index, convert in enumerate(self.converters):
            value = row[offset + index]
            for function, expression in convert:
                value = function(value, expression, db)
            values.append(value)
        return self.model.from_db(db.alias, self.attnames, values)


_tables: dict[tuple[int, type[models.Model]], _Table] = {}


def _table(model: type[models.Model], db: BaseDatabaseWrapper) -> _Table:
    key = (id(db), model)
    found = _tables.get(key)
    if found is None:
        found = _tables[key] = _Table(model, db)
    return found


def pk_value(model: type[models.Model], raw: Any) -> Any:
    """`raw` as the primary key's database value; ValueError / ValidationError when it
    cannot be one (also an integer out of the column's range, which the ORM would simply
    not find: on PostgreSQL the statement would fail and spoil the transaction)."""
    db = _db()
    field = model._meta.pk
    assert field is not None
    value = field.to_python(raw)
    if isinstance(value, int):
        low, high = db.ops.integer_field_range(field.get_internal_type())
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"{value} is out of range for {model._meta.label}'s key")
    return field.get_db_prep_value(value, db)


def row_lock(model: type[M], pk: Any, *, related: Sequence[str] = ()) -> M | None:
    """SELECT ... FOR UPDATE one row (only that row is locked), with the rows its foreign
    keys `related` point to joined in and attached to it. None when there is no such row.

    On SQLite the transaction already holds the write lock (IMMEDIATE), so no FOR UPDATE.
    """
    db = _db()
    table = _table(model, db)
    select = [table.columns]
    joins = []
    links: list[tuple[models.ForeignKey[Any, Any], _Table]] = []
    for index, name in enumerate(related):
        fk = model._meta.get_field(name)
        assert isinstance(fk, models.ForeignKey), f"{model._meta.label}.{name} is not a foreign key"
        target_model = fk.related_model
        assert isinstance(target_model, type)
        target = _table(target_model, db)
        alias = f"r{index}"
        select.append(target.columns.replace(f"{target.name}.", f"{alias}."))
        joins.append(
            f"LEFT JOIN {target.name} {alias} ON {alias}.{target.pk_column} = {table.name}.{table.quote(_Table._column(fk))}"
        )
        links.append((fk, target))
    sql = f"SELECT {', '.join(select)} FROM {table.name} {' '.join(joins)} WHERE {table.name}.{table.pk_column} = %s"  # nosec B608  # identifiers come from model metadata, quoted; values are parameters
    if db.features.has_select_for_update:
        sql += f" FOR UPDATE OF {table.name}" if joins else " FOR UPDATE"
    with db.cursor() as cursor:
        cursor.execute(sql, [pk_value(model, pk)])
        row = cursor.fetchone()
    if row is None:
        return None
    instance = table.build(row, db)
    offset = len(table.fields)
    for fk, target in links:
        if getattr(instance, fk.attname) is None:
            setattr(instance, fk.name, None)
        else:
            setattr(instance, fk.name, target.build(row, db, offset))
        offset += len(target.fields)
    return instance  # type: ignore[return-value]


def rows_select(model: type[M], *, where: str, params: Sequence[Any], order_by: str = "") -> list[M]:
    """SELECT every column of `model`'s rows WHERE `where` (plain SQL with %s placeholders)."""
    db = _db()
    table = _table(model, db)
    sql = f"SELECT {table.columns} FROM {table.name} WHERE {where}"  # nosec B608  # identifiers come from model metadata, quoted; values are parameters
    if order_by:
        sql += f" ORDER BY {order_by}"
    with db.cursor() as cursor:
        cursor.execute(sql, list(params))
        return [table.build(row, db) for row in cursor.fetchall()]  # type: ignore[misc]


def rows_insert(objs: Sequence[models.Model]) -> None:
    """INSERT `objs` (all of one model) in one statement; sets their auto primary keys.

    Each field's `pre_save` runs as on a save (auto_now and the like), then its
    `get_db_prep_save`. Model `save()` methods are not called.
    """
    if not objs:
        return
    db = _db()
    table = _table(type(objs[0]), db)
    params: list[Any] = []
    for obj in objs:
        for fk in table.foreign_keys:
            # A related row inserted just before (e.g. a comment and its attachments):
            # take its key now, as Model.save() would.
            if getattr(obj, fk.attname) is None:
                related = getattr(obj, fk.name, None)
                if related is not None and related.pk is not None:
                    setattr(obj, fk.attname, related.pk)
        params += [prepare(read(obj, True)) for read, prepare in table.insert_values]
    sql = table.insert_head + ", ".join([table.insert_row] * len(objs)) + table.returning
    with db.cursor() as cursor:
        cursor.execute(sql, params)
        keys = [row[0] for row in cursor.fetchall()] if table.auto is not None else []
    for index, obj in enumerate(objs):
        if table.auto is not None:
            setattr(obj, table.auto.attname, keys[index])
        obj._state.adding = False
        obj._state.db = db.alias


def rows_insert_grouped(rows: Iterable[models.Model]) -> None:
    """INSERT rows of several models: one statement per model, in order of first appearance."""
    groups: dict[type[models.Model], list[models.Model]] = {}
    for row in rows:
        groups.setdefault(type(row), []).append(row)
    for group in groups.values():
        rows_insert(group)


def row_update(obj: models.Model, fields: Iterable[str]) -> None:
    """UPDATE the columns `fields` (attnames or names) of `obj`'s row from its attributes."""
    db = _db()
    table = _table(type(obj), db)
    targets = [_field(type(obj), name) for name in fields]
    values = [table.prepare[f.attname](f.pre_save(obj, False)) for f in targets]
    assignments = ", ".join(f"{table.quote(_Table._column(f))} = %s" for f in targets)
    sql = f"UPDATE {table.name} SET {assignments} WHERE {table.pk_column} = %s"  # nosec B608  # identifiers come from model metadata, quoted; values are parameters
    with db.cursor() as cursor:
        cursor.execute(sql, [*values, table.pk.get_db_prep_value(obj.pk, db)])


class Raw:
    """An SQL expression for `rows_update` (e.g. 'attempts + 1'), written as given."""

    def __init__(self, sql: str) -> None:
        self.sql = sql


def rows_update(
    model: type[models.Model], *, values: dict[str, Any], where: str, params: Sequence[Any]
) -> int:
    """UPDATE `values` (field name → value, or an SQL expression given as `Raw`) WHERE `where`."""
    db = _db()
    table = _table(model, db)
    assignments = []
    prepared: list[Any] = []
    for name, value in values.items():
        f = _field(model, name)
        if isinstance(value, Raw):
            assignments.append(f"{table.quote(_Table._column(f))} = {value.sql}")
        else:
            assignments.append(f"{table.quote(_Table._column(f))} = %s")
            prepared.append(table.prepare[f.attname](value))
    sql = f"UPDATE {table.name} SET {', '.join(assignments)} WHERE {where}"  # nosec B608  # identifiers come from model metadata, quoted; values are parameters
    with db.cursor() as cursor:
        cursor.execute(sql, [*prepared, *params])
        return cursor.rowcount


def in_list(model: type[models.Model], name: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """`column IN (%s, …)` of field `name` and its parameters as the database takes them,
    for `where` clauses."""
    db = _db()
    field = _field(model, name)
    params = [field.get_db_prep_value(v, db) for v in values]
    return f"{db.ops.quote_name(_Table._column(field))} IN ({', '.join(['%s'] * len(values))})", params
