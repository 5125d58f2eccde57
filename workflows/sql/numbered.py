"""Statements of many parameters sent without psycopg rewriting them on every call.

psycopg turns a query's `%s` placeholders into PostgreSQL's `$1, $2, ...` each time it
runs one, and keeps the result only for queries of at most 50 parameters and 4 KB
(`psycopg._queries.MAX_CACHED_STATEMENT_PARAMS`, `..._LENGTH`). The combined writes of a
transition (workflows.sql.Writes) carry about 80: rewriting them took 0.5 ms of the
worker's ~3 ms per transition, measured here with psycopg 3.3 (bench/transitions). So the
rewrite is done once per distinct statement, here, and the statement goes through
psycopg's `RawCursor`, which sends `$n` placeholders as they are (server-side binding,
as Django's own cursor does with `server_side_binding`).

Django's debug cursor (DEBUG, or CaptureQueriesContext in tests) renders each statement
with its values for its log, client-side, which it cannot do with `$n`: while statements
are logged, and with client-side binding (DB_SERVER_SIDE_BINDING=0), the ordinary cursor
takes the `%s` form. The cursor answers only what psycopg decodes with the connection's
own adapters (the keys of inserted rows, here).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg import RawCursor

# psycopg's own rewrite is cached up to this many parameters: below it, nothing to gain.
CACHED_BY_PSYCOPG = 50
_PERCENT = re.compile(r"%(.?)", re.DOTALL)


@lru_cache(maxsize=512)
def numbered(sql: str) -> str | None:
    """`sql` with its `%s` placeholders as `$1, $2, ...` and `%%` as `%`; None when it holds
    anything else this cannot rewrite safely (another `%` form, or a `$` of its own)."""
    if "$" in sql:
        return None
    count = 0
    unknown = False

    def rewrite(match: re.Match[str]) -> str:
        nonlocal count, unknown
        if match.group(1) == "%":
            return "%"
        if match.group(1) != "s":
            unknown = True
            return match.group(0)
        count += 1
        return f"${count}"

    rewritten = _PERCENT.sub(rewrite, sql)
    return None if unknown else rewritten


def _takes_numbered(db: BaseDatabaseWrapper) -> bool:
    return (
        db.vendor == "postgresql"
        and db.settings_dict["OPTIONS"].get("server_side_binding") is True
        and not db.queries_logged
    )


@contextmanager
def cursor_for(db: BaseDatabaseWrapper, sql: str, params: list[Any]) -> Iterator[tuple[Any, str]]:
    """A cursor of `db` and the text of `sql` to execute through it with `params`: the `$n`
    form through a `RawCursor` where that is sent as it is (see the module), else `sql`
    through `db.cursor()`. Either is wrapped by Django (its errors, execute wrappers)."""
    rewritten = numbered(sql) if len(params) > CACHED_BY_PSYCOPG and _takes_numbered(db) else None
    if rewritten is None:
        with db.cursor() as cursor:
            yield cursor, sql
        return
    db.close_if_health_check_failed()
    db.ensure_connection()
    db.validate_thread_sharing()
    with db.wrap_database_errors:
        raw = RawCursor(db.connection)
    # django-stubs types make_cursor's argument as the wrapper it returns.
    with db.make_cursor(raw) as cursor:  # type: ignore[arg-type]
        yield cursor, rewritten
