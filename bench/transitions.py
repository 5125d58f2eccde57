"""bench/transitions: transitions per second through the service, beside raw SQL, on PostgreSQL.

Run it (about a minute and a half with the defaults; PostgreSQL at 127.0.0.1:5432, Redis):

    .venv/bin/python -m bench.transitions                 # or: .venv/bin/python bench/transitions.py
    .venv/bin/python -m bench.transitions --seconds 20 --workers 8 --requests 20 --check

It drops and re-creates the database `baton_bench` (`--database`; migrated, then seeded through the
services: role groups, one reviewers group, one request type, per worker a requester and an
approver, and `--requests` requests per worker in `in_review`, each worker creating its own)
and uses Redis db 14 (`--redis-url`) as channel layer and Celery broker. Afterwards it
purges the Celery queue and the channel-layer keys it wrote there.

What exactly is compared, in the same run, at the same concurrency (`--workers` processes
per side, not threads: the GIL would serialise threads), each worker on its own distinct
requests:

  service  `approvals.services.request_act`, the product's entry point, which calls
           `workflows.services.transition`. Each worker alternates on each of its requests
           `request_changes` by its approver (closes the review handoff) and `resubmit` by
           its requester (opens a new review handoff). The actor is a fresh copy of a User
           loaded once, as a web request hands the service a freshly loaded `request.user`
           (no permission caches carried over), without timing that load. Everything the
           service does counts: the lock, the permission checks, the transition, handoffs,
           the audit entry, the outbox rows, and after commit the real push of the events
           (3 channel-layer messages published to Redis, two of them to groups a listener
           subscribes to, and 1 Celery task published to the Redis broker) and marking them
           delivered (one UPDATE by primary key, from the rows still in memory).
  raw-pub  psycopg 3, same tables, same alternation on other requests of the same kind, one
           transaction per transition with the same rows written: SELECT ... FOR UPDATE the
           request; close its open handoff (UPDATE ... RETURNING) or INSERT a new one;
           INSERT the audit entry with the same sha256 chain hash, computed in Python as
           `workflows.audit.entry_hash` does (so `audit_verify` checks the raw chains too);
           UPDATE the request row (state, version, audit head, timestamps); INSERT the same
           4 outbox rows, leased to a push as the service's are (`OUTBOX_PUSH_LEASE`).
           After commit it publishes the same messages in one Redis pipeline (a PUBLISH per
           channel event as channels-redis's pub/sub layer publishes it, the Celery task
           message LPUSHed as kombu's Redis transport writes it, built by hand) and marks
           its 4 rows delivered: the hand-written system the service is measured against
           (target: service >= 0.5 x raw-pub).
  raw      the same without publishing or marking: its outbox rows stay pending. The floor:
           the ratio against it is printed too.

A listener process subscribes to the reviewers' and every requester's inbox groups, as
the ASGI process of their browsers would, and counts what arrives.

The measured time is split into `--rounds` windows per side, alternating raw, raw-pub,
service, raw..., so that whatever else the machine does weighs on all alike; each window
starts with an unmeasured second (the first with `--warmup`) while the other side's last
transitions finish.

Printed: transitions/s and latency p50/p95 of each side, the CPU each transition cost in
the worker, in its PostgreSQL backend and in Redis, the ratios and the target; with
--check the exit status is 1 when service/raw-pub is below target. Before the run it
prints the SQL statements one transition of each kind costs through the service
(CaptureQueriesContext, the after-commit push included and counted apart); after it, it
verifies the result: every audit chain intact (`audit_verify`), every request's version,
chain head, state and open handoffs consistent with the transitions counted, every
pushed outbox event delivered, every live message received by the listener, and every
Celery message present in the broker.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: `python bench/transitions.py`
    sys.path.insert(0, str(ROOT))

from bench.autoanalyze import AutoAnalyze  # noqa: E402

DB_NAME = "baton_bench"
TARGET_RATIO = 0.5
CHANNEL_PREFIX = "baton-bench"
IN_REVIEW = "in_review"
CHANGES_REQUESTED = "changes_requested"
CHANGE_COMMENT = "Please attach the quote."
GENESIS = "0" * 64
POLICY = {"stages": [{"name": "review", "approvers": {"groups": ["bench-reviewers"]}, "rule": "any"}]}
SETTLE = 1.0  # unmeasured seconds at the start of every window after the first
SIDES = ("raw", "raw-pub", "service")


# --- configuration -------------------------------------------------------------------------


def _configure_environment(*, settings: str, server_url: str, database: str, redis_url: str) -> None:
    """Settings come from the environment; spawned workers inherit it."""
    os.environ["DJANGO_SETTINGS_MODULE"] = settings
    os.environ["DATABASE_URL"] = f"{server_url.rstrip('/')}/{database}"
    os.environ["REDIS_URL"] = redis_url
    os.environ["CHANNEL_PREFIX"] = CHANNEL_PREFIX
    # DEBUG would make Django keep every query in memory; the bench measures production-like code.
    os.environ["DEBUG"] = "0"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["CONN_MAX_AGE"] = "600"


def _django_setup() -> None:
    import django

    django.setup()


def _recreate_database(server_url: str, database: str) -> None:
    import psycopg
    from psycopg import sql

    name = sql.Identifier(database)
    with psycopg.connect(f"{server_url.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


# --- seeding -------------------------------------------------------------------------------


@dataclass
class WorkerPlan:
    """Who one worker process acts as, and on what."""

    side: str
    index: int
    approver_id: int
    requester_id: int
    group_id: int
    content_type_id: int
    request_type_id: int
    requests: int
    # What the service's live events name (their actor, the type's delegation scope), so the
    # raw side publishes messages of the same shape and size.
    type_slug: str = ""
    approver_name: str = ""
    requester_name: str = ""


@dataclass
class Seed:
    plans: list[WorkerPlan]
    listened: list[str]
    spare_request_id: int
    spare_approver_id: int
    spare_requester_id: int


def _seed(*, workers: int, per_worker: int, sides: tuple[str, ...] = SIDES) -> Seed:
    """Migrate and create the people, the group and the type; workers create their requests."""
    from django.contrib.auth.models import Group
    from django.contrib.contenttypes.models import ContentType
    from django.core.management import call_command
    from guardian.shortcuts import assign_perm

    from accounts.models import User
    from accounts.roles import APPROVERS, REQUESTERS, roles_sync
    from approvals.models import ApprovalRequest, RequestType
    from approvals.publishing import policy_draft_create, policy_publish
    from approvals.services import request_create

    call_command("migrate", verbosity=0)
    roles = roles_sync()
    reviewers = Group.objects.create(name="bench-reviewers")
    request_type = RequestType.objects.create(slug="bench", name="Bench")
    assign_perm("approvals.submit_requesttype", roles[REQUESTERS], request_type)
    content_type = ContentType.objects.get_for_model(ApprovalRequest)

    def person(name: str, *groups: Group) -> User:
        user = User.objects.create_user(username=name, email=f"{name}@example.com", password=None)
        user.groups.add(*groups)
        return user

    # Someone is "online" for the reviewers' inbox and each requester's inbox: a listener
    # process subscribes to those groups, as the ASGI process of connected browsers would.
    listened = [f"inbox.group.{reviewers.pk}"]
    plans = []
    for side in sides:
        for index in range(workers):
            requester = person(f"{side}-requester-{index}", roles[REQUESTERS])
            approver = person(f"{side}-approver-{index}", roles[APPROVERS], reviewers)
            listened.append(f"inbox.user.{requester.pk}")
            plans.append(
                WorkerPlan(
                    side=side,
                    index=index,
                    approver_id=approver.pk,
                    requester_id=requester.pk,
                    group_id=reviewers.pk,
                    content_type_id=content_type.pk,
                    request_type_id=request_type.pk,
                    requests=per_worker,
                    type_slug=request_type.slug,
                    approver_name=approver.display_name,
                    requester_name=requester.display_name,
                )
            )
    spare_requester = person("spare-requester", roles[REQUESTERS])
    spare_approver = person("spare-approver", roles[APPROVERS], reviewers)
    # The simplest policy: one review stage that any reviewer decides. Published through
    # the real service (with its checks) once the reviewers exist.
    draft = policy_draft_create(request_type=request_type, document=POLICY, actor=None, source="bench")
    policy_publish(version=draft, actor=None)
    spare = request_create(requester=spare_requester, request_type=request_type, title="spare")
    return Seed(
        plans=plans,
        listened=listened,
        spare_request_id=spare.pk,
        spare_approver_id=spare_approver.pk,
        spare_requester_id=spare_requester.pk,
    )


def _create_requests(plan: WorkerPlan) -> list[int]:
    """The worker's own requests, submitted through the service (so they are in review)."""
    from accounts.models import User
    from approvals.models import RequestType
    from approvals.services import request_create

    requester = User.objects.get(pk=plan.requester_id)
    request_type = RequestType.objects.get(pk=plan.request_type_id)
    return [
        request_create(
            requester=requester, request_type=request_type, title=f"{plan.side} {plan.index}.{n}"
        ).pk
        for n in range(plan.requests)
    ]


