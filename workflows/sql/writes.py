"""Several row writes of one step sent as one statement.

A transition writes five or six rows in as many statements (handoffs closed and opened,
its side rows, the audit entry, the instance, the outbox events); each statement costs a
round trip, Django's cursor wrapper and psycopg's execution in the worker, and parsing,
planning and executor start-up in PostgreSQL, several times what writing the row costs.
On PostgreSQL `Writes.run` sends them as data-modifying CTEs of one statement, which run
exactly once each, in one snapshot; elsewhere (SQLite) one by one, as before.

One snapshot means a statement cannot see what another of the same statement wrote, so a
run is cut wherever that would matter: before an UPDATE of a table the run already
writes (it could miss a row inserted in it, or change a row twice), and before an INSERT
whose foreign key waits for the key of a row inserted earlier in the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

from workflows.sql.numbered import cursor_for
from workflows.sql.rows import (
    Statement,
    grouped,
    insert_statement,
    inserted,
    update_statement,
    update_where_statement,
)
from workflows.sql.tables import db_of


@dataclass
class _Insert:
    objs: Sequence[models.Model]

    def table(self) -> str:
        return self.objs[0]._meta.db_table

    def waits_for_a_key(self) -> bool:
        """Whether a row's foreign key points at a row not inserted yet."""
        foreign_keys = [f for f in self.objs[0]._meta.concrete_fields if isinstance(f, models.ForeignKey)]
        for obj in self.objs:
            for fk in foreign_keys:
                if getattr(obj, fk.attname) is None:
                    related = getattr(obj, fk.name, None)
                    if related is not None and related.pk is None:
                        return True
        return False

    def statement(self, db: BaseDatabaseWrapper) -> Statement:
        return insert_statement(self.objs, db)

    def done(self, keys: list[Any], db: BaseDatabaseWrapper) -> None:
        inserted(self.objs, keys, db)


@dataclass
class _Update:
    model: type[models.Model]
    build: Any  # (db) -> Statement, read when the run is sent

    def table(self) -> str:
        return self.model._meta.db_table

    def statement(self, db: BaseDatabaseWrapper) -> Statement:
        statement: Statement = self.build(db)
        return statement

    def done(self, keys: list[Any], db: BaseDatabaseWrapper) -> None:
        return None


_Write = _Insert | _Update


@dataclass
class Writes:
    """Row writes collected to be sent together by `run` (in the order they were added)."""

    _writes: list[_Write] = field(default_factory=list)

    def insert(self, objs: Sequence[models.Model]) -> None:
        """INSERT `objs` (all of one model), as `rows_insert` does."""
        if objs:
            self._writes.append(_Insert(list(objs)))

    def insert_grouped(self, rows: Iterable[models.Model]) -> None:
        """INSERT rows of several models, as `rows_insert_grouped` does."""
        for group in grouped(rows):
            self.insert(group)

    def update(self, obj: models.Model, fields: Iterable[str]) -> None:
        """UPDATE columns of `obj`'s row, as `row_update` does (values read by `run`)."""
        names = list(fields)
        self._writes.append(_Update(type(obj), lambda db: update_statement(obj, names, db)))

    def update_where(
        self, model: type[models.Model], *, values: dict[str, Any], where: str, params: Sequence[Any]
    ) -> None:
        """UPDATE rows WHERE `where`, as `rows_update` does (without telling how many)."""
        self._writes.append(
            _Update(
                model,
                lambda db: update_where_statement(model, values=values, where=where, params=params, db=db),
            )
        )

    def run(self) -> None:
        """Send every write collected so far: one statement on PostgreSQL (cut where one
        write must see another's result), one each elsewhere. Sets inserted rows' keys."""
        writes, self._writes = self._writes, []
        db = db_of()
        if db.vendor != "postgresql":
            for write in writes:
                _send(db, [write])
            return
        run: list[_Write] = []
        for write in writes:
            if run and _must_follow(run, write):
                _send(db, run)
                run = []
            run.append(write)
        if run:
            _send(db, run)


def _must_follow(run: list[_Write], write: _Write) -> bool:
    """Whether `write` must wait until `run` has been sent."""
    if isinstance(write, _Update):
        return any(earlier.table() == write.table() for earlier in run)
    return write.waits_for_a_key()


def _send(db: BaseDatabaseWrapper, run: list[_Write]) -> None:
    statements = [write.statement(db) for write in run]
    if len(statements) == 1:
        sql, params = statements[0].sql, statements[0].params
    else:
        parts, params, keyed = [], [], []
        for index, statement in enumerate(statements):
            parts.append(f"w{index} AS ({statement.sql})")
            params += statement.params
            if statement.returns_keys:
                keyed.append(f"SELECT {index}, {statement.table.pk_column} FROM w{index}")  # nosec B608  # identifiers come from model metadata, quoted
        # Every data-modifying CTE runs once, to completion, whether or not it is read.
        sql = f"WITH {', '.join(parts)} {' UNION ALL '.join(keyed) or 'SELECT NULL, NULL'}"
    with cursor_for(db, sql, params) as (cursor, text):
        cursor.execute(text, params)
        rows = cursor.fetchall() if any(s.returns_keys for s in statements) else []
    for index, (write, statement) in enumerate(zip(run, statements, strict=True)):
        if not statement.returns_keys:
            keys: list[Any] = []
        elif len(statements) == 1:
            keys = [row[0] for row in rows]
        else:  # each CTE's keys come in the order of its rows (UNION ALL appends, in order)
            keys = [row[1] for row in rows if row[0] == index]
        write.done(keys, db)
