"""bench/audit: the auditors' log and export over millions of entries, beside hand-written SQL.

Run it (PostgreSQL at 127.0.0.1:5432; no Redis needed):

    .venv/bin/python -m bench.audit                        # 3,000,000 entries
    .venv/bin/python -m bench.audit --entries 200000       # while developing

It drops and re-creates the database `baton_audit_bench` (`--database`), migrates it, makes
the people, groups and request types through the ORM, then generates the trail fast:

  Requests follow six scripts (approved after a claim; changes asked, resubmitted and
  approved, some of them on behalf of the approver; rejected; cancelled by a manager;
  reassigned by a manager then approved; moved by the system to another policy version then
  approved), 4.1 entries each on average, created at an even pace over one year, each next
  step an exponentially distributed while later (mean four hours). A heap of the chains in
  flight emits every entry in time order, so the table is laid out as a live one would be.
  Each entry is hash-chained exactly as `workflows.audit.entry_hash` does (the same
  canonical JSON, SHA-256, prev_hash), and each request row carries its chain's head, so
  `audit_verify` passes (`--verify` runs it). Rows go in with COPY from Python; the
  audit table's plain indexes are dropped for the load and made again after it.

What is measured, in the same run, on the same database:

  page    the first page (50 entries) of the log with three filters (an approver as actor,
          decisions only, the last six months): `approvals.audit.selectors.audit_page`,
          the selector the page renders (3 statements: the entries with their requests'
          titles and types, the capped count, the names of the people and groups named), p50/p95 over `--page-runs` runs; its statements are
          counted at two page sizes (constant). Beside it, hand-written SQL through psycopg
          for the same data: the page's entries joined with actor, on-behalf-of, request
          and type, and the same capped count (2 statements). Target: page p95 <= 2x.
          The whole page through Django's test client (template included) is printed too.
  export  a full export as CSV (`approvals.audit.export.export_stream`, every entry),
          drained in a child process: rows per second and the child's peak RSS. Beside it,
          PostgreSQL's COPY of the same rows (same columns, joins and order) TO STDOUT as
          CSV, drained by psycopg in another child. Target: export >= 0.3x COPY, with
          flat memory (peak RSS of the export child beside an idle Django child's).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import heapq
import json
import multiprocessing as mp
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DB_NAME = "baton_audit_bench"
GENESIS = "0" * 64
PAGE_TARGET = 2.0
EXPORT_TARGET = 0.3
START = datetime(2025, 1, 1, tzinfo=UTC)
YEAR = timedelta(days=365)


def _configure(*, server_url: str, database: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.embedded"
    os.environ["DATABASE_URL"] = f"{server_url.rstrip('/')}/{database}"
    os.environ["DEBUG"] = "0"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["CONN_MAX_AGE"] = "600"
    os.environ.pop("REDIS_URL", None)
    os.environ["ALLOWED_HOSTS"] = "localhost,127.0.0.1,testserver"  # the page through the test client


def _setup() -> None:
    import django

    django.setup()


def _recreate(server_url: str, database: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{server_url.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


# --- the people -------------------------------------------------------------------------------


@dataclass
class Cast:
    requesters: list[int]
    approvers: list[int]
    managers: list[int]
    auditor: int
    group: int
    types: list[int]
    versions: dict[int, list[int]]  # per type: its two published versions
    content_type: int


def _people() -> Cast:
    from django.contrib.auth.models import Group
    from django.contrib.contenttypes.models import ContentType
    from django.core.management import call_command
    from django.utils import timezone

    from accounts.models import User
    from accounts.roles import APPROVERS, AUDITORS, MANAGERS, REQUESTERS, roles_sync
    from approvals.models import ApprovalRequest, PolicyVersion, RequestType

    call_command("migrate", verbosity=0)
    roles = roles_sync()
    reviewers = Group.objects.create(name="reviewers")

    def people(prefix: str, count: int, *groups: Group) -> list[int]:
        made = User.objects.bulk_create(
            [User(username=f"{prefix}{n}", first_name=prefix.title(), last_name=str(n)) for n in range(count)]
        )
        for user in made:
            user.groups.add(*groups)
        return [u.pk for u in made]

    types, versions = [], {}
    for slug in ("expense", "purchase", "access", "content", "general"):
        request_type = RequestType.objects.create(slug=slug, name=slug.title())
        pair = []
        for number in (1, 2):
            document = {"stages": [{"name": "review", "approvers": {"groups": ["reviewers"]}, "rule": "any"}]}
            version = PolicyVersion(
                request_type=request_type, number=number, document=document, source="bench"
            )
            version.status, version.published_at = PolicyVersion.Status.PUBLISHED, timezone.now()
            version.save()
            pair.append(version.pk)
        types.append(request_type.pk)
        versions[request_type.pk] = pair
    return Cast(
        requesters=people("requester", 200, roles[REQUESTERS]),
        approvers=people("approver", 40, roles[APPROVERS], reviewers),
        managers=people("manager", 5, roles[MANAGERS]),
        auditor=people("auditor", 1, roles[AUDITORS])[0],
        group=reviewers.pk,
        types=types,
        versions=versions,
        content_type=ContentType.objects.get_for_model(ApprovalRequest).pk,
    )


# --- the trail --------------------------------------------------------------------------------

# (action, who, source, target, kind); who: requester | approver | manager | system | delegate
SCRIPTS: list[tuple[float, list[tuple[str, str, str, str, str]]]] = [
    (
        0.40,
        [
            ("claim", "approver", "in_review", "in_review", "handoff"),
            ("approve", "approver", "in_review", "approved", "transition"),
        ],
    ),
    (
        0.20,
        [
            ("request_changes", "approver", "in_review", "changes_requested", "transition"),
            ("resubmit", "requester", "changes_requested", "in_review", "transition"),
            ("approve", "delegate", "in_review", "approved", "transition"),
        ],
    ),
    (0.10, [("reject", "approver", "in_review", "rejected", "transition")]),
    (0.10, [("cancel", "manager", "in_review", "cancelled", "transition")]),
    (
        0.10,
        [
            ("claim", "approver", "in_review", "in_review", "handoff"),
            ("reassign", "manager", "in_review", "in_review", "handoff"),
            ("approve", "approver", "in_review", "approved", "transition"),
        ],
    ),
    (
        0.10,
        [
            ("move_policy", "system", "in_review", "in_review", "transition"),
            ("approve", "approver", "in_review", "approved", "transition"),
        ],
    ),
]
COMMENTS = {
    "approve": ["Looks right.", "Approved.", "Within budget.", ""],
    "reject": ["Too expensive.", "Not needed this quarter."],
    "request_changes": ["Please attach the quote.", "Which cost centre?"],
    "cancel": ["No budget left.", "Duplicate of another request."],
    "reassign": ["Out of office.", "Better placed with another reviewer."],
    "move_policy": ["Moved to v2."],
}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def entry_hash(body: dict[str, Any]) -> str:
    """As workflows.audit.entry_hash: SHA-256 of the canonical JSON of the hashed fields."""
    return hashlib.sha256(
        json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    ).hexdigest()


@dataclass
class Chain:
    request_id: int
    requester: int
    approver: int
    request_type: int
    steps: list[tuple[str, str, str, str, str]]
    seq: int = 0
    head: str = GENESIS
    state: str = "draft"
    created: datetime = START
    submitted: datetime | None = None
    decided: datetime | None = None
    version: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _data(chain: Chain, action: str, cast: Cast, handoff: int) -> dict[str, Any]:
    """Entry data in the shapes the product writes (approvals.records, workflows.records)."""
    slot = f"group:{cast.group}"
    opened = {
        "id": handoff,
        "stage": "review",
        "slot": slot,
        "user": None,
        "group": cast.group,
        "due_at": None,
    }
    closed = {"id": handoff - 1, "reason": "done", "user": chain.approver, "group": cast.group}
    if action == "create":
        return {
            "fields": {
                "request_type_id": chain.request_type,
                "requester_id": chain.requester,
                "title": f"Request {chain.request_id}",
                "revision": 1,
            }
        }
    if action == "submit":
        return {
            "route": {"to": "review"},
            "changes": {"stage_index": [None, 0], "stage_slots": [[], [slot]]},
            "handoffs": {"closed": [], "opened": [opened]},
        }
    if action in ("claim", "unclaim"):
        return {"handoff": handoff, "user": chain.approver, "group": cast.group}
    if action == "reassign":
        return {
            "from": {**opened, "user": chain.approver},
            "to": {**opened, "id": handoff + 1, "user": chain.extra["to"]},
        }
    if action in ("approve", "reject", "request_changes"):
        outcome = "met" if action == "approve" else "failed"
        return {
            "decision": {
                "stage": "review",
                "outcome": action,
                "revision": chain.extra.get("revision", 1),
                "slot": slot,
                "stage_outcome": outcome,
            },
            "route": {"from": "review", "to": None},
            "changes": {"stage_index": [0, None], "stage_slots": [[slot], []]},
            "handoffs": {"closed": [closed], "opened": []},
        }
    if action == "resubmit":
        return {
            "route": {"to": "review"},
            "revision": {
                "number": 2,
                "diff": [{"field": "description", "before": "", "after": "Quote attached."}],
            },
            "handoffs": {"closed": [closed], "opened": [opened]},
        }
    if action == "move_policy":
        versions = cast.versions[chain.request_type]
        return {
            "policy": {"from": versions[0], "to": versions[1]},
            "route": {"to": "review"},
            "changes": {"policy_version_id": versions},
            "system": True,
        }
    return {"handoffs": {"closed": [closed], "opened": []}}


def _generate(args: argparse.Namespace, cast: Cast) -> tuple[int, int]:
    """COPY the requests and their entries in; returns (requests, entries)."""
    import psycopg

    rng = random.Random(args.seed)
    dsn = f"{args.pg_url.rstrip('/')}/{args.database}"
    mean_entries = sum(weight * (2 + len(steps)) for weight, steps in SCRIPTS)
    requests_wanted = max(1, round(args.entries / mean_entries))
    pace = YEAR / requests_wanted
    weights = [w for w, _ in SCRIPTS]
    scripts = [s for _, s in SCRIPTS]
    entries_conn = psycopg.connect(dsn)
    requests_conn = psycopg.connect(dsn)
    with entries_conn.cursor() as cur:
        cur.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'workflows_auditentry' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        )
        plain = cur.fetchall()
        for name, _ in plain:
            cur.execute(f'DROP INDEX "{name}"')
        cur.execute("SET session_replication_role = replica")  # no FK checks while loading
    with requests_conn.cursor() as cur:
        cur.execute("SET session_replication_role = replica")
    entry_columns = (
        "id, content_type_id, object_id, seq, kind, action, source, target, actor_id, on_behalf_of_id, "
        "comment, data, trace_id, created_at, prev_hash, hash"
    )
    request_columns = (
        "id, version, audit_seq, audit_head, created_at, updated_at, request_type_id, requester_id, title, "
        "description, payload, state, revision, policy_version_id, stage_index, stage_slots, submitted_at, decided_at"
    )
    heap: list[tuple[datetime, int, Chain]] = []
    entry_id = 0
    next_request = 1
    next_created = START
    handoff = 1
    made = 0
    with (
        entries_conn.cursor().copy(f"COPY workflows_auditentry ({entry_columns}) FROM STDIN") as entries,
        requests_conn.cursor().copy(
            f"COPY approvals_approvalrequest ({request_columns}) FROM STDIN"
        ) as requests,
    ):
        while next_request <= requests_wanted or heap:
            if next_request <= requests_wanted and (not heap or next_created <= heap[0][0]):
                request_type = rng.choice(cast.types)
                chain = Chain(
                    request_id=next_request,
                    requester=rng.choice(cast.requesters),
                    approver=rng.choice(cast.approvers),
                    request_type=request_type,
                    steps=[
                        ("create", "requester", "", "draft", "created"),
                        ("submit", "requester", "draft", "in_review", "transition"),
                        *rng.choices(scripts, weights)[0],
                    ],
                    created=next_created,
                    version=cast.versions[request_type][0],
                )
                heapq.heappush(heap, (next_created, next_request, chain))
                next_request += 1
                next_created += pace
                continue
            moment, order, chain = heapq.heappop(heap)
            action, who, source, target, kind = chain.steps[chain.seq]
            actor: int | None = {
                "requester": chain.requester,
                "approver": chain.approver,
                "manager": cast.managers[chain.request_id % len(cast.managers)],
                "system": None,
                "delegate": cast.approvers[(cast.approvers.index(chain.approver) + 1) % len(cast.approvers)],
            }[who]
            on_behalf = chain.approver if who == "delegate" and chain.request_id % 3 == 0 else None
            if who == "delegate" and on_behalf is None:
                actor = chain.approver
            if action == "reassign":
                chain.extra["to"] = cast.approvers[
                    (cast.approvers.index(chain.approver) + 7) % len(cast.approvers)
                ]
            if action == "resubmit":
                chain.extra["revision"] = 2
            comment = rng.choice(COMMENTS.get(action, [""]))
            data = _data(chain, action, cast, handoff)
            handoff += 1
            chain.seq += 1
            entry_id += 1
            ref = f"approvals.approvalrequest:{chain.request_id}"
            trace = f"{entry_id:032x}"
            body = {
                "ref": ref,
                "seq": chain.seq,
                "kind": kind,
                "action": action,
                "source": source,
                "target": target,
                "actor": actor,
                "on_behalf_of": on_behalf,
                "comment": comment,
                "data": data,
                "trace_id": trace,
                "created_at": _iso(moment),
                "prev_hash": chain.head,
            }
            digest = entry_hash(body)
            entries.write_row(
                (
                    entry_id,
                    cast.content_type,
                    str(chain.request_id),
                    chain.seq,
                    kind,
                    action,
                    source,
                    target,
                    actor,
                    on_behalf,
                    comment,
                    json.dumps(data, ensure_ascii=False),
                    trace,
                    moment,
                    chain.head,
                    digest,
                )
            )
            chain.head, chain.state = digest, target
            if action == "submit":
                chain.submitted = moment
            if action == "move_policy":
                chain.version = cast.versions[chain.request_type][1]
            if target in ("approved", "rejected"):
                chain.decided = moment
            made += 1
            if chain.seq < len(chain.steps):
                later = moment + timedelta(seconds=rng.expovariate(1 / (4 * 3600)) + 1)
                heapq.heappush(heap, (later, order, chain))
            else:
                requests.write_row(
                    (
                        chain.request_id,
                        chain.seq,
                        chain.seq,
                        chain.head,
                        chain.created,
                        moment,
                        chain.request_type,
                        chain.requester,
                        f"Request {chain.request_id}",
                        "",
                        "{}",
                        chain.state,
                        chain.extra.get("revision", 1),
                        chain.version,
                        None,
                        "[]",
                        chain.submitted,
                        chain.decided,
                    )
                )
    for conn, table in ((entries_conn, "workflows_auditentry"), (requests_conn, "approvals_approvalrequest")):
        conn.commit()
        with conn.cursor() as cur:
            cur.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        conn.commit()
    with entries_conn.cursor() as cur:
        cur.execute("SET session_replication_role = DEFAULT")
        cur.execute("SET maintenance_work_mem = '512MB'")
        for _, definition in plain:
            cur.execute(definition)
    entries_conn.commit()
    entries_conn.close()
    requests_conn.close()
    _vacuum(dsn)
    return requests_wanted, made


def _vacuum(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")


# --- the page ------------------------------------------------------------------------------------

HAND_PAGE_SQL = """
SELECT e.id, e.object_id, e.seq, e.kind, e.action, e.source, e.target, e.comment, e.data, e.trace_id,
       e.created_at, e.prev_hash, e.hash, a.id, a.username, a.first_name, a.last_name,
       b.id, b.username, b.first_name, b.last_name, r.title, r.state, t.name
