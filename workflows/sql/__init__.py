"""The transition hot path's statements in plain parameterised SQL.

A transition runs about ten statements; through the ORM each one costs 0.3-1.5 ms of
Python to build (bench/transitions; the profile is in the README), several times what
the database spends on it. These few are written here once per model from its `_meta`
(cached per database connection) and run through `connection.cursor()`: values go in
through each field's `get_db_prep_save` and come back through the converters Django
applies, so rows read here equal rows read through the ORM. Tested on SQLite and
PostgreSQL (tests/workflows/test_sql.py). Everything else stays on the ORM.

`Writes` sends several writes of one step as one statement on PostgreSQL (writes.py).
"""

from workflows.sql.rows import (
    Raw,
    in_list,
    row_lock,
    row_update,
    rows_insert,
    rows_insert_grouped,
    rows_related,
    rows_select,
    rows_update,
)
from workflows.sql.tables import Picked, db_of, picked, pk_value, table_of
from workflows.sql.writes import Writes

__all__ = [
    "Picked",
    "Raw",
    "Writes",
    "db_of",
    "in_list",
    "picked",
    "pk_value",
    "row_lock",
    "row_update",
    "rows_insert",
    "rows_insert_grouped",
    "rows_related",
    "rows_select",
    "rows_update",
    "table_of",
]
