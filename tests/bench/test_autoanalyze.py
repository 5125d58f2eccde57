"""bench.autoanalyze: the benchmarks keep the planner's statistics current as autovacuum
would, so a prepared statement's plan follows the table's size (PostgreSQL only)."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection

from bench.autoanalyze import AutoAnalyze

pytestmark = pytest.mark.django_db(transaction=True)

TABLE = "bench_autoanalyze_probe"


def _dsn() -> str:
    s = connection.settings_dict
    return f"host={s['HOST'] or '127.0.0.1'} port={s['PORT'] or 5432} user={s['USER']} dbname={s['NAME']}"


def _last_analyzed(conn: psycopg.Connection) -> object:
    row = conn.execute("SELECT last_analyze FROM pg_stat_user_tables WHERE relname = %s", [TABLE]).fetchone()
    return row[0] if row else None


def test_a_table_changed_past_autovacuums_threshold_is_analyzed() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("planner statistics are PostgreSQL's")
    with psycopg.connect(_dsn(), autocommit=True) as conn:
        # Given a table that gained more rows than autovacuum's threshold (50 + 10 %)
        conn.execute(f"CREATE TABLE {TABLE} (id int PRIMARY KEY)")
        try:
            conn.execute(f"INSERT INTO {TABLE} SELECT generate_series(1, 500)")
            assert _last_analyzed(conn) is None
            # When the benchmarks' analyzer runs for a while
            with AutoAnalyze(_dsn(), every=0.1) as analyzer:
                deadline = time.monotonic() + 10
                while _last_analyzed(conn) is None and time.monotonic() < deadline:
                    time.sleep(0.1)
            # Then the table was analyzed, and the analyzer says so
            assert _last_analyzed(conn) is not None
            assert analyzer.analyzed >= 1
            assert "ANALYZE" in analyzer.describe()
            stats = conn.execute("SELECT reltuples FROM pg_class WHERE relname = %s", [TABLE]).fetchone()
            assert stats is not None
            assert stats[0] == 500
        finally:
            conn.execute(f"DROP TABLE {TABLE}")