FROM workflows_auditentry e
LEFT JOIN accounts_user a ON a.id = e.actor_id
LEFT JOIN accounts_user b ON b.id = e.on_behalf_of_id
LEFT JOIN approvals_approvalrequest r ON e.content_type_id = %(ct)s AND r.id = e.object_id::bigint
LEFT JOIN approvals_requesttype t ON t.id = r.request_type_id
WHERE e.actor_id = %(actor)s AND e.action IN ('approve', 'reject', 'request_changes') AND e.created_at >= %(since)s
ORDER BY e.created_at DESC, e.id DESC
LIMIT 51
"""
HAND_COUNT_SQL = """
SELECT count(*) FROM (SELECT 1 FROM workflows_auditentry e
WHERE e.actor_id = %(actor)s AND e.action IN ('approve', 'reject', 'request_changes') AND e.created_at >= %(since)s
LIMIT 10001) s
"""


def _peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM; ru_maxrss would carry the parent's over exec)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


def _page(args: argparse.Namespace, cast: Cast) -> dict[str, Any]:
    import psycopg
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from accounts.models import User
    from approvals.audit.filters import AuditFilter
    from approvals.audit.selectors import audit_page

    since = START + YEAR / 2
    # The busiest approver: the most decisions in the period.
    actor_id = cast.approvers[0]
    audit_filter = AuditFilter(actor=User.objects.get(pk=actor_id), action="decisions", since=since.date())
    found = audit_page(audit_filter=audit_filter, limit=50)
    statements = []
    for size in (10, 50):
        with CaptureQueriesContext(connection) as captured:
            audit_page(audit_filter=audit_filter, limit=size)
        statements.append(len(captured.captured_queries))
    selector, hand, whole = [], [], []
    params = {
        "actor": actor_id,
        "since": datetime.combine(since.date(), datetime.min.time(), UTC),
        "ct": cast.content_type,
    }
    dsn = f"{args.pg_url.rstrip('/')}/{args.database}"
    client = Client()
    client.force_login(User.objects.get(pk=cast.auditor))
    url = reverse("audit:log") + f"?actor=approver0&action=decisions&since={since.date().isoformat()}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(10):  # warm both
            audit_page(audit_filter=audit_filter, limit=50)
            conn.execute(HAND_PAGE_SQL, params).fetchall()
        for _ in range(args.page_runs):
            began = time.perf_counter()
            audit_page(audit_filter=audit_filter, limit=50)
            selector.append(time.perf_counter() - began)
            began = time.perf_counter()
            rows = conn.execute(HAND_PAGE_SQL, params).fetchall()
            conn.execute(HAND_COUNT_SQL, params).fetchone()
            hand.append(time.perf_counter() - began)
        assert len(rows) >= len(found.rows)
        for _ in range(max(20, args.page_runs // 5)):
            began = time.perf_counter()
            response = client.get(url)
            whole.append(time.perf_counter() - began)
            assert response.status_code == 200
    return {
        "statements": statements,
        "count": found.count,
        "capped": found.count_capped,
        "rows": len(found.rows),
        "selector": selector,
        "hand": hand,
        "whole": whole,
    }


# --- the export ----------------------------------------------------------------------------------

COPY_SQL = """
COPY (SELECT e.id, ct.app_label || '.' || ct.model || ':' || e.object_id, e.seq,
             to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
             e.kind, e.action, e.source, e.target, e.actor_id, a.username, e.on_behalf_of_id, b.username,
             e.comment, e.data, e.trace_id, e.prev_hash, e.hash
      FROM workflows_auditentry e
      JOIN django_content_type ct ON ct.id = e.content_type_id
      LEFT JOIN accounts_user a ON a.id = e.actor_id
      LEFT JOIN accounts_user b ON b.id = e.on_behalf_of_id
      ORDER BY e.created_at, e.id) TO STDOUT WITH (FORMAT csv, HEADER)
