"""bench/peer: one approval, start to end, through Baton and through Viewflow 2.4, on PostgreSQL.

Run it (about a minute with the defaults; PostgreSQL at 127.0.0.1:5432, Redis):

    make bench-peer                       # installs requirements/bench.txt into .venv, then runs this
    .venv/bin/python -m bench.peer --seconds 20 --workers 2 --check --verbose

Viewflow (django-viewflow, AGPL) comes from requirements/bench.txt only; the benchmark runs
under its own settings, bench/peer_settings.py (the embedded defaults plus `viewflow`,
`viewflow.workflow` and the bench app bench/peer_viewflow), and the product never imports it.

It drops and re-creates the database `baton_peer` (`--database`), migrates it (Baton's apps
and Viewflow's), seeds it without timing, and uses Redis db 12 (`--redis-url`) as Baton's
channel layer (channels-redis) and Celery broker; afterwards it purges the Celery queue and
removes the keys it wrote there (channel layer, kombu's bindings).

What exactly is compared, in the same run, on the same PostgreSQL server, each side by
`--workers` processes (not threads: the GIL would serialise threads), each worker with its
own requester and approver, flows back to back:

  baton     `approvals.services.request_create(requester, request_type, title, payload)`,
            which creates the request and submits it (payload checked against the type's
            JSON Schema, submit permission checked through django-guardian), then
            `approvals.services.request_act(request_id, action="approve", actor=approver)`.
            The type's published policy has one stage, rule "any", approvers one group the
            approver belongs to. Every guarantee stays on: the row lock, permission and
            separation-of-duties checks, handoffs, the hash-chained audit entries, the outbox
            rows, and after commit the real push of the events to Redis (channel-layer group
            sends, some to groups with a listening channel, and a Celery task published to
            the Redis broker) and the UPDATE marking them delivered.
  viewflow  the same approval as a Viewflow flow (bench/peer_viewflow/flows.py):
            start -> approve (a human task with a permission the approvers' group has) -> end,
            the process a proxy of Viewflow's Process with title, payload and approved in
            its JSON data (as Viewflow 2's samples model one), the flow locking the process
            row (`select_for_update_lock`). Three steps, each doing what Viewflow's own view
            does on POST, without HTTP, templates or forms: the requester starts it (can_execute,
            start, execute), the approver claims the task (under the lock: load, can_assign,
            assign) and completes it (under the lock: load, can_execute, start, save the
            process with approved=True, execute), which ends the process.

Each call gets a fresh copy (`copy.copy`) of a User loaded once, as a web request hands over a
freshly loaded `request.user` (no permission caches carried over); Baton's request type is
handed over the same way. Loading them is not timed.

The time is split into `--rounds` windows per side of equal length, alternating baton,
viewflow, baton, viewflow..., so that whatever else the machine does weighs on both alike;
each window starts with an unmeasured second (the first of each side with `--warmup`).

Printed: flows/s, wall latency p50/p95 per flow, and the CPU one flow cost in the worker
(time.process_time: all its threads), in its PostgreSQL backend (/proc/<pid>/stat) and in
Redis; the ratios baton/viewflow of flows/s and of CPU per flow; the target (baton >= 1.0 x
viewflow flows/s), and with --check the exit status is 1 when it is not met. Before the run,
outside the windows, it counts the SQL statements of one flow of each side
(CaptureQueriesContext around each whole call, so Baton's after-commit push is included);
--verbose prints how the data was made and each statement. After the run it verifies the
result: Baton's audit chains intact (`audit_verify`), every Baton request approved and every
outbox event delivered, every Viewflow process finished with its three tasks done.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import multiprocessing as mp
import os
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: `python bench/peer.py`
    sys.path.insert(0, str(ROOT))

from bench.autoanalyze import AutoAnalyze  # noqa: E402
from bench.transitions import marks_line  # noqa: E402

DB_NAME = "baton_peer"
REDIS_URL = "redis://127.0.0.1:6379/12"
SETTINGS = "bench.peer_settings"
CHANNEL_PREFIX = "baton-peer"
TARGET_RATIO = 1.0
SIDES = ("baton", "viewflow")
SETTLE = 1.0  # unmeasured seconds at the start of every window after a side's first

APPROVERS = "peer-approvers"
VIEWFLOW_REQUESTERS = "peer-viewflow-requesters"
VIEWFLOW_APPROVERS = "peer-viewflow-approvers"
POLICY = {"stages": [{"name": "approval", "approvers": {"groups": [APPROVERS]}, "rule": "any"}]}
PAYLOAD_SCHEMA = {
    "type": "object",
    "properties": {
        "amount": {"type": "number", "minimum": 0},
        "currency": {"type": "string", "enum": ["EUR", "USD"]},
        "purpose": {"type": "string"},
    },
    "required": ["amount", "currency"],
}
TITLE = "Team lunch"
PAYLOAD = {"amount": 120, "currency": "EUR", "purpose": "Quarterly team lunch"}


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


@dataclass(frozen=True)
class People:
    """One worker's requester and approver."""

    requester_id: int
    approver_id: int