# --- queries per transition ----------------------------------------------------------------


@dataclass
class QueryCount:
    action: str
    sql: list[str]

    @property
    def total(self) -> int:
        return len(self.sql)

    @property
    def after_commit(self) -> int:
        """Statements after the transition's COMMIT: the push marking its events delivered."""
        commits = [i for i, sql in enumerate(self.sql) if sql.strip().upper() == "COMMIT"]
        return len(self.sql) - commits[0] - 1 if commits else 0


def marks_line() -> str:
    """How the push's "delivered" marks were written in this run (counted above only where
    a step wrote them itself)."""
    from django.conf import settings

    batch = settings.OUTBOX_MARK_BATCH_SECONDS
    if batch <= 0:
        return "  the push marks its events delivered at once (OUTBOX_MARK_BATCH_SECONDS=0)"
    return (
        f"  the push's delivered marks: one UPDATE per {batch:g}s per process while pushes follow each"
        " other (OUTBOX_MARK_BATCH_SECONDS; workflows.outbox_marks), at once after a pause"
    )


def _count_queries(seed: Seed) -> list[QueryCount]:
    """SQL statements of one request_changes and one resubmit, after-commit push included.

    A first pair warms the process (content types, connections); the second is counted,
    each with a fresh copy of the actor, as a new web request would have.
    """
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User
    from approvals.services import request_act

    approver = User.objects.get(pk=seed.spare_approver_id)
    requester = User.objects.get(pk=seed.spare_requester_id)
    steps = [("request_changes", approver, CHANGE_COMMENT), ("resubmit", requester, "")]
    for action, actor, comment in steps:
        request_act(request_id=seed.spare_request_id, action=action, actor=copy.copy(actor), comment=comment)
    counts = []
    for action, actor, comment in steps:
        with CaptureQueriesContext(connection) as captured:
            request_act(
                request_id=seed.spare_request_id, action=action, actor=copy.copy(actor), comment=comment
            )
        sql = [q["sql"] for q in captured.captured_queries]
        counts.append(QueryCount(action=action, sql=sql))
    return counts


