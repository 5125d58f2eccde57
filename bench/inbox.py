"""bench/inbox: the inbox page on a million requests, beside hand-written SQL, on PostgreSQL.

Run it (PostgreSQL at 127.0.0.1:5432; the data set is made once and kept, about 3-4 min):

    .venv/bin/python -m bench.inbox                    # make the data if missing, then measure
    .venv/bin/python -m bench.inbox --rebuild --check  # make it again; exit 1 if a target is missed

The data set (database `baton_bench_inbox`, `--database`), generated in SQL with
generate_series after `migrate` (the time it takes is printed):

  10,000 users, 300 groups (each user in 0-4 of them, the measured person in 5), 10
  request types with a published one-stage policy, 1,000,000 requests (30 % in review,
  5 % back with their requester, 3 % drafts, the rest closed), 3,000,000 handoffs: per
  request two closed ones (its history) and a third, open for the requests in review
  (offered to one of the 300 groups; one in five claimed by someone; due dates spread
  from 2 days ago to 8 days ahead, so some are overdue), open to the requester for those
  sent back, closed for the rest. The measured person also stands in (an active
  delegation) for a colleague who holds items of their own.

What is measured, `--repeat` times each, after a warm-up:

  page       GET /inbox/ for the measured person through Django's test client: the whole
             server side of the page (middleware, session, the selector's queries, the
             navigation counts, the template); its SQL statements counted.
  selector   approvals.selectors.inbox_page alone (its queries and the Python around them).
  raw        the same rows and counts by hand, with psycopg on its own connection: the
             person's groups and delegators, the first page of 50 open handoffs joined to
             their requests, requesters and types in the inbox's order, and the counts.

Targets (issue 7): the page's statement count is the same whatever the page size (10 or
50 rows here; the test suite pins it for data sizes), and the page's p95 server time is
at most 2x the hand-written query's. Printed: p50/p95 of each, the ratios, the statements.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MEASURED = "bench-inbox-person"
STAND_IN_FOR = "bench-inbox-colleague"
PAGE = 50
TARGET_RATIO = 2.0


def _configure(*, server_url: str, database: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.embedded"
    os.environ["DATABASE_URL"] = f"{server_url.rstrip('/')}/{database}"
    os.environ.pop("REDIS_URL", None)
    os.environ["DEBUG"] = "0"  # DEBUG would keep every query in memory
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["CONN_MAX_AGE"] = "600"


def _database_exists(server_url: str, database: str) -> bool:
    import psycopg

    with psycopg.connect(f"{server_url.rstrip('/')}/postgres", autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
    return found is not None


def _recreate(server_url: str, database: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{server_url.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


# --- the data set ------------------------------------------------------------------------------


def _copy_of(table: str, template_id: int, overrides: dict[str, str], rows: str) -> str:
    """INSERT ... SELECT of `rows` copies of one template row, some columns computed."""
    from django.db import connection

    with connection.cursor() as cursor:
        columns = [
            c.name for c in connection.introspection.get_table_description(cursor, table) if c.name != "id"
        ]
    values = ", ".join(overrides.get(c, f"t.{c}") for c in columns)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} "
        f"FROM {rows}, (SELECT * FROM {table} WHERE id = {template_id}) AS t"
    )


def _build(*, requests: int, users: int, groups: int) -> dict[str, float]:
    """Migrate, then make the data set in SQL. Returns the seconds each part took."""
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection, transaction
    from guardian.shortcuts import assign_perm

    from accounts.models import Delegation, User
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
    group_rows = Group.objects.bulk_create([Group(name=f"bench-g{i:03d}") for i in range(groups)])
    template_user = User.objects.create_user(username=MEASURED, first_name="Bench", last_name="Person")
    colleague = User.objects.create_user(username=STAND_IN_FOR, first_name="Bench", last_name="Colleague")
    # The person and the colleague are approvers in the groups the policies name.
    template_user.groups.add(roles[APPROVERS], roles[REQUESTERS], *group_rows[:5])
    colleague.groups.add(roles[APPROVERS], roles[REQUESTERS], group_rows[0])
    types = []
    for i in range(10):
        request_type = RequestType.objects.create(slug=f"bench-type-{i}", name=f"Bench type {i}")
        document = {"stages": [{"name": "review", "approvers": {"groups": [group_rows[i % 5].name]}}]}
        policy_publish(
            version=policy_draft_create(request_type=request_type, document=document, actor=None), actor=None
        )
        assign_perm("approvals.submit_requesttype", roles[REQUESTERS], request_type)
        types.append(RequestType.objects.get(pk=request_type.pk))
    template = request_create(requester=colleague, request_type=types[0], title="template")
    handoff_template = Handoff.objects.for_instance(template).get()
    took["people, groups, types"] = time.perf_counter() - started

    first_group, type_ids = group_rows[0].pk, [t.pk for t in types]
    version_ids = [t.current_policy_id for t in types]
    with transaction.atomic(), connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(
            _copy_of(
                "accounts_user",
                template_user.pk,
                {
                    "username": "'bench-u' || g",
                    "first_name": "(ARRAY['Ann','Ben','Cleo','Dev','Eva','Finn','Gus','Hana'])[1 + g % 8]",
                    "last_name": "'Person' || g",
                    "email": "'u' || g || '@example.com'",
                },
                f"generate_series(1, {users - 2}) AS g",
            )
        )
        cursor.execute("SELECT min(id), max(id) FROM accounts_user WHERE username LIKE 'bench-u%%'")
        low, high = cursor.fetchone()
        # Each generated user in 0-4 of the groups (none of the measured person's five,
        # except for one user in forty, so those queues have several members).
        cursor.execute(
            "INSERT INTO accounts_user_groups (user_id, group_id) "
            "SELECT DISTINCT u.id, %s + ((u.id * 7 + k * 53) %% %s) FROM accounts_user u, generate_series(1, 4) AS k "
            "WHERE u.id BETWEEN %s AND %s AND k <= u.id %% 5 "
            "AND (u.id %% 40 = 0 OR (u.id * 7 + k * 53) %% %s >= 5) ON CONFLICT DO NOTHING",
            [first_group, groups, low, high, groups],
        )
        took["users and memberships"] = time.perf_counter() - started

        started = time.perf_counter()
        state = (
            "CASE WHEN g % 100 < 30 THEN 'in_review' WHEN g % 100 < 35 THEN 'changes_requested' "
            "WHEN g % 100 < 38 THEN 'draft' "
            "ELSE (ARRAY['approved','rejected','withdrawn','cancelled'])[1 + g % 4] END"
        )
        cursor.execute(
            _copy_of(
                "approvals_approvalrequest",
                template.pk,
                {
                    "request_type_id": f"(ARRAY{type_ids})[1 + g % 10]",
                    "policy_version_id": f"(ARRAY{version_ids})[1 + g % 10]",
                    "requester_id": f"{low} + (g * 7919) % {high - low + 1}",
                    "title": "'Request ' || g || ': ' || (ARRAY['desk','laptop','travel','training','software'])[1 + g % 5]",
                    "state": state,
                    "stage_index": "CASE WHEN g % 100 < 30 THEN 0 END",
                    "created_at": "now() - (g % 400000) * interval '1 minute'",
                    "updated_at": "now() - (g % 400000) * interval '1 minute'",
                    "submitted_at": "now() - (g % 400000) * interval '1 minute'",
                },
                f"generate_series(1, {requests - 1}) AS g",
            )
        )
        took["requests"] = time.perf_counter() - started

        started = time.perf_counter()
        # Two closed handoffs per request (its history), then the third: open for those
        # in review (a group's, one in five claimed) and for those sent back (the
        # requester's), closed for the rest.
        closed = {
            "object_id": "r.id::text",
            "candidate_group_id": f"{first_group} + (r.id * 31) % {groups}",
            "assignee_id": "NULL",
            "opened_at": "r.created_at",
            "closed_at": "r.created_at + interval '1 hour'",
            "close_reason": "'done'",
            "due_at": "NULL",
            "stage": "'review'",
        }
        rows = "approvals_approvalrequest AS r, generate_series(1, 2) AS k"
        cursor.execute(
            _copy_of("workflows_handoff", handoff_template.pk, closed, rows) + f" WHERE r.id <> {template.pk}"
        )
        third = {
            **closed,
            "assignee_id": (
                "CASE WHEN r.state = 'changes_requested' THEN r.requester_id "
                f"WHEN r.id % 5 = 0 THEN {low} + (r.id * 13) % {high - low + 1} END"
            ),
            "candidate_group_id": f"CASE WHEN r.state = 'changes_requested' THEN NULL ELSE {first_group} + (r.id * 31) % {groups} END",
            "stage": "CASE WHEN r.state = 'changes_requested' THEN 'changes' ELSE 'review' END",
            "closed_at": "CASE WHEN r.state IN ('in_review', 'changes_requested') THEN NULL ELSE r.created_at + interval '2 hours' END",
            "close_reason": "CASE WHEN r.state IN ('in_review', 'changes_requested') THEN '' ELSE 'done' END",
            "due_at": "CASE WHEN r.state = 'in_review' THEN now() + ((r.id % 240) - 48) * interval '1 hour' END",
        }
        rows = "approvals_approvalrequest AS r"
        cursor.execute(
            _copy_of("workflows_handoff", handoff_template.pk, third, rows) + f" WHERE r.id <> {template.pk}"
        )
        took["handoffs"] = time.perf_counter() - started

        started = time.perf_counter()
        # The measured person holds some items of their own, and so does the colleague
        # they stand in for.
        cursor.execute(
            "UPDATE workflows_handoff SET assignee_id = %s, claimed_at = now() "
            "WHERE closed_at IS NULL AND stage = 'review' AND id %% 1500 = 1",
            [template_user.pk],
        )
        cursor.execute(
            "UPDATE workflows_handoff SET assignee_id = %s, claimed_at = now() "
            "WHERE closed_at IS NULL AND stage = 'review' AND id %% 1500 = 2",
            [colleague.pk],
        )
        took["assignments"] = time.perf_counter() - started
    Delegation.objects.create(delegator=colleague, delegate=template_user, reason="bench")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    took["vacuum analyze"] = time.perf_counter() - started
    return took


def _sizes() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        found = {}
        for label, table in [
            ("users", "accounts_user"),
            ("groups", "auth_group"),
            ("requests", "approvals_approvalrequest"),
            ("handoffs", "workflows_handoff"),
        ]:
            cursor.execute(f"SELECT count(*) FROM {table}")
            found[label] = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM workflows_handoff WHERE closed_at IS NULL")
        found["open handoffs"] = cursor.fetchone()[0]
    return found


# --- measuring ---------------------------------------------------------------------------------


def _timed(repeat: int, run: Callable[[], Any]) -> list[float]:
    for _ in range(max(3, repeat // 10)):
        run()  # warm: caches, plans, connections
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return times


def _p(times: list[float], q: float) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


RAW_REACH = """
SELECT (SELECT coalesce(array_agg(group_id), '{}') FROM accounts_user_groups WHERE user_id = %(user)s),
       (SELECT coalesce(array_agg(d.delegator_id), '{}') FROM accounts_delegation d
        JOIN accounts_user u ON u.id = d.delegator_id AND u.is_active
        WHERE d.delegate_id = %(user)s AND d.revoked_at IS NULL AND d.starts_at <= now()
          AND (d.ends_at IS NULL OR d.ends_at > now()))