@dataclass(frozen=True)
class BatonSeed:
    request_type_id: int
    group_id: int
    people: list[People]


def _person(name: str, *groups: Any) -> Any:
    from accounts.models import User

    user = User.objects.create_user(username=name, email=f"{name}@example.com", password=None)
    user.groups.add(*groups)
    return user


def seed_baton(*, people: int) -> BatonSeed:
    """Baton's data, through its own services: the role groups, one approvers group, one
    request type with a payload schema that requesters may submit, its published one-stage
    policy (rule "any", the approvers group), and `people` pairs of requester and approver."""
    from django.contrib.auth.models import Group
    from guardian.shortcuts import assign_perm

    from accounts.roles import APPROVERS as APPROVER_ROLE
    from accounts.roles import REQUESTERS, roles_sync
    from approvals.models import RequestType
    from approvals.publishing import policy_draft_create, policy_publish

    roles = roles_sync()
    approvers = Group.objects.create(name=APPROVERS)
    request_type = RequestType.objects.create(
        slug="peer-expense", name="Expense (bench/peer)", payload_schema=PAYLOAD_SCHEMA
    )
    assign_perm("approvals.submit_requesttype", roles[REQUESTERS], request_type)
    pairs = [
        People(
            requester_id=_person(f"baton-requester-{n}", roles[REQUESTERS]).pk,
            approver_id=_person(f"baton-approver-{n}", roles[APPROVER_ROLE], approvers).pk,
        )
        for n in range(people)
    ]
    # Published through the real service (with its checks) once the approvers exist.
    draft = policy_draft_create(request_type=request_type, document=POLICY, actor=None, source="bench/peer")
    policy_publish(version=draft, actor=None)
    return BatonSeed(request_type_id=request_type.pk, group_id=approvers.pk, people=pairs)


def seed_viewflow(*, people: int) -> list[People]:
    """Viewflow's data: a group of requesters with the flow's submit permission, a group of
    approvers with its approve permission, and `people` pairs of requester and approver."""
    from django.contrib.auth.models import Group, Permission

    from bench.peer_viewflow.flows import APPROVE_PERMISSION, SUBMIT_PERMISSION

    def group(name: str, permission: str) -> Any:
        app_label, codename = permission.split(".")
        created = Group.objects.create(name=name)
        created.permissions.add(Permission.objects.get(content_type__app_label=app_label, codename=codename))
        return created

    requesters = group(VIEWFLOW_REQUESTERS, SUBMIT_PERMISSION)
    approvers = group(VIEWFLOW_APPROVERS, APPROVE_PERMISSION)
    return [
        People(
            requester_id=_person(f"viewflow-requester-{n}", requesters).pk,
            approver_id=_person(f"viewflow-approver-{n}", approvers).pk,
        )
        for n in range(people)
    ]