# --- the workers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A stretch of time one side runs in: from `begin`, measured from `measure` to `end`."""

    side: str
    begin: float
    measure: float
    end: float


def _schedule(*, rounds: int, seconds: float, warmup: float, sides: tuple[str, ...] = SIDES) -> list[Window]:
    """Offsets from the common start: raw, service, raw, service..., `seconds` measured per side."""
    windows = []
    at = 0.0
    measured = seconds / rounds
    for round_ in range(rounds):
        for side in sides:
            lead = warmup if round_ == 0 else SETTLE
            windows.append(Window(side=side, begin=at, measure=at + lead, end=at + lead + measured))
            at += lead + measured
    return windows


@dataclass
class WorkerResult:
    side: str
    index: int
    request_ids: list[int] = field(default_factory=list)
    done: int = 0  # every transition, unmeasured ones included
    latencies: list[float] = field(default_factory=list)  # seconds, of transitions inside windows
    cpu_transitions: int = 0  # transitions begun inside windows, over which CPU was measured
    cpu_client: float = 0.0  # seconds of this process's CPU (all its threads)
    cpu_server: float | None = 0.0  # seconds of its PostgreSQL backend's CPU, if readable
    error: str = ""


def _backend_cpu(pid: int) -> float | None:
    """CPU seconds used so far by a local PostgreSQL backend process (None if not readable)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run_windows(
    result: WorkerResult, windows: list[Window], start: float, backend_pid: int, step: Any
) -> None:
    """Call `step()` back to back inside each of this side's windows, measuring as it goes."""
    for window in windows:
        if window.side != result.side:
            continue
        begin, measure, end = start + window.begin, start + window.measure, start + window.end
        time.sleep(max(0.0, begin - time.monotonic()))
        cpu_at: tuple[float, float | None] | None = None
        while (began := time.monotonic()) < end:
            if cpu_at is None and began >= measure:
                cpu_at = (time.process_time(), _backend_cpu(backend_pid))
            step()
            finished = time.monotonic()
            result.done += 1
            if cpu_at is not None:
                result.cpu_transitions += 1
                if finished <= end:
                    result.latencies.append(finished - began)
        if cpu_at is not None:
            result.cpu_client += time.process_time() - cpu_at[0]
            server_now = _backend_cpu(backend_pid)
            if result.cpu_server is not None and server_now is not None and cpu_at[1] is not None:
                result.cpu_server += server_now - cpu_at[1]
            else:
                result.cpu_server = None


def _worker(
    plan: WorkerPlan,
    dsn: str,
    windows: list[Window],
    ready: Any,
    go: Any,
    start: Any,
    out: Any,
    defer_push: bool = False,
) -> None:
    result = WorkerResult(side=plan.side, index=plan.index)
    try:
        _django_setup()
        result.request_ids = _create_requests(plan)
        if plan.side == "service" and defer_push:
            # --defer-push: the after-commit push does nothing, the events wait for a relay
            # (none runs here): the service's transaction alone, against the same raw SQL.
            import workflows.outbox

            workflows.outbox.outbox_push = lambda **kwargs: workflows.outbox.RelayResult()
        if plan.side == "service":
            step, backend_pid = _service_stepper(plan, result.request_ids)
        else:
            step, backend_pid = _raw_stepper(plan, result.request_ids, dsn, publish=plan.side == "raw-pub")
        ready.wait()
        go.wait()
        _run_windows(result, windows, start.value, backend_pid, step)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    out.put(result)