"""


def _child_export(env: dict[str, str], auditor: int, out: Any) -> None:
    os.environ.update(env)
    _setup()
    from accounts.models import User
    from approvals.audit.export import export_start, export_stream
    from approvals.audit.filters import AuditFilter

    user = User.objects.get(pk=auditor)
    rss_ready = _peak_rss_mb()
    began = time.perf_counter()
    export = export_start(user=user, audit_filter=AuditFilter(), fmt="csv")
    size = 0
    last = b""
    for piece in export_stream(export=export, audit_filter=AuditFilter(), user=user):
        size += len(piece)
        last = piece
    seconds = time.perf_counter() - began
    rows = json.loads(next(csv.reader([last.decode()]))[1])["completeness"]["rows"]
    out.put(
        {
            "seconds": seconds,
            "bytes": size,
            "rows": rows,
            "rss_ready": rss_ready,
            "rss_peak": _peak_rss_mb(),
        }
    )


def _child_copy(dsn: str, out: Any) -> None:
    import psycopg

    rss_ready = _peak_rss_mb()
    began = time.perf_counter()
    size = lines = 0
    with psycopg.connect(dsn) as conn, conn.cursor().copy(COPY_SQL) as copy:
        for block in copy:
            size += len(block)
            lines += bytes(block).count(b"\n")
    seconds = time.perf_counter() - began
    out.put(
        {
            "seconds": seconds,
            "bytes": size,
            "lines": lines,
            "rss_ready": rss_ready,
            "rss_peak": _peak_rss_mb(),
        }
    )


def _child_idle(env: dict[str, str], out: Any) -> None:
    os.environ.update(env)
    _setup()
    from approvals.audit import export  # noqa: F401  (loaded as for the export)

    out.put({"rss_peak": _peak_rss_mb()})


def _in_child(target: Any, *args: Any) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    process = ctx.Process(target=target, args=(*args, out))
    process.start()
    result = out.get(timeout=3600)
    process.join(timeout=60)
    return result


# --- main ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=3_000_000, help="entries to generate (3,000,000)")
    parser.add_argument("--page-runs", type=int, default=200, help="timed runs of the first page (200)")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server")
    parser.add_argument("--database", default=DB_NAME, help=f"database to drop and re-create ({DB_NAME})")
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--verify", action="store_true", help="run audit_verify over the generated trail")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is not met")
    args = parser.parse_args(argv)
    began = time.monotonic()
    _configure(server_url=args.pg_url, database=args.database)
    _recreate(args.pg_url, args.database)
    _setup()
    dsn = f"{args.pg_url.rstrip('/')}/{args.database}"
    print(f"bench/audit: {args.entries:,} entries wanted; database {args.database}")
    cast = _people()
    generated_at = time.monotonic()
    requests, entries = _generate(args, cast)
    generated = time.monotonic() - generated_at
    print(
        f"generated {entries:,} hash-chained entries of {requests:,} requests in {generated:.0f}s "
        f"({entries / generated:,.0f} entries/s, COPY from Python, indexes rebuilt after)"
    )
    from django.db import connections

    connections.close_all()
    if args.verify:
        from workflows.audit import audit_verify

        at = time.monotonic()
        report = audit_verify()
        print(
            f"audit_verify: {report.entries:,} entries in {report.chains:,} chains, intact={report.ok} ({time.monotonic() - at:.0f}s)"
        )
        if not report.ok:
            print(f"  first break: {report.first_break}")
            return 2

    page = _page(args, cast)
    sel95, hand95 = _percentile(page["selector"], 95), _percentile(page["hand"], 95)
    ratio = sel95 / hand95
    print(
        f"\npage: actor=approver0, decisions, since {(START + YEAR / 2).date()}: {page['rows']} rows of "
        f"{'more than ' if page['capped'] else ''}{page['count']:,} matching"
    )
    print(f"  statements per page at sizes 10 and 50: {page['statements'][0]} and {page['statements'][1]}")
    print(f"  {'':<34} {'p50 ms':>8} {'p95 ms':>8}")
    for name, values in (
        ("selector (audit_page, 3 stmts)", page["selector"]),
        ("hand-written SQL (2 stmts)", page["hand"]),
        ("whole page (test client)", page["whole"]),
    ):
        print(f"  {name:<34} {_percentile(values, 50) * 1000:>8.2f} {_percentile(values, 95) * 1000:>8.2f}")
    page_ok = ratio <= PAGE_TARGET
    print(
        f"  ratio selector/hand p95 = {ratio:.2f} (target <= {PAGE_TARGET}: {'met' if page_ok else 'NOT met'})"
    )

    connections.close_all()
    env = {
        k: os.environ[k]
        for k in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "DEBUG", "LOG_LEVEL", "CONN_MAX_AGE")
    }
    idle = _in_child(_child_idle, env)
    exported = _in_child(_child_export, env, cast.auditor)
    copied = _in_child(_child_copy, dsn)
    export_rate = exported["rows"] / exported["seconds"]
    copy_rate = (copied["lines"] - 1) / copied["seconds"]
    export_ratio = export_rate / copy_rate
    export_ok = export_ratio >= EXPORT_TARGET
    print(f"\nexport of every entry ({exported['rows']:,} rows):")
    print(f"  {'':<28} {'rows/s':>10} {'seconds':>8} {'MB out':>8} {'peak RSS MB':>12}")
    print(
        f"  {'export_stream (CSV)':<28} {export_rate:>10,.0f} {exported['seconds']:>8.1f} "
        f"{exported['bytes'] / 1e6:>8.0f} {exported['rss_peak']:>12.0f}"
    )
    print(
        f"  {'COPY ... TO STDOUT (CSV)':<28} {copy_rate:>10,.0f} {copied['seconds']:>8.1f} "
        f"{copied['bytes'] / 1e6:>8.0f} {copied['rss_peak']:>12.0f}"
    )
    print(
        f"  idle Django process: {idle['rss_peak']:.0f} MB peak RSS; the export's child: "
        f"{exported['rss_ready']:.0f} MB ready, {exported['rss_peak']:.0f} MB at its peak"
    )
    print(
        f"  ratio export/COPY = {export_ratio:.2f} (target >= {EXPORT_TARGET}: {'met' if export_ok else 'NOT met'})"
    )
    print(f"done in {time.monotonic() - began:.0f}s")
    return 0 if (page_ok and export_ok) or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
