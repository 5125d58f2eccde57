"""bench/timers: the timers scan on 100,000 open handoffs due over a day, on PostgreSQL,
beside one hand-written SQL query selecting the same due rows in the same run.

Run it (PostgreSQL at 127.0.0.1:5432; the data set is made afresh each run, ~30 s):

    .venv/bin/python -m bench.timers                       # database baton_bench_timers
    .venv/bin/python -m bench.timers --database baton_timers --check

The data set, generated in SQL with generate_series after `migrate`: one request type
whose one 'review' stage has a 1-day SLA and no escalation target (so an overdue handoff
escalates by telling its holder's manager: a notification per item); 100,000 requests
in review, each with one open handoff held by one approver (who has a manager), due
times spread evenly over a day from T0, its timer at its due time.

What is measured, for two scan moments (by default when 1 % and then 2 % of the
handoffs have come due, the second scan finding only those the first did not):

  raw    the hand-written query selecting the due rows (the scan's own condition and
         order), timed, with psycopg on its own connection, before the scan;
  find   the scan's own statements that find the due handoffs (their summed time);
  scan   approvals.timers.handoff_timers_scan(now=...): finds the due handoffs in
         batches (SELECT ... FOR UPDATE SKIP LOCKED), locks their requests, and
         escalates each; timed, its SQL statements counted by kind.

Target (issue 11): the statements that find work are one per batch (plus the requests'
lock, one per batch, and the final empty batch), never one per due item; the escalations'
own statements are a constant number per item. Printed: the times, the statements per
kind, batches, and whether the scan escalated exactly the rows the raw query selected.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter, deque
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

T0 = datetime(2030, 1, 7, 0, 0, tzinfo=UTC)
HOLDER = "bench-timers-holder"

RAW_DUE = """
SELECT id FROM workflows_handoff
WHERE content_type_id = %(ct)s AND closed_at IS NULL AND next_timer_at <= %(now)s
ORDER BY next_timer_at, id
"""


def _configure(*, server_url: str, database: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.embedded"
    os.environ["DATABASE_URL"] = f"{server_url.rstrip('/')}/{database}"
    os.environ.pop("REDIS_URL", None)
    os.environ["DEBUG"] = "0"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.dummy.EmailBackend"


def _recreate(server_url: str, database: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{server_url.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def _copy_of(table: str, template_id: int, overrides: dict[str, str], rows: str) -> str:
    """INSERT ... SELECT of `rows` copies of one template row, some columns computed."""
    from django.db import connection

    with connection.cursor() as cursor:
        columns = [
            c.name for c in connection.introspection.get_table_description(cursor, table) if c.name != "id"
        ]
    values = ", ".join(overrides.get(c, f"t.{c}") for c in columns)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} "  # nosec B608 - bench-only SQL from constants
        f"FROM {rows}, (SELECT * FROM {table} WHERE id = {template_id}) AS t"
    )


def _build(*, handoffs: int) -> dict[str, float]:
    from django.core.management import call_command
    from django.db import connection, transaction
    from guardian.shortcuts import assign_perm

    from accounts.models import User
    from accounts.roles import APPROVERS, REQUESTERS, roles_sync
    from approvals.models import RequestType
    from approvals.publishing import policy_draft_create, policy_publish
    from approvals.services import request_create
    from workflows.models import Handoff

    took: dict[str, float] = {}
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    took["migrate"] = time.perf_counter() - started

    started = time.perf_counter()
    roles = roles_sync()
    boss = User.objects.create_user(username="bench-timers-boss")
    holder = User.objects.create_user(username=HOLDER, manager=boss)
    holder.groups.add(roles[APPROVERS])
    requester = User.objects.create_user(username="bench-timers-requester")
    requester.groups.add(roles[REQUESTERS])
    kind = RequestType.objects.create(slug="bench-timers", name="Bench timers")
    document = {"stages": [{"name": "review", "approvers": {"users": [HOLDER]}, "sla": "1d"}]}
    policy_publish(version=policy_draft_create(request_type=kind, document=document, actor=None), actor=None)
    assign_perm("approvals.submit_requesttype", roles[REQUESTERS], kind)
    kind.refresh_from_db()
    template = request_create(requester=requester, request_type=kind, title="template")
    handoff_template = Handoff.objects.for_instance(template).get()
    took["people and type"] = time.perf_counter() - started

    with transaction.atomic(), connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(
            _copy_of(
                "approvals_approvalrequest",
                template.pk,
                {"title": "'Request ' || g"},
                f"generate_series(1, {handoffs - 1}) AS g",
            )
        )
        took["requests"] = time.perf_counter() - started
        started = time.perf_counter()
        # Request n's handoff (n counted from the template's, 0) is due at T0 + n/N of a day.
        due = f"%(t0)s::timestamptz + interval '86400 seconds' * (r.id - {template.pk}) / {handoffs}"
        overrides = {
            "object_id": "r.id::text",
            "due_at": due,
            "next_timer_at": due,
            "opened_at": f"{due} - interval '1 day'",
        }
        copies = _copy_of(
            "workflows_handoff", handoff_template.pk, overrides, "approvals_approvalrequest AS r"
        )
        cursor.execute(copies + f" WHERE r.id <> {template.pk}", {"t0": T0})
        cursor.execute(
            "UPDATE workflows_handoff SET due_at = %s, next_timer_at = %s, opened_at = %s WHERE id = %s",
            [T0, T0, T0 - timedelta(days=1), handoff_template.pk],
        )
        took["handoffs"] = time.perf_counter() - started
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    took["vacuum analyze"] = time.perf_counter() - started
    return took


def _kind_of(sql: str) -> str:
    text = sql.upper()
    locking = "FOR UPDATE" in text and "SKIP LOCKED" in text
    if locking and text.split(" FROM ", 1)[-1].startswith('"WORKFLOWS_HANDOFF"'):
        return "find due handoffs (per batch)"
    if locking:
        return "lock their requests (per batch)"
    if text.startswith(("SAVEPOINT", "RELEASE SAVEPOINT")):
        return "savepoints"
    return "escalations' own"


def _scan_at(fraction: float, *, batch_size: int) -> dict[str, Any]:
    import psycopg
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from approvals.models import ApprovalRequest
    from approvals.timers import handoff_timers_scan
    from workflows.models import Handoff

    now = T0 + timedelta(days=fraction)
    content_type = ContentType.objects.get_for_model(ApprovalRequest).pk
    with psycopg.connect(os.environ["DATABASE_URL"]) as raw:
        started = time.perf_counter()
        selected = [row[0] for row in raw.execute(RAW_DUE, {"ct": content_type, "now": now}).fetchall()]
        raw_ms = (time.perf_counter() - started) * 1000
    before = set(Handoff.objects.filter(escalated_at__isnull=False).values_list("pk", flat=True))
    # Keep every statement of the scan, not Django's last 9,000.
    connection.queries_limit = 10_000_000
    connection.queries_log = deque(maxlen=connection.queries_limit)
    with CaptureQueriesContext(connection) as captured:
        started = time.perf_counter()
        report = handoff_timers_scan(now=now, batch_size=batch_size)
        scan_ms = (time.perf_counter() - started) * 1000
    escalated = set(Handoff.objects.filter(escalated_at__isnull=False).values_list("pk", flat=True)) - before
    kinds = Counter(_kind_of(q["sql"]) for q in captured.captured_queries)
    find_ms = sum(
        float(q["time"]) * 1000
        for q in captured.captured_queries
        if _kind_of(q["sql"]) == "find due handoffs (per batch)"
    )
    return {
        "now": now,
        "due": len(selected),
        "raw_ms": raw_ms,
        "scan_ms": scan_ms,
        "find_ms": find_ms,
        "report": report,
        "kinds": kinds,
        "same rows": escalated == set(selected),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--server-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="baton_bench_timers")
    parser.add_argument("--handoffs", type=int, default=100_000)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--fractions", default="0.01,0.02", help="scan moments, as fractions of the day")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    _configure(server_url=args.server_url, database=args.database)
    _recreate(args.server_url, args.database)
    import django
    from django.conf import settings

    django.setup()
    settings.DEBUG = False
    print(f"making {args.handoffs:,} open handoffs due over a day in {args.database} ...", flush=True)
    took = _build(handoffs=args.handoffs)
    print("  " + ", ".join(f"{k} {v:.1f}s" for k, v in took.items()))

    ok = True
    per_item: list[float] = []
    print(f"\nbatch size {args.batch_size}")
    header = (
        f"{'scan at':>8} {'due':>6} {'raw ms':>8} {'find ms':>8} {'scan ms':>9} {'batches':>7} "
        f"{'find':>5} {'lock':>5} {'per item':>8} same rows"
    )
    print(header)
    for fraction in (float(f) for f in args.fractions.split(",")):
        result = _scan_at(fraction, batch_size=args.batch_size)
        kinds, report = result["kinds"], result["report"]
        find = kinds["find due handoffs (per batch)"]
        lock = kinds["lock their requests (per batch)"]
        escalated = report.fired.get("escalated:notify_manager", 0)
        own = kinds["escalations' own"] + kinds["savepoints"]
        per = own / escalated if escalated else 0.0
        per_item.append(per)
        print(
            f"{fraction:8.2%} {result['due']:6,} {result['raw_ms']:8.1f} {result['find_ms']:8.1f} {result['scan_ms']:9.1f} "
            f"{report.batches:7} {find:5} {lock:5} {per:8.2f} {result['same rows']}"
        )
        # One find per batch, plus the last one that finds the batch short or empty.
        ok &= find <= report.batches + 1 and lock == report.batches and result["same rows"]
        ok &= escalated == result["due"]
    steady = max(per_item) - min(per_item) < 0.5 if per_item else False
    print(
        "\nfind statements: one per batch (+1 that finds nothing more); escalation statements per item "
        f"steady across scan sizes: {steady}"
    )
    ok &= steady
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