def _listen(seed: BatonSeed) -> None:
    """Someone is "online" for the approvers' inbox and each requester's inbox: a daemon
    thread subscribes to those groups' Redis channels (what channels-redis's pub/sub layer
    publishes a group send to) and drains them, as an ASGI process serving browsers would."""
    import threading

    import redis
    from django.conf import settings

    config = settings.CHANNEL_LAYERS["default"]["CONFIG"]
    prefix = config.get("prefix", "asgi")
    groups = [f"inbox.group.{seed.group_id}"] + [f"inbox.user.{pair.requester_id}" for pair in seed.people]
    channels = [f"{prefix}__group__{group}" for group in groups]
    pubsub = redis.Redis.from_url(config["hosts"][0]).pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(*channels)
    while len(pubsub.channels) < len(channels) or pubsub.get_message(timeout=0.1) is not None:
        pass  # every subscription confirmed before anything is measured

    def drain() -> None:
        while True:
            pubsub.get_message(timeout=1.0)

    threading.Thread(target=drain, name="peer-listener", daemon=True).start()


def _how_the_data_was_made(seed: BatonSeed, viewflow_people: list[People], workers: int) -> list[str]:
    return [
        f"database {os.environ['DATABASE_URL'].rsplit('/', 1)[1]} dropped, re-created and migrated "
        f"({os.environ['DJANGO_SETTINGS_MODULE']}: Baton's apps, viewflow, viewflow.workflow, "
        "bench.peer_viewflow); seeded before any timing:",
        f"  baton: role groups (roles_sync), group {APPROVERS!r}, request type 'peer-expense' with the "
        f"payload schema {PAYLOAD_SCHEMA}, submit permission for the requesters role (guardian), "
        f"policy {POLICY} drafted and published (policy_draft_create, policy_publish); "
        f"{len(seed.people)} requesters (role requesters) and approvers (role approvers, group "
        f"{APPROVERS!r}): one pair per worker ({workers}) and one for counting statements; channel "
        "listeners on the approvers' inbox group and every requester's inbox",
        f"  viewflow: group {VIEWFLOW_REQUESTERS!r} with peer_viewflow.submit_approvalprocess, group "
        f"{VIEWFLOW_APPROVERS!r} with peer_viewflow.approve_approvalprocess, "
        f"{len(viewflow_people)} requesters and approvers in them, paired the same way",
        f"  every flow: title {TITLE!r}, payload {PAYLOAD}",
    ]


# --- one flow of each side -----------------------------------------------------------------


class PeerFlow(Protocol):
    side: str

    def run(self) -> Iterator[str]:
        """One flow, start to end: yields the name of each step once it is done."""
        ...


class BatonFlow:
    """Create-and-submit by the requester, approve by the approver, through Baton's services."""

    side = "baton"

    def __init__(self, request_type_id: int, people: People) -> None:
        from accounts.models import User
        from approvals.models import RequestType
        from approvals.services import request_act, request_create

        self._create, self._act = request_create, request_act
        self._request_type = RequestType.objects.get(pk=request_type_id)
        self._requester = User.objects.get(pk=people.requester_id)
        self._approver = User.objects.get(pk=people.approver_id)

    def run(self) -> Iterator[str]:
        request = self._create(
            requester=copy.copy(self._requester),
            request_type=copy.copy(self._request_type),
            title=TITLE,
            payload=dict(PAYLOAD),
        )
        yield "request_create (create + submit)"
        self._act(request_id=request.pk, action="approve", actor=copy.copy(self._approver))
        yield "request_act approve"


class ViewflowFlow:
    """Start by the requester, claim and complete of the approve task by the approver."""

    side = "viewflow"

    def __init__(self, people: People) -> None:
        from accounts.models import User
        from bench.peer_viewflow.flows import approval_claim, approval_complete, approval_start

        self._start, self._claim, self._complete = approval_start, approval_claim, approval_complete
        self._requester = User.objects.get(pk=people.requester_id)
        self._approver = User.objects.get(pk=people.approver_id)

    def run(self) -> Iterator[str]:
        process = self._start(requester=copy.copy(self._requester), title=TITLE, payload=dict(PAYLOAD))
        yield "start"
        task_id = self._claim(process_id=process.pk, user=copy.copy(self._approver))
        yield "claim (assign)"
        self._complete(process_id=process.pk, task_id=task_id, user=copy.copy(self._approver))
        yield "complete (approve, end)"