"""
RAW_HOLDERS = """
h.content_type_id = %(ct)s AND h.closed_at IS NULL
AND (h.assignee_id = %(user)s OR (h.assignee_id IS NULL AND h.candidate_group_id = ANY(%(groups)s))
     OR h.assignee_id = ANY(%(delegators)s))
"""
RAW_PAGE = f"""
SELECT h.id, h.stage, h.due_at, h.opened_at, h.assignee_id, h.candidate_group_id,
       r.id, r.title, r.state, t.name, u.username, u.first_name, u.last_name
FROM workflows_handoff h
JOIN approvals_approvalrequest r ON r.id = h.object_id::bigint
JOIN approvals_requesttype t ON t.id = r.request_type_id
JOIN accounts_user u ON u.id = r.requester_id
WHERE {RAW_HOLDERS}
ORDER BY h.due_at ASC NULLS LAST, h.id ASC
LIMIT %(limit)s
"""
RAW_COUNTS = f"""
SELECT count(*) FILTER (WHERE h.assignee_id = %(user)s),
       count(*) FILTER (WHERE h.assignee_id IS NULL AND h.candidate_group_id = ANY(%(groups)s)),
       count(*) FILTER (WHERE h.assignee_id = ANY(%(delegators)s)),
       count(*) FILTER (WHERE h.due_at < now())
