"""What the plain statements of one model need, worked out once per database connection."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
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


def db_of() -> BaseDatabaseWrapper:
    # The wrapper itself: `django.db.connection` looks it up again on every attribute.
    return connections[DEFAULT_DB_ALIAS]


def concrete_field(model: type[models.Model], name: str) -> Field[Any, Any]:
    field = model._meta.get_field(name)
    assert isinstance(field, Field), f"{model._meta.label}.{name} is not a concrete field"
    return field


class Table:
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
        self.insert_into = (
            f"INSERT INTO {self.name} ({', '.join(quote(self._column(f)) for f in self.insert_fields)}) "  # nosec B608  # identifiers come from model metadata, quoted; values are parameters
        )
        self.insert_head = self.insert_into + "VALUES "
        self.unnest = self._unnest(db)
        self.insert_row = "(" + ", ".join(["%s"] * len(self.insert_fields)) + ")"
        self.foreign_keys = [f for f in self.insert_fields if isinstance(f, models.ForeignKey)]
        self.prepare = {f.attname: _preparer(f, db) for f in self.fields}
        self.insert_values = [(_reader(f), self.prepare[f.attname]) for f in self.insert_fields]
        self.returning = f" RETURNING {quote(self._column(self.auto))}" if self.auto is not None else ""
        self.quote = quote

    def _unnest(self, db: BaseDatabaseWrapper) -> str:
        """On PostgreSQL, rows to insert as one array per column (`SELECT * FROM UNNEST(...)`,
        as Django's own bulk_create does, on the same conditions): the statement and its
        parameters stay the same whatever the number of rows, so psycopg converts it once
        and PostgreSQL plans it once. Empty where a column type cannot be an array."""
        if db.vendor != "postgresql":
            return ""
        types = []
        for f in self.insert_fields:
            target = f.target_field if isinstance(f, models.ForeignKey) else f
            if hasattr(f, "get_placeholder") or target.get_internal_type() not in db.data_types:
                return ""
            # A JSON column would go as a text array: psycopg escapes every quote of every
            # document with a regular expression, which cost more than the plain VALUES
            # statement saves (a tenth of a transition's CPU, profiled on the outbox insert).
            if target.get_internal_type() == "JSONField":
                return ""
            db_type = f.db_type(db)
            if not db_type:
                return ""
            # varchar[] rather than varchar(50)[]: an array cast would truncate silently.
            types.append(f"(%s)::{db_type.split('(')[0]}[]")
        return f"SELECT * FROM UNNEST({', '.join(types)})"  # nosec B608  # column types come from model metadata; values are parameters

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


tables_known: dict[tuple[int, type[models.Model]], Table] = {}


def table_of(model: type[models.Model], db: BaseDatabaseWrapper) -> Table:
    key = (id(db), model)
    found = tables_known.get(key)
    if found is None:
        found = tables_known[key] = Table(model, db)
    return found


def pk_value(model: type[models.Model], raw: Any) -> Any:
    """`raw` as the primary key's database value; ValueError / ValidationError when it
    cannot be one (also an integer out of the column's range, which the ORM would simply
    not find: on PostgreSQL the statement would fail and spoil the transaction)."""
    db = db_of()
    field = model._meta.pk
    assert field is not None
    value = field.to_python(raw)
    if isinstance(value, int):
        low, high = db.ops.integer_field_range(field.get_internal_type())
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"{value} is out of range for {model._meta.label}'s key")
    return field.get_db_prep_value(value, db)


class Picked:
    """Some of a model's columns, read under a table alias and built into instances with
    the rest deferred (`Model.from_db`, as `.only()` builds them), through the same
    converters as every column here. For lists that show a few columns of many rows."""

    def __init__(self, model: type[models.Model], db: BaseDatabaseWrapper, names: frozenset[str]) -> None:
        table = table_of(model, db)
        unknown = names - {n for f in table.fields for n in (f.name, f.attname)}
        assert not unknown, f"{model._meta.label} has no columns {sorted(unknown)}"
        # The key always, and first (it is the first concrete field): rows are told apart by it.
        chosen = [
            i for i, f in enumerate(table.fields) if f.primary_key or f.name in names or f.attname in names
        ]
        assert table.fields[chosen[0]].primary_key
        self.model = model
        self.width = len(chosen)
        # A set: from_db looks each concrete field up in it (a list was a third of its cost).
        self.attnames = frozenset(table.attnames[i] for i in chosen)
        self.converters = [table.converters[i] for i in chosen]
        self._columns = [table.quote(Table._column(table.fields[i])) for i in chosen]

    def columns(self, alias: str) -> str:
        return ", ".join(f"{alias}.{c}" for c in self._columns)

    def build(self, row: Sequence[Any], db: BaseDatabaseWrapper, offset: int = 0) -> models.Model:
        values = list(row[offset : offset + self.width])
        for index, convert in enumerate(self.converters):
            if convert:
                value = values[index]
                for function, expression in convert:
                    value = function(value, expression, db)
                values[index] = value
        return self.model.from_db(db.alias, self.attnames, values)


picked_known: dict[tuple[int, type[models.Model], frozenset[str]], Picked] = {}


def picked(model: type[models.Model], db: BaseDatabaseWrapper, *, only: Sequence[str] = ()) -> Picked:
    """The key of `model` and the columns of the fields named in `only`; every column when
    `only` is empty (cached)."""
    key = (id(db), model, frozenset(only or [f.name for f in model._meta.concrete_fields]))
    found = picked_known.get(key)
    if found is None:
        found = picked_known[key] = Picked(model, db, key[2])
    return found