def flow_once(flow: PeerFlow) -> None:
    for _ in flow.run():
        pass


@dataclass
class StepCount:
    step: str
    sql: list[str]

    @property
    def _after_last_commit(self) -> list[str]:
        commits = [i for i, sql in enumerate(self.sql) if sql.strip().upper() == "COMMIT"]
        return self.sql[commits[-1] + 1 :] if commits else []

    @property
    def after_commit(self) -> int:
        """Statements after the step's last COMMIT: for Baton, the push marking its events delivered."""
        return len(self._after_last_commit)

    @property
    def pushed(self) -> bool:
        """Whether Baton's after-commit push ran and was counted: its UPDATE of the outbox rows."""
        return any(
            sql.startswith('UPDATE "workflows_outboxevent"') and "delivered" in sql
            for sql in self._after_last_commit
        )


def count_statements(flow: PeerFlow) -> list[StepCount]:
    """The SQL statements of one flow, step by step: each captured around the whole call, so
    what runs after commit (Baton's push) counts with the step that caused it."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    steps = flow.run()
    counts: list[StepCount] = []
    while True:
        with CaptureQueriesContext(connection) as captured:
            step = next(steps, None)
        if step is None:
            return counts
        counts.append(StepCount(step=step, sql=[q["sql"] for q in captured.captured_queries]))


# --- the workers ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """A stretch of time one side runs in: from `begin`, measured from `measure` to `end`."""

    side: str
    begin: float
    measure: float
    end: float


def _schedule(*, rounds: int, seconds: float, warmup: float) -> list[Window]:
    """Offsets from the common start: baton, viewflow, baton, viewflow..., `seconds` measured per side."""
    windows = []
    at = 0.0
    measured = seconds / rounds
    for round_ in range(rounds):
        for side in SIDES:
            lead = warmup if round_ == 0 else SETTLE
            windows.append(Window(side=side, begin=at, measure=at + lead, end=at + lead + measured))
            at += lead + measured
    return windows


@dataclass(frozen=True)
class WorkerPlan:
    side: str
    index: int
    people: People
    request_type_id: int  # Baton's; unused by Viewflow


@dataclass
class WorkerResult:
    side: str
    index: int
    done: int = 0  # every flow, unmeasured ones included
    latencies: list[float] = field(default_factory=list)  # seconds, of flows inside the windows
    measured: int = 0  # flows begun inside windows, over which CPU was measured
    cpu_worker: float = 0.0  # seconds of this process's CPU (all its threads)
    cpu_postgres: float | None = 0.0  # seconds of its PostgreSQL backend's CPU, if readable
    error: str = ""


def _backend_cpu(pid: int) -> float | None:
    """CPU seconds used so far by a local PostgreSQL backend process (None if not readable)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    return int(pid)


def _make_flow(plan: WorkerPlan) -> PeerFlow:
    if plan.side == "baton":
        return BatonFlow(plan.request_type_id, plan.people)
    return ViewflowFlow(plan.people)


def _run_windows(
    result: WorkerResult, windows: list[Window], start: float, backend_pid: int, flow: PeerFlow
) -> None:
    """Run flows back to back inside each of this side's windows, measuring as it goes."""
    for window in windows:
        if window.side != result.side:
            continue
        begin, measure, end = start + window.begin, start + window.measure, start + window.end
        time.sleep(max(0.0, begin - time.monotonic()))
        cpu_at: tuple[float, float | None] | None = None
        while (began := time.monotonic()) < end:
            if cpu_at is None and began >= measure:
                cpu_at = (time.process_time(), _backend_cpu(backend_pid))
            flow_once(flow)
            finished = time.monotonic()
            result.done += 1
            if cpu_at is not None:
                result.measured += 1
                if finished <= end:
                    result.latencies.append(finished - began)
        if cpu_at is not None:
            result.cpu_worker += time.process_time() - cpu_at[0]
            postgres_now = _backend_cpu(backend_pid)
            if result.cpu_postgres is not None and postgres_now is not None and cpu_at[1] is not None:
                result.cpu_postgres += postgres_now - cpu_at[1]
            else:
                result.cpu_postgres = None