def _service_stepper(plan: WorkerPlan, request_ids: list[int]) -> tuple[Any, int]:
    from django.db import connection

    from accounts.models import User
    from approvals.models import ApprovalRequest
    from approvals.services import request_act

    approver = User.objects.get(pk=plan.approver_id)
    requester = User.objects.get(pk=plan.requester_id)
    states = dict(ApprovalRequest.objects.filter(pk__in=request_ids).values_list("pk", "state"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (backend_pid,) = cursor.fetchone()
    turn = 0

    def step() -> None:
        nonlocal turn
        pk = request_ids[turn % len(request_ids)]
        turn += 1
        if states[pk] == IN_REVIEW:
            outcome = request_act(
                request_id=pk, action="request_changes", actor=copy.copy(approver), comment=CHANGE_COMMENT
            )
        else:
            outcome = request_act(request_id=pk, action="resubmit", actor=copy.copy(requester))
        states[pk] = outcome.target

    return step, backend_pid


def _raw_stepper(plan: WorkerPlan, request_ids: list[int], dsn: str, *, publish: bool) -> tuple[Any, int]:
    import psycopg
    import redis
    from django.conf import settings
    from django.db import connections

    connections.close_all()  # seeding used Django; from here on this side is psycopg only
    conn = psycopg.connect(dsn, autocommit=True)
    cur = conn.cursor()
    client = redis.Redis.from_url(settings.REDIS_URL) if publish else None
    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    turn = 0

    def step() -> None:
        nonlocal turn
        pk = request_ids[turn % len(request_ids)]
        turn += 1
        with conn.transaction():
            events = _raw_transition(cur, plan, pk)
        if client is not None:
            _raw_publish(cur, client, prefix, events)

    return step, conn.info.backend_pid


def _raw_publish(
    cur: Any, client: Any, prefix: str, events: list[tuple[uuid.UUID, str, str, dict[str, Any]]]
) -> None:
    """After commit: the same messages the service's push sends, in one pipeline (a PUBLISH
    per channel event, as channels-redis's pub/sub layer publishes it, and the Celery task
    message LPUSHed as kombu's Redis transport writes it), then the rows marked delivered."""
    import base64

    import msgpack

    pipe = client.pipeline(transaction=False)
    for event_id, kind, destination, body in events:
        if kind == "channel":
            message = {"type": "relay.event", "event": {"id": str(event_id), **body}}
            pipe.publish(f"{prefix}__group__{destination}", msgpack.packb(message, use_bin_type=True))
        else:
            task_id = str(event_id)
            task_body = [
                [],
                body["kwargs"],
                {"callbacks": None, "errbacks": None, "chain": None, "chord": None},
            ]
            envelope = {
                "body": base64.b64encode(json.dumps(task_body).encode()).decode(),
                "content-encoding": "utf-8",
                "content-type": "application/json",
                "headers": {
                    "lang": "py",
                    "task": destination,
                    "id": task_id,
                    "root_id": task_id,
                    "retries": 0,
                },
                "properties": {
                    "correlation_id": task_id,
                    "delivery_mode": 2,
                    "delivery_info": {"exchange": "", "routing_key": "celery"},
                    "priority": 0,
                    "body_encoding": "base64",
                    "delivery_tag": task_id,
                },
            }
            pipe.lpush("celery", json.dumps(envelope))
    pipe.execute()
    cur.execute(MARK_SQL, (datetime.now(UTC), [e[0] for e in events]))


def _json_datetime(moment: datetime) -> str:
    """A datetime as DjangoJSONEncoder writes it (milliseconds, 'Z'), as the service stores it."""
    text = moment.isoformat()
    if moment.microsecond:
        text = text[:23] + text[26:]
    return text.removesuffix("+00:00") + "Z" if text.endswith("+00:00") else text


def _raw_hash(body: dict[str, Any]) -> str:
    """The chain hash, computed exactly as workflows.audit.entry_hash does."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


LOCK_SQL = (
    "SELECT state, version, audit_seq, audit_head, submitted_at, revision, stage_slots, title, description, "
    "payload FROM approvals_approvalrequest WHERE id = %s FOR UPDATE"
)
DECISION_SQL = (
    "INSERT INTO approvals_decision (request_id, revision, stage_index, stage_name, outcome, principal_id, "
    "actor_id, slot, comment, created_at) VALUES (%s, %s, 0, 'review', 'request_changes', %s, %s, %s, %s, %s)"
)
REVISION_SQL = (
    "INSERT INTO approvals_requestrevision (request_id, number, title, description, payload, diff, "
    "created_at, created_by_id) VALUES (%s, %s, %s, %s, %s, '[]', %s, %s)"
)
CLOSE_HANDOFF_SQL = (
    "UPDATE workflows_handoff SET closed_at = %s, closed_by_id = %s, close_reason = 'done' "
    "WHERE content_type_id = %s AND object_id = %s AND closed_at IS NULL "
    "RETURNING id, assignee_id, candidate_group_id"
)
OPEN_HANDOFF_SQL = (
    "INSERT INTO workflows_handoff (content_type_id, object_id, stage, slot, assignee_id, candidate_group_id, "
    "opened_at, opened_by_id, close_reason, reminders_at, reminders_sent) "
    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, '', '[]', 0) RETURNING id"
)
AUDIT_SQL = (
    "INSERT INTO workflows_auditentry (content_type_id, object_id, seq, kind, action, source, target, "
    "actor_id, on_behalf_of_id, comment, data, trace_id, created_at, prev_hash, hash) "
    "VALUES (%s, %s, %s, 'transition', %s, %s, %s, %s, NULL, %s, %s, %s, %s, %s, %s)"
)
REQUEST_SQL = (
    "UPDATE approvals_approvalrequest SET state = %s, version = %s, audit_seq = %s, audit_head = %s, "
    "updated_at = %s, revision = %s, stage_index = %s, stage_slots = %s, submitted_at = %s WHERE id = %s"
)
MARK_SQL = (
    "UPDATE workflows_outboxevent SET status = 'delivered', delivered_at = %s, attempts = attempts + 1 "
    "WHERE id = ANY(%s) AND status NOT IN ('delivered', 'dead')"
)
OUTBOX_SQL = (
    "INSERT INTO workflows_outboxevent (id, kind, destination, payload, status, attempts, available_at, "
    "created_at, delivered_at, last_error) VALUES "
    + ", ".join(["(%s, %s, %s, %s, 'pending', 0, %s, %s, NULL, '')"] * 4)
)


def _holders(handoff: tuple[int | None, int | None]) -> list[str]:
    """The inbox groups of one handoff's holders (its user, then its group), as the service's."""
    user_id, group_id = handoff
    return [
        *([f"inbox.user.{user_id}"] if user_id is not None else []),
        *([f"inbox.group.{group_id}"] if group_id is not None else []),
    ]


def _raw_transition(cur: Any, plan: WorkerPlan, pk: int) -> list[tuple[uuid.UUID, str, str, dict[str, Any]]]:
    """One transition in one transaction: the rows the service writes, through psycopg.

    request_changes by the approver: a decision of the review stage, the review handoff
    closed and one opened for the requester; resubmit by the requester: a new revision
    (unchanged content), the requester's handoff closed and the review one opened again.
    """
    from django.conf import settings
    from psycopg.types.json import Jsonb

    cur.execute(LOCK_SQL, (pk,))
    state, version, seq, head, submitted_at, revision, slots, title, description, payload = cur.fetchone()
    # A plain psycopg connection parses jsonb; Django's cursor (the bench's test) hands it over as text.
    slots, payload = (json.loads(v) if isinstance(v, str) else v for v in (slots, payload))
    now = datetime.now(UTC)
    object_id = str(pk)
    review_slot = f"group:{plan.group_id}"
    data: dict[str, Any]
    opened_spec: tuple[str, str, int | None, int | None]  # stage, slot, user, group
    if state == IN_REVIEW:
        action, target, actor_id, comment = (
            "request_changes",
            CHANGES_REQUESTED,
            plan.approver_id,
            CHANGE_COMMENT,
        )
        (slot,) = slots
        cur.execute(DECISION_SQL, (pk, revision, actor_id, actor_id, slot, comment, now))
        data = {"decision": {"stage": "review", "outcome": action, "revision": revision, "slot": slot}}
        opened_spec = ("changes", "requester", plan.requester_id, None)
        new_revision, new_stage, new_slots, new_submitted = revision, None, [], submitted_at
        changes: dict[str, Any] = {"stage_index": [0, None], "stage_slots": [slots, []]}
    else:
        action, target, actor_id, comment = "resubmit", IN_REVIEW, plan.requester_id, ""
        new_revision = revision + 1
        cur.execute(REVISION_SQL, (pk, new_revision, title, description, Jsonb(payload), now, actor_id))
        data = {"route": {"to": "review"}, "revision": {"number": new_revision, "diff": []}}
        opened_spec = ("review", review_slot, None, plan.group_id)
        new_stage, new_slots, new_submitted = 0, [review_slot], now
        changes = {
            "revision": [revision, new_revision],
            "stage_index": [None, 0],
            "stage_slots": [[], new_slots],
            "submitted_at": [_json_datetime(submitted_at), _json_datetime(now)],
        }
    cur.execute(CLOSE_HANDOFF_SQL, (now, actor_id, plan.content_type_id, object_id))
    closed = cur.fetchall()
    stage, slot_key, user_id, group_id = opened_spec
    cur.execute(
        OPEN_HANDOFF_SQL,
        (plan.content_type_id, object_id, stage, slot_key, user_id, group_id, now, actor_id),
    )
    (opened,) = cur.fetchone()
    data["changes"] = changes
    data["handoffs"] = {
        "closed": [{"id": h, "reason": "done", "user": u, "group": g} for h, u, g in closed],
        "opened": [
            {
                "id": opened,
                "stage": stage,
                "slot": slot_key,
                "user": user_id,
                "group": group_id,
                "due_at": None,
            }
        ],
    }
    seq += 1
    version += 1
    trace_id = uuid.uuid4().hex
    prev_hash = head or GENESIS
    digest = _raw_hash(
        {
            "ref": f"approvals.approvalrequest:{object_id}",
            "seq": seq,
            "kind": "transition",
            "action": action,
            "source": state,
            "target": target,
            "actor": actor_id,
            "on_behalf_of": None,
            "comment": comment,
            "data": data,
            "trace_id": trace_id,
            "created_at": now.isoformat(timespec="microseconds"),
            "prev_hash": prev_hash,
        }
    )
    cur.execute(
        AUDIT_SQL,
        (
            plan.content_type_id,
            object_id,
            seq,
            action,
            state,
            target,
            actor_id,
            comment,
            Jsonb(data),
            trace_id,
            now,
            prev_hash,
            digest,
        ),
    )
    cur.execute(
        REQUEST_SQL,
        (target, version, seq, digest, now, new_revision, new_stage, Jsonb(new_slots), new_submitted, pk),
    )
    body = {
        "topic": "instance.transitioned",
        "ref": f"approvals.approvalrequest:{object_id}",
        "state": target,
        "version": version,
        "audit_seq": seq,
        "action": action,
        "source": state,
        "target": target,
        "label": f"REQ-{object_id}",
        "scope": plan.type_slug or None,
        "owner": str(plan.requester_id),
        "by": {
            "id": actor_id,
            "name": plan.approver_name if actor_id == plan.approver_id else plan.requester_name,
        },
    }
    # One event per holder of a closed or opened handoff and for the requester, each once,
    # one for the request's watchers, and the notification task.
    holders = [g for _, u, grp in closed for g in _holders((u, grp))] + _holders((user_id, group_id))
    groups = list(dict.fromkeys([*holders, f"inbox.user.{plan.requester_id}"]))
    destinations = [
        *(("channel", d, body) for d in groups),
        ("channel", f"instance.approvals.approvalrequest.{object_id}", body),
        (
            "task",
            "approvals.notify_transition",
            {"kwargs": {"request_id": pk, "action": action, "audit_seq": seq}},
        ),
    ]
    # Due when the push lease ends, as the service's rows are (outbox_write).
    lease_end = now + timedelta(seconds=settings.OUTBOX_PUSH_LEASE)
    params: list[Any] = []
    written = []
    for kind, destination, event_body in destinations:
        event_id = uuid.uuid4()
        params += [event_id, kind, destination, Jsonb(event_body), lease_end, now]
        written.append((event_id, kind, destination, event_body))
    cur.execute(OUTBOX_SQL, params)
    return written


# --- the outcome ---------------------------------------------------------------------------


@dataclass
class SideResult:
    name: str
    seconds: float
    workers: list[WorkerResult]
    redis_cpu: float | None

    @property
    def done(self) -> int:
        return sum(w.done for w in self.workers)

    @property
    def latencies(self) -> list[float]:
        return sorted(x for w in self.workers for x in w.latencies)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, p: int) -> float:
        values = self.latencies
        if len(values) < 2:
            return values[0] if values else float("nan")
        return statistics.quantiles(values, n=100, method="inclusive")[p - 1]

    def cpu_ms(self, which: str) -> str:
        ops = sum(w.cpu_transitions for w in self.workers)
        if which == "redis":
            total = self.redis_cpu
        elif which == "server":
            servers = [w.cpu_server for w in self.workers]
            total = None if any(s is None for s in servers) else sum(s or 0.0 for s in servers)
        else:
            total = sum(w.cpu_client for w in self.workers)
        return "n/a" if total is None or not ops else f"{total / ops * 1000:.2f}"

    @property
    def errors(self) -> list[str]:
        return [f"{self.name} worker {w.index}: {w.error}" for w in self.workers if w.error]


def _listener(redis_url: str, channels: list[str], ready: Any, stop: Any, out: Any) -> None:
    """Subscribe to `channels` (as an ASGI process serving the browsers would) and count
    what arrives until told to stop."""
    import redis

    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(*channels)
    while pubsub.get_message(timeout=0.1) is not None or len(pubsub.channels) < len(channels):
        pass  # wait for every subscription to be confirmed
    ready.set()
    received = 0
    while not stop.is_set():
        if pubsub.get_message(timeout=0.2) is not None:
            received += 1
    while pubsub.get_message(timeout=1.0) is not None:  # what is still on its way
        received += 1
    out.put(received)


def _redis_cpu(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _run(
    seed: Seed,
    *,
    dsn: str,
    redis_url: str,
    rounds: int,
    seconds: float,
    warmup: float,
    defer_push: bool = False,
) -> tuple[dict[str, SideResult], int]:
    """Start every worker, let them seed, then run the windows; Redis CPU sampled per window.
    Returns each side's results and how many live messages the listener received."""
    import redis
    from django.db import connections

    # The parent's connections are not for the children; spawned processes open their own.
    connections.close_all()
    windows = _schedule(rounds=rounds, seconds=seconds, warmup=warmup)
    ctx = mp.get_context("spawn")
    ready = ctx.Barrier(len(seed.plans) + 1)
    go = ctx.Event()
    start = ctx.Value("d", 0.0)
    out = ctx.Queue()
    processes = [
        ctx.Process(
            target=_worker,
            args=(plan, dsn, windows, ready, go, start, out, defer_push),
            name=f"{plan.side}-{plan.index}",
        )
        for plan in seed.plans
    ]
    for process in processes:
        process.start()
    ready.wait(timeout=600)
    from django.conf import settings

    prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"]
    listening, stop_listening, heard = ctx.Event(), ctx.Event(), ctx.Queue()
    listener = ctx.Process(
        target=_listener,
        args=(redis_url, [f"{prefix}__group__{g}" for g in seed.listened], listening, stop_listening, heard),
        name="listener",
    )
    listener.start()
    listening.wait(timeout=60)
    print(
        f"  {len(processes)} workers ready; windows: "
        + ", ".join(f"{w.side} {w.end - w.measure:g}s" for w in windows)
    )
    start.value = time.monotonic() + 0.5
    go.set()
    redis_cpu = dict.fromkeys(SIDES, 0.0)
    client = redis.Redis.from_url(redis_url)
    with AutoAnalyze(dsn) as analyzer:
        for window in windows:
            time.sleep(max(0.0, start.value + window.measure - time.monotonic()))
            before = _redis_cpu(client)
            time.sleep(max(0.0, start.value + window.end - time.monotonic()))
            redis_cpu[window.side] += _redis_cpu(client) - before
    client.close()
    print(f"  {analyzer.describe()}")
    results = [out.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)
    stop_listening.set()
    received = heard.get(timeout=60)
    listener.join(timeout=30)
    measured = seconds / rounds * rounds
    sides = {
        side: SideResult(
            name=side,
            seconds=measured,
            workers=sorted((r for r in results if r.side == side), key=lambda r: r.index),
            redis_cpu=redis_cpu[side],
        )
        for side in SIDES
    }
    return sides, received


def _verify(sides: dict[str, SideResult], *, received: int, defer_push: bool = False) -> list[str]:
    """What must hold after the run; returns the problems found (none when all is well)."""
    from collections import Counter

    from django.contrib.contenttypes.models import ContentType

    from approvals.models import ApprovalRequest, Decision, RequestRevision
    from workflows.audit import audit_verify
    from workflows.models import Handoff, OutboxEvent

    problems: list[str] = []
    report = audit_verify()
    print(f"  audit_verify: {report.entries} entries in {report.chains} chains, intact={report.ok}")
    problems += [f"audit chain broken: {brk}" for brk in report.breaks]

    content_type = ContentType.objects.get_for_model(ApprovalRequest)
    open_counts = Counter(
        Handoff.objects.filter(content_type=content_type, closed_at__isnull=True).values_list(
            "object_id", flat=True
        )
    )
    decisions = Counter(Decision.objects.values_list("request_id", flat=True))
    revisions = Counter(RequestRevision.objects.values_list("request_id", flat=True))
    for side in sides.values():
        ids = [pk for w in side.workers for pk in w.request_ids]
        rows = ApprovalRequest.objects.filter(pk__in=ids).values_list(
            "pk", "state", "version", "audit_seq", "revision"
        )
        # Seeded by create + submit (2 entries, version 2, revision 1); every transition adds
        # an entry and a version, each request_changes a decision, each resubmit a revision.
        moved = 0
        for pk, state, version, seq, revision in rows:
            moved += seq - 2
            if version != seq:
                problems.append(f"{side.name} request {pk}: version {version} but chain head #{seq}")
            # In review the reviewers hold it; asked for changes, its requester does.
            if state not in (IN_REVIEW, CHANGES_REQUESTED) or open_counts[str(pk)] != 1:
                problems.append(f"{side.name} request {pk}: {state}, {open_counts[str(pk)]} open handoffs")
            asked, resubmitted = (seq - 1) // 2, (seq - 2) // 2
            if (decisions[pk], revisions[pk], revision) != (asked, 1 + resubmitted, 1 + resubmitted):
                problems.append(
                    f"{side.name} request {pk}: {decisions[pk]} decisions, {revisions[pk]} revisions "
                    f"(at {revision}) after {seq - 2} transitions"
                )
        if moved != side.done:
            problems.append(
                f"{side.name}: the workers counted {side.done} transitions, the chains hold {moved}"
            )
        print(
            f"  {side.name}: {moved} transitions on {len(ids)} requests; versions, heads, states, handoffs, "
            "decisions and revisions agree"
        )

    service, raw, published = sides["service"], sides["raw"], sides["raw-pub"]
    statuses = Counter(OutboxEvent.objects.values_list("status", flat=True))
    pending, dead = statuses[OutboxEvent.Status.PENDING], statuses[OutboxEvent.Status.DEAD]
    # The service pushes its events after commit (unless --defer-push), as raw SQL with
    # publishing does; plain raw SQL leaves its own 4 per transition pending.
    expected = 4 * raw.done + (4 * service.done if defer_push else 0)
    if pending != expected or dead:
        problems.append(f"outbox: {dict(statuses)}; expected exactly {expected} pending, none dead")
    print(
        f"  outbox: {statuses[OutboxEvent.Status.DELIVERED]} delivered (service push and raw-pub), "
        f"{pending} pending ({'raw and service' if defer_push else 'raw'}), {dead} dead"
    )
    # Each transition tells two listened groups: the reviewers' and its requester's inbox.
    sent = 2 * (published.done + (0 if defer_push else service.done))
    print(f"  listener: {received} live messages received of {sent} published to its groups")
    if received != sent:
        problems.append(f"live messages: the listener received {received} of {sent}")
    return problems


def _purge_redis(redis_url: str) -> tuple[int, int]:
    """Empty the Celery queue and remove the channel-layer keys the bench wrote."""
    import redis

    from config.celery import app

    purged = app.control.purge()
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{CHANNEL_PREFIX}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
    return purged, len(keys)


# --- main ----------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per side (20)")
    parser.add_argument("--rounds", type=int, default=2, help="windows per side, alternating (2)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before the first (2)")
    parser.add_argument("--workers", type=int, default=8, help="concurrent worker processes per side (8)")
    parser.add_argument("--requests", type=int, default=20, help="distinct requests per worker (20)")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server")
    parser.add_argument(
        "--database", default=DB_NAME, help=f"database to drop and re-create for the run ({DB_NAME})"
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14", help="Redis db for the bench")
    parser.add_argument("--settings", default="config.settings.embedded", help="Django settings module")
    parser.add_argument(
        "--show-queries", action="store_true", help="print the SQL of each counted transition"
    )
    parser.add_argument("--check", action="store_true", help=f"exit 1 when service/raw < {TARGET_RATIO}")
    parser.add_argument(
        "--defer-push",
        action="store_true",
        help="leave the service's events to the relay instead of pushing them after commit "
        "(measures the transaction alone; raw SQL never pushes)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    began = time.monotonic()
    _configure_environment(
        settings=args.settings, server_url=args.pg_url, database=args.database, redis_url=args.redis_url
    )
    _recreate_database(args.pg_url, args.database)
    _django_setup()
    print(
        f"bench/transitions: {args.workers} worker processes per side, {args.requests} requests each, "
        f"{args.seconds:g}s measured per side in {args.rounds} rounds; {args.database}, {args.redis_url}"
    )
    seed = _seed(workers=args.workers, per_worker=args.requests)

    print("SQL statements per transition through the service (BEGIN/COMMIT and after-commit push included):")
    for count in _count_queries(seed):
        print(
            f"  {count.action:<16} {count.total:>3} = {count.total - count.after_commit} in its transaction"
            f" + {count.after_commit} after commit (the push)"
        )
        if args.show_queries:
            for sql in count.sql:
                print(f"      {sql}")
    print(marks_line())

    sides, received = _run(
        seed,
        dsn=f"{args.pg_url.rstrip('/')}/{args.database}",
        redis_url=args.redis_url,
        rounds=args.rounds,
        seconds=args.seconds,
        warmup=args.warmup,
        defer_push=args.defer_push,
    )
    service, raw, published = sides["service"], sides["raw"], sides["raw-pub"]
    errors = [e for side in sides.values() for e in side.errors]
    for error in errors:
        print(f"  ERROR {error}")

    ratio = service.rate / published.rate if published.rate else 0.0
    floor = service.rate / raw.rate if raw.rate else 0.0
    print(
        f"\n{'':<8} {'transitions/s':>13} {'p50 ms':>8} {'p95 ms':>8} {'count':>6}   CPU ms per transition:"
    )
    print(f"{'':<8} {'':>13} {'':>8} {'':>8} {'':>6}   {'worker':>7} {'postgres':>8} {'redis':>6}")
    for side in (service, published, raw):
        print(
            f"{side.name:<8} {side.rate:>13.1f} {side.percentile(50) * 1000:>8.2f} "
            f"{side.percentile(95) * 1000:>8.2f} {len(side.latencies):>6}   "
            f"{side.cpu_ms('client'):>7} {side.cpu_ms('server'):>8} {side.cpu_ms('redis'):>6}"
        )
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"ratio service/raw-pub = {ratio:.2f} (target >= {TARGET_RATIO}: {verdict})")
    print(f"ratio service/raw     = {floor:.2f} (raw SQL that publishes nothing: the floor)\n")

    print("verification:")
    problems = _verify(sides, received=received, defer_push=args.defer_push)
    purged, keys = _purge_redis(args.redis_url)
    print(f"  celery: {purged} task messages were in the broker (purged); {keys} channel-layer keys removed")
    expected_tasks = published.done + (0 if args.defer_push else service.done)
    if purged < expected_tasks:
        problems.append(f"celery: {purged} task messages in the broker, expected at least {expected_tasks}")
    for problem in problems:
        print(f"  PROBLEM {problem}")
    print(f"done in {time.monotonic() - began:.0f}s")
    if errors or problems:
        return 2
    if args.check and ratio < TARGET_RATIO:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
