"""Autovacuum's analyze rule, applied by the benchmarks themselves while they run.

The benchmarks start from empty tables, and a connection's prepared statements (Baton
prepares a statement once it ran 5 times: DB_PREPARE_THRESHOLD) keep the generic plan
PostgreSQL made for them until the planner statistics of a table they read change. With
autovacuum on (PostgreSQL's default, and every production server) its ANALYZE runs once
a table changed by 50 rows + 10 %, and the plans are made again for the table's new size.
With autovacuum off, as on the machine these benchmarks were written on, nothing analyzes
the tables: the plan made when the outbox held a handful of rows (a sequential scan for
the push's "delivered" UPDATE) stayed while it grew, and Baton's PostgreSQL CPU per
bench/peer flow rose from 2.5 to 7.3 ms over 2,000 flows in one process (1.9 ms, flat,
with the statistics kept up to date).

`AutoAnalyze` is a thread that applies autovacuum's rule (`autovacuum_analyze_threshold`
and `autovacuum_analyze_scale_factor`, read from the server) every `every` seconds, to
both sides of a benchmark alike. Where autovacuum is on it has the same effect, sooner.
"""

from __future__ import annotations

import threading
from types import TracebackType

# The tables whose rows changed more than autovacuum's threshold since their last ANALYZE.
DUE = """
SELECT schemaname, relname FROM pg_stat_user_tables
WHERE n_mod_since_analyze > current_setting('autovacuum_analyze_threshold')::float
      + current_setting('autovacuum_analyze_scale_factor')::float * greatest(n_live_tup, 0)
"""


class AutoAnalyze(threading.Thread):
    """ANALYZE what autovacuum would, every `every` seconds, until the `with` block ends."""

    def __init__(self, dsn: str, *, every: float = 1.0) -> None:
        super().__init__(name="autoanalyze", daemon=True)
        self._dsn, self._every = dsn, every
        self._stop_event = threading.Event()
        self.analyzed = 0
        self.autovacuum = ""

    def run(self) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self._dsn, autocommit=True) as conn:
            row = conn.execute("SHOW autovacuum").fetchone()
            self.autovacuum = str(row[0]) if row else ""
            while not self._stop_event.wait(self._every):
                for schema, table in conn.execute(DUE).fetchall():
                    conn.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(schema, table)))
                    self.analyzed += 1

    def __enter__(self) -> AutoAnalyze:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop_event.set()
        self.join(timeout=30)

    def describe(self) -> str:
        return (
            f"planner statistics: autovacuum is {self.autovacuum or 'unknown'} on this server; the bench "
            f"applied autovacuum's analyze rule itself every {self._every:g}s ({self.analyzed} ANALYZE)"
        )