def _worker(plan: WorkerPlan, windows: list[Window], ready: Any, go: Any, start: Any, out: Any) -> None:
    result = WorkerResult(side=plan.side, index=plan.index)
    try:
        _django_setup()
        flow = _make_flow(plan)
        backend_pid = _backend_pid()
        ready.wait()
        go.wait()
        _run_windows(result, windows, start.value, backend_pid, flow)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
        ready.abort()  # a worker that cannot run must not leave the others waiting at the barrier
    out.put(result)


# --- the outcome ---------------------------------------------------------------------------


@dataclass
class SideResult:
    name: str
    seconds: float
    workers: list[WorkerResult]
    redis_cpu: float

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

    def cpu_ms(self, which: str) -> float | None:
        """CPU milliseconds per measured flow: 'worker', 'postgres', 'redis' or 'total'."""
        flows = sum(w.measured for w in self.workers)
        postgres: float | None = None
        if all(w.cpu_postgres is not None for w in self.workers):
            postgres = sum(w.cpu_postgres or 0.0 for w in self.workers)
        worker = sum(w.cpu_worker for w in self.workers)
        totals = {
            "worker": worker,
            "postgres": postgres,
            "redis": self.redis_cpu,
            "total": None if postgres is None else worker + postgres + self.redis_cpu,
        }
        total = totals[which]
        return None if total is None or not flows else total / flows * 1000

    @property
    def errors(self) -> list[str]:
        return [f"{self.name} worker {w.index}: {w.error}" for w in self.workers if w.error]


def _redis_cpu(client: Any) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _run(
    plans: list[WorkerPlan], *, redis_url: str, rounds: int, seconds: float, warmup: float
) -> dict[str, SideResult]:
    """Start every worker, let them load their people, then run the windows; Redis CPU sampled per window."""
    import redis
    from django.db import connections

    # The parent's connections are not for the children; spawned processes open their own.
    connections.close_all()
    windows = _schedule(rounds=rounds, seconds=seconds, warmup=warmup)
    ctx = mp.get_context("spawn")
    ready = ctx.Barrier(len(plans) + 1)
    go = ctx.Event()
    start = ctx.Value("d", 0.0)
    out = ctx.Queue()
    processes = [
        ctx.Process(
            target=_worker, args=(plan, windows, ready, go, start, out), name=f"{plan.side}-{plan.index}"
        )
        for plan in plans
    ]
    for process in processes:
        process.start()
    redis_cpu = dict.fromkeys(SIDES, 0.0)
    try:
        ready.wait(timeout=600)
    except threading.BrokenBarrierError:
        print("  a worker failed before the run; no windows were run")
    else:
        print(
            f"  {len(processes)} workers ready; windows: "
            + ", ".join(f"{w.side} {w.end - w.measure:g}s" for w in windows)
        )
        start.value = time.monotonic() + 0.5
        go.set()
        client = redis.Redis.from_url(redis_url)
        with AutoAnalyze(os.environ["DATABASE_URL"]) as analyzer:
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
    return {
        side: SideResult(
            name=side,
            seconds=seconds,
            workers=sorted((r for r in results if r.side == side), key=lambda r: r.index),
            redis_cpu=redis_cpu[side],
        )
        for side in SIDES
    }