FROM workflows_handoff h WHERE {RAW_HOLDERS}
"""


def _measure(*, repeat: int) -> dict[str, Any]:
    import psycopg
    from django.conf import settings
    from django.contrib.contenttypes.models import ContentType
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User
    from approvals.models import ApprovalRequest
    from approvals.selectors import inbox_page

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    person = User.objects.get(username=MEASURED)
    client = Client()
    client.force_login(person)
    content_type = ContentType.objects.get_for_model(ApprovalRequest).pk

    def page() -> None:
        response = client.get("/inbox/")
        assert response.status_code == 200, response.status_code

    def statements(url: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(
            [q for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
        )

    shown = inbox_page(user=User.objects.get(pk=person.pk), limit=PAGE)
    result: dict[str, Any] = {
        "rows": len(shown.rows),
        "counts": shown.counts,
        "statements": {"page of 50": statements("/inbox/"), "page of 10": _statements_at(client, 10)},
    }
    result["page"] = _timed(repeat, page)
    result["selector"] = _timed(repeat, lambda: inbox_page(user=User.objects.get(pk=person.pk), limit=PAGE))

    dsn = os.environ["DATABASE_URL"]
    with psycopg.connect(dsn) as raw:

        def hand_written() -> list[Any]:
            reach = raw.execute(RAW_REACH, {"user": person.pk}).fetchone()
            assert reach is not None
            groups, delegators = reach
            params = {"user": person.pk, "groups": groups, "delegators": delegators, "ct": content_type}
            rows = raw.execute(RAW_PAGE, {**params, "limit": PAGE + 1}).fetchall()
            raw.execute(RAW_COUNTS, params).fetchone()
            return rows

        raw_rows = hand_written()
        result["raw rows"] = min(len(raw_rows), PAGE)
        result["same rows"] = [r[0] for r in raw_rows[:PAGE]] == [row.handoff.pk for row in shown.rows]
        result["raw"] = _timed(repeat, hand_written)
    return result


def _statements_at(client: Any, size: int) -> int:
    """The page's statements with a page size of `size` (the view's PAGE_SIZE swapped)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from approvals.views import inbox as inbox_views

    saved = inbox_views.PAGE_SIZE
    inbox_views.PAGE_SIZE = size
    try:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/inbox/").status_code == 200
    finally:
        inbox_views.PAGE_SIZE = saved
    return len([q for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="baton_bench_inbox")
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--rebuild", action="store_true", help="make the data set again")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)

    _configure(server_url=args.server_url, database=args.database)
    build = args.rebuild or not _database_exists(args.server_url, args.database)
    if build:
        _recreate(args.server_url, args.database)
    import django

    django.setup()
    if build:
        print(f"making the data set in {args.database} ...", flush=True)
        started = time.perf_counter()
        took = _build(requests=args.requests, users=args.users, groups=args.groups)
        total = time.perf_counter() - started
        print("  " + ", ".join(f"{k} {v:.1f}s" for k, v in took.items()) + f"; total {total:.0f}s")
    else:
        print(f"using the data set in {args.database} (--rebuild to make it again)")
    print("  " + ", ".join(f"{k} {v:,}" for k, v in _sizes().items()))

    result = _measure(repeat=args.repeat)
    counts = result["counts"]
    print(
        f"\nthe measured person: 5 groups, 1 delegator; inbox {counts.total:,} items "
        f"({counts.mine} mine, {counts.queue:,} in their queues, {counts.delegated} delegated, "
        f"{counts.overdue:,} overdue); first page {result['rows']} rows"
    )
    print(f"SQL statements per page: {result['statements']}")
    print(f"hand-written query returns the same rows in the same order: {result['same rows']}")
    print(f"\n{'':10} {'p50 ms':>8} {'p95 ms':>8}   ({args.repeat} runs each)")
    for side in ("page", "selector", "raw"):
        times = result[side]
        print(f"{side:10} {statistics.median(times):8.2f} {_p(times, 0.95):8.2f}")
    page_ratio = _p(result["page"], 0.95) / _p(result["raw"], 0.95)
    selector_ratio = _p(result["selector"], 0.95) / _p(result["raw"], 0.95)
    same = len(set(result["statements"].values())) == 1
    print(
        f"\nratio page p95 / raw p95: {page_ratio:.2f} (target <= {TARGET_RATIO}); "
        f"selector p95 / raw p95: {selector_ratio:.2f}"
    )
    print(f"statements the same for 10 and 50 rows: {same}")
    ok = page_ratio <= TARGET_RATIO and same and result["same rows"]
    print("targets met" if ok else "TARGET MISSED")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