def _verify(*, request_type_id: int, expected: dict[str, int]) -> list[str]:
    """What must hold after the run; returns the problems found (none when all is well)."""
    from approvals.models import ApprovalRequest, Decision
    from bench.peer_viewflow.flows import ApprovalFlow
    from bench.peer_viewflow.models import ApprovalProcess
    from workflows.audit import audit_verify
    from workflows.models import OutboxEvent

    problems: list[str] = []
    report = audit_verify()
    print(f"  baton: audit_verify: {report.entries} entries in {report.chains} chains, intact={report.ok}")
    problems += [f"audit chain broken: {brk}" for brk in report.breaks]

    requests = ApprovalRequest.objects.filter(request_type_id=request_type_id)
    states = Counter(requests.values_list("state", flat=True))
    decisions = Decision.objects.filter(request__in=requests, outcome="approve").count()
    outbox = Counter(OutboxEvent.objects.values_list("status", flat=True))
    print(
        f"  baton: {sum(states.values())} requests {dict(states)}, {decisions} approve decisions; "
        f"outbox {dict(outbox)}"
    )
    if states != Counter({"approved": expected["baton"]}) or decisions != expected["baton"]:
        problems.append(f"baton: expected {expected['baton']} requests, each approved once")
    if set(outbox) - {OutboxEvent.Status.DELIVERED}:
        problems.append("baton: outbox events not delivered by the after-commit push")

    processes = ApprovalProcess.objects.filter(flow_class=ApprovalFlow)
    statuses = Counter(processes.values_list("status", flat=True))
    unfinished = processes.filter(finished__isnull=True).count()
    approved = processes.filter(data__approved=True).count()
    tasks = Counter(
        ApprovalFlow.task_class._default_manager.filter(process__in=processes).values_list(
            "status", flat=True
        )
    )
    print(
        f"  viewflow: {sum(statuses.values())} processes {dict(statuses)}, {approved} approved, "
        f"{unfinished} unfinished; tasks {dict(tasks)}"
    )
    count = expected["viewflow"]
    if statuses != Counter({"DONE": count}) or unfinished or approved != count:
        problems.append(f"viewflow: expected {count} processes, each finished and approved")
    if tasks != Counter({"DONE": 3 * count}):
        problems.append(f"viewflow: expected {3 * count} tasks (start, approve, end), all done")
    return problems


def _purge_redis(redis_url: str) -> tuple[int, int]:
    """Empty the Celery queue and remove the channel-layer keys and kombu's bindings the bench wrote."""
    import redis

    from config.celery import app

    purged = app.control.purge()
    client = redis.Redis.from_url(redis_url)
    keys = [
        key
        for pattern in (f"{CHANNEL_PREFIX}*", "_kombu.binding*")
        for key in client.scan_iter(match=pattern, count=1000)
    ]
    if keys:
        client.delete(*keys)
    client.close()
    return purged, len(keys)


# --- main ----------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per side (20)")
    parser.add_argument("--rounds", type=int, default=2, help="windows per side, alternating (2)")
    parser.add_argument(
        "--warmup", type=float, default=2.0, help="unmeasured seconds before each side's first (2)"
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes per side (1)")
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server")
    parser.add_argument(
        "--database", default=DB_NAME, help=f"database to drop and re-create for the run ({DB_NAME})"
    )
    parser.add_argument("--redis-url", default=REDIS_URL, help=f"Redis db for the bench ({REDIS_URL})")
    parser.add_argument("--settings", default=SETTINGS, help=f"Django settings module ({SETTINGS})")
    parser.add_argument(
        "--verbose", action="store_true", help="print how the data was made and each side's SQL statements"
    )
    parser.add_argument(
        "--check", action="store_true", help=f"exit 1 when baton/viewflow flows/s < {TARGET_RATIO}"
    )
    args = parser.parse_args(argv)
    if not args.database.startswith(DB_NAME):
        parser.error(f"--database: the bench drops it; give it a name starting with {DB_NAME!r}")
    return args


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _ratio(baton: float | None, viewflow: float | None) -> str:
    return "n/a" if baton is None or not viewflow else f"{baton / viewflow:.2f}"


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if importlib.util.find_spec("viewflow") is None:
        print(
            "bench/peer needs django-viewflow: `make bench-peer` installs requirements/bench.txt into .venv"
        )
        return 2
    began = time.monotonic()
    _configure_environment(
        settings=args.settings, server_url=args.pg_url, database=args.database, redis_url=args.redis_url
    )
    _recreate_database(args.pg_url, args.database)
    _django_setup()
    from django.core.management import call_command

    print(
        f"bench/peer: Baton beside Viewflow, {args.workers} worker process(es) per side, "
        f"{args.seconds:g}s measured per side in {args.rounds} rounds; {args.database}, {args.redis_url}"
    )
    call_command("migrate", verbosity=0)
    seed = seed_baton(people=args.workers + 1)
    viewflow_people = seed_viewflow(people=args.workers + 1)
    _listen(seed)
    if args.verbose:
        print("\n".join(_how_the_data_was_made(seed, viewflow_people, args.workers)))

    # One flow of each side warms the process (content types, connections); the next is counted.
    problems: list[str] = []
    counted: dict[str, list[StepCount]] = {}
    spare_flows: list[PeerFlow] = [
        BatonFlow(seed.request_type_id, seed.people[-1]),
        ViewflowFlow(viewflow_people[-1]),
    ]
    print("SQL statements per flow (BEGIN/COMMIT and what runs after commit included):")
    for flow in spare_flows:
        flow_once(flow)
        counted[flow.side] = count_statements(flow)
        steps = counted[flow.side]
        total = sum(len(s.sql) for s in steps)
        print(
            f"  {flow.side:<9}{total:>3} = "
            + " + ".join(f"{len(s.sql)} {s.step} ({s.after_commit} after commit)" for s in steps)
        )
        if args.verbose:
            for s in steps:
                print(f"    {s.step}:")
                for sql in s.sql:
                    print(f"      {sql}")
    print(marks_line())
    unpushed = [s.step for s in counted["baton"] if not s.pushed]
    if unpushed:
        problems.append(f"baton: no after-commit push counted for {', '.join(unpushed)}")

    plans = [
        WorkerPlan(side="baton", index=n, people=pair, request_type_id=seed.request_type_id)
        for n, pair in enumerate(seed.people[:-1])
    ] + [
        WorkerPlan(side="viewflow", index=n, people=pair, request_type_id=seed.request_type_id)
        for n, pair in enumerate(viewflow_people[:-1])
    ]
    sides = _run(
        plans, redis_url=args.redis_url, rounds=args.rounds, seconds=args.seconds, warmup=args.warmup
    )
    baton, viewflow = sides["baton"], sides["viewflow"]
    errors = baton.errors + viewflow.errors
    for error in errors:
        print(f"  ERROR {error}")

    statements = {side: sum(len(s.sql) for s in steps) for side, steps in counted.items()}
    print(f"\n{'':<9} {'flows/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'count':>6}   CPU ms per flow:")
    print(
        f"{'':<9} {'':>8} {'':>8} {'':>8} {'':>6}   {'worker':>7} {'postgres':>8} {'redis':>6} {'total':>7}  SQL"
    )
    for side in (baton, viewflow):
        print(
            f"{side.name:<9} {side.rate:>8.1f} {side.percentile(50) * 1000:>8.2f} "
            f"{side.percentile(95) * 1000:>8.2f} {len(side.latencies):>6}   "
            f"{_ms(side.cpu_ms('worker')):>7} {_ms(side.cpu_ms('postgres')):>8} "
            f"{_ms(side.cpu_ms('redis')):>6} {_ms(side.cpu_ms('total')):>7}  {statements[side.name]:>3}"
        )
    ratio = baton.rate / viewflow.rate if viewflow.rate else 0.0
    print(
        f"baton/viewflow: flows/s {ratio:.2f}; CPU per flow: worker "
        f"{_ratio(baton.cpu_ms('worker'), viewflow.cpu_ms('worker'))}, postgres "
        f"{_ratio(baton.cpu_ms('postgres'), viewflow.cpu_ms('postgres'))}, total "
        f"{_ratio(baton.cpu_ms('total'), viewflow.cpu_ms('total'))}"
    )
    verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"target: baton >= {TARGET_RATIO:g} x viewflow flows/s: {verdict}\n")

    print("verification:")
    # Two flows of each side ran in this process (warm-up and counted) besides the workers'.
    expected = {"baton": baton.done + 2, "viewflow": viewflow.done + 2}
    problems += _verify(request_type_id=seed.request_type_id, expected=expected)
    purged, keys = _purge_redis(args.redis_url)
    print(f"  celery: {purged} task messages were in the broker (purged); {keys} Redis keys removed")
    if purged < expected["baton"]:
        problems.append(
            f"celery: {purged} task messages in the broker, expected at least {expected['baton']}"
        )
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
