"""bench/api: the REST API under load on PostgreSQL: actions through gunicorn beside raw SQL,
and 1,000 long-poll waiters held by one ASGI process.

Run it (PostgreSQL at 127.0.0.1:5432, Redis):

    .venv/bin/python -m bench.api                        # or: make bench-api
    .venv/bin/python -m bench.api --seconds 6 --workers 4 --waiters 100   # a quick look

It drops and re-creates the database `baton_api_bench` (`--database`), seeds it as
bench/transitions does (its `_seed`, with the sides `raw-pub` and `rest`), gives every
`rest` person an API token (`accounts.tokens.api_token_create`), and uses Redis db 15
(`--redis-url`) as channel layer and broker.

(a) Actions per second, the same run, the same concurrency (`--workers` client processes
per side, each on its own requests), in windows alternating the sides (transitions'
`_schedule` and `_run_windows`):

  rest     `POST /api/v1/requests/{id}/actions/{name}/` over keep-alive HTTP/1.1 with a
           Bearer token, to gunicorn running `config.wsgi` with `config.settings.production`
           (DEBUG off, `--gunicorn-workers` sync workers, CONN_MAX_AGE 600). The unit is the
           transitions bench's: on each request in turn, `request_changes` by its approver
           (with a comment) and `resubmit` by its requester; each answer is the request's
           full representation (200), which the client parses. Everything counts: HTTP
           parsing, token authentication (a hashed lookup), the throttle, the serializer,
           the transition service, its after-commit push, the representation.
  raw-pub  transitions' `_raw_stepper(publish=True)`: psycopg, one transaction writing the
           same rows, then the same Redis publishing (the hand-written floor).

  The throttle is raised (`API_RATE`) so it never refuses the bench; the requests carry
  `X-Forwarded-Proto: https`, as behind the TLS proxy production expects (else it would
  redirect). Printed: actions/s and latency p50/p99 per side, and rest/raw-pub
  (target >= 0.25); gunicorn's CPU (master and workers) per REST action, to set beside
  the profile of one action in one process. Verified: every audit chain intact, and per side the chains hold
  exactly the transitions the clients counted.

(b) `--waiters` clients, each on a request of its own, each `GET /api/v1/requests/{id}/wait/
?seconds=60` with a token (asyncio, raw sockets), held by ONE uvicorn process running
`config.asgi`. Its RSS (/proc) before they connect and once all are waiting gives the
memory per waiter (target <= 50 KB). Then the bench process approves the requests through
the service (`approvals.services.request_act`) at `--decide-rate` per second; for each
waiter, the time from its decision's commit (an on_commit hook registered before the
service's own) to the end of its answer (target: all within 1 s); unanswered waiters and
answers that are not the approved request are counted.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing as mp
import os
import secrets
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.autoanalyze import AutoAnalyze  # noqa: E402
from bench.transitions import (  # noqa: E402
    CHANGE_COMMENT,
    IN_REVIEW,
    Seed,
    SideResult,
    Window,
    WorkerPlan,
    WorkerResult,
    _configure_environment,
    _create_requests,
    _django_setup,
    _purge_redis,
    _raw_stepper,
    _recreate_database,
    _run_windows,
    _schedule,
    _seed,
)

SIDES = ("raw-pub", "rest")
TARGET_RATIO = 0.25
TARGET_KB_PER_WAITER = 50
TARGET_WAKE_SECONDS = 1.0
BIN = ROOT / ".venv" / "bin"
PROXY_HEADERS = {"X-Forwarded-Proto": "https"}


# --- the servers ---------------------------------------------------------------------------


def _server_env() -> dict[str, str]:
    """The bench's environment (database, Redis, prefix) with production settings."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "SECRET_KEY": secrets.token_urlsafe(64),
        "API_RATE": "100000000/min",
        "LOG_LEVEL": "WARNING",
    }


def _start(argv: list[str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(argv, cwd=ROOT, env=_server_env())  # nosec B603 — fixed argv
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            time.sleep(1.0)  # listening; its workers finish booting
            return process
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{argv[0]} exited with {process.returncode}") from None
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"{argv[0]} did not answer on port {port}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def _token_for(user_id: int) -> str:
    from accounts.models import User
    from accounts.tokens import api_token_create

    return api_token_create(owner=User.objects.get(pk=user_id), name="bench").secret


# --- (a) actions through the REST endpoint beside raw SQL ------------------------------------


def _rest_stepper(request_ids: list[int], port: int, tokens: dict[str, str]) -> tuple[Any, int]:
    """One keep-alive connection; each step one action, the cycle of transitions' unit."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {
        who: {"Authorization": f"Bearer {token}", "Content-Type": "application/json", **PROXY_HEADERS}
        for who, token in tokens.items()
    }
    states = dict.fromkeys(request_ids, IN_REVIEW)
    turn = 0

    def step() -> None:
        nonlocal turn
        pk = request_ids[turn % len(request_ids)]
        turn += 1
        if states[pk] == IN_REVIEW:
            name, who, body = "request_changes", "approver", {"comment": CHANGE_COMMENT}
        else:
            name, who, body = "resubmit", "requester", {}
        conn.request("POST", f"/api/v1/requests/{pk}/actions/{name}/", json.dumps(body), headers[who])
        response = conn.getresponse()
        data = response.read()
        if response.status != 200:
            raise RuntimeError(f"{name} on {pk}: {response.status} {data[:300]!r}")
        states[pk] = json.loads(data)["state"]

    return step, 0  # no PostgreSQL backend of its own: the server's CPU is not split out


def _worker(
    plan: WorkerPlan,
    dsn: str,
    port: int,
    tokens: dict[str, str],
    windows: list[Window],
    ready: Any,
    go: Any,
    start: Any,
    out: Any,
) -> None:
    result = WorkerResult(side=plan.side, index=plan.index)
    try:
        _django_setup()
        result.request_ids = _create_requests(plan)
        if plan.side == "rest":
            from django.db import connections

            connections.close_all()  # from here on this side is an HTTP client only
            step, backend_pid = _rest_stepper(result.request_ids, port, tokens)
        else:
            step, backend_pid = _raw_stepper(plan, result.request_ids, dsn, publish=True)
        ready.wait()
        go.wait()
        _run_windows(result, windows, start.value, backend_pid, step)
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    out.put(result)


def _actions(args: argparse.Namespace, dsn: str, seed: Seed) -> tuple[dict[str, SideResult], list[str]]:
    from django.db import connections

    plans = [plan for plan in seed.plans if plan.side in SIDES]
    tokens = {
        plan.index: {"approver": _token_for(plan.approver_id), "requester": _token_for(plan.requester_id)}
        for plan in plans
        if plan.side == "rest"
    }
    connections.close_all()
    port = _free_port()
    argv = [str(BIN / "gunicorn"), "config.wsgi:application", "-w", str(args.gunicorn_workers),
            "-b", f"127.0.0.1:{port}", "--keep-alive", "75", "--log-level", "warning"]  # fmt: skip
    server = _start(argv, port)
    try:
        windows = _schedule(rounds=args.rounds, seconds=args.seconds, warmup=args.warmup, sides=SIDES)
        ctx = mp.get_context("spawn")
        ready, go, start, out = ctx.Barrier(len(plans) + 1), ctx.Event(), ctx.Value("d", 0.0), ctx.Queue()
        processes = [
            ctx.Process(
                target=_worker,
                args=(plan, dsn, port, tokens.get(plan.index, {}), windows, ready, go, start, out),
                name=f"{plan.side}-{plan.index}",
            )
            for plan in plans
        ]
        for process in processes:
            process.start()
        ready.wait(timeout=600)
        print(f"  {len(processes)} clients ready; gunicorn with {args.gunicorn_workers} sync workers")
        start.value = time.monotonic() + 0.5
        go.set()
        server_cpu = _tree_cpu_seconds(server.pid)
        with AutoAnalyze(dsn) as analyzer:
            results = [out.get(timeout=args.seconds * 2 + 600) for _ in processes]
        server_cpu = _tree_cpu_seconds(server.pid) - server_cpu
        print(f"  {analyzer.describe()}")
        for process in processes:
            process.join(timeout=30)
    finally:
        _stop(server)
    rest_done = sum(r.done for r in results if r.side == "rest")
    if rest_done:
        # gunicorn does nothing but the REST side's actions: its CPU per action, beside the
        # profile of one action in one process, says whether the server or the waiting bounds it.
        print(f"  gunicorn CPU: {server_cpu * 1000 / rest_done:.2f} ms per REST action ({rest_done} actions)")
    sides = {
        side: SideResult(
            name=side,
            seconds=args.seconds,
            workers=sorted((r for r in results if r.side == side), key=lambda r: r.index),
            redis_cpu=None,
        )
        for side in SIDES
    }
    return sides, _verify(sides)


def _verify(sides: dict[str, SideResult]) -> list[str]:
    """Every chain intact; each side's chains hold exactly the transitions it counted."""
    from approvals.models import ApprovalRequest
    from workflows.audit import audit_verify

    problems = [f"{side.name}: {e}" for side in sides.values() for e in side.errors]
    report = audit_verify()
    print(f"  audit_verify: {report.entries} entries in {report.chains} chains, intact={report.ok}")
    problems += [f"audit chain broken: {brk}" for brk in report.breaks]
    for side in sides.values():
        ids = [pk for w in side.workers for pk in w.request_ids]
        rows = ApprovalRequest.objects.filter(pk__in=ids).values_list("version", "audit_seq")
        # Seeded by create + submit (2 entries); every transition adds one entry and a version.
        moved = sum(seq - 2 for _, seq in rows)
        problems += [f"{side.name}: version {v} but chain head #{s}" for v, s in rows if v != s]
        if moved != side.done:
            problems.append(f"{side.name}: the clients counted {side.done}, the chains hold {moved}")
        print(f"  {side.name}: {moved} transitions on {len(ids)} requests, as counted")
    return problems


# --- (b) waiters held by one ASGI process --------------------------------------------------


async def _wait_one(
    port: int, pk: int, etag: str, token: str, connected: list[int]
) -> tuple[float, int, str]:
    """One waiter, as a careful client waits: with If-None-Match the version it knows, so a
    decision that lands before its wait begins answers at once. Returns when its answer
    ended, its status and the state answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        (
            f"GET /api/v1/requests/{pk}/wait/?seconds=60 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {token}\r\nIf-None-Match: {etag}\r\n"
            "X-Forwarded-Proto: https\r\nConnection: close\r\n\r\n"
        ).encode()
    )
    await writer.drain()
    connected[0] += 1
    raw = await reader.read()
    ended = time.time()
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head else 0
    if b"chunked" in head.lower():
        body = _dechunk(body)
    try:
        state = json.loads(body).get("state", "")
    except ValueError:
        state = ""
    return ended, status, state


def _dechunk(body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line or b"0", 16)
        if not size:
            break
        out, rest = out + rest[:size], rest[size + 2 :]
    return out


def _waiters(args: argparse.Namespace, seed: Seed) -> list[str]:
    from accounts.models import User
    from approvals.api.base import etag_of
    from approvals.models import RequestType
    from approvals.services import request_create

    plan = next(plan for plan in seed.plans if plan.side == "wait")
    requester, approver = User.objects.get(pk=plan.requester_id), User.objects.get(pk=plan.approver_id)
    kind = RequestType.objects.get(pk=plan.request_type_id)
    made = [
        request_create(requester=requester, request_type=kind, title=f"wait {n}") for n in range(args.waiters)
    ]
    ids, etags = [r.pk for r in made], [etag_of(r) for r in made]
    token = _token_for(requester.pk)
    port = _free_port()
    argv = [str(BIN / "uvicorn"), "config.asgi:application", "--port", str(port), "--log-level", "warning",
            "--no-access-log", "--timeout-keep-alive", "75", "--backlog", "4096"]  # fmt: skip
    server = _start(argv, port)
    problems: list[str] = []
    try:
        time.sleep(1.0)
        before = _rss_kb(server.pid)
        committed: dict[int, float] = {}
        answers = asyncio.run(
            _hold_and_decide(args, port, token, ids, etags, server.pid, before, committed, approver)
        )
    finally:
        _stop(server)
    lags, unanswered, wrong = [], 0, 0
    for pk, (ended, status, state) in zip(ids, answers, strict=True):
        if status != 200:
            unanswered += 1
            continue
        if state != "approved":
            wrong += 1
        if pk in committed:
            lags.append(ended - committed[pk])
    lags.sort()
    if lags:
        print(
            f"  wake: {len(lags)} answered; from commit to answer p50 {statistics.median(lags) * 1000:.0f} ms, "
            f"p99 {lags[int(len(lags) * 0.99) - 1] * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms "
            f"(target all <= {TARGET_WAKE_SECONDS * 1000:.0f} ms)"
        )
    print(f"  unanswered: {unanswered}; answered with another state: {wrong}")
    late = sum(1 for lag in lags if lag > TARGET_WAKE_SECONDS)
    if unanswered or wrong or late:
        problems.append(f"waiters: {unanswered} unanswered, {wrong} wrong, {late} later than 1 s")
    return problems


async def _hold_and_decide(
    args: argparse.Namespace,
    port: int,
    token: str,
    ids: list[int],
    etags: list[str],
    pid: int,
    before: int,
    committed: dict[int, float],
    approver: Any,
) -> list[tuple[float, int, str]]:
    from asgiref.sync import sync_to_async
    from django.db import transaction

    from approvals.services import request_act

    connected = [0]
    tasks = []
    for pk, etag in zip(ids, etags, strict=True):
        tasks.append(asyncio.create_task(_wait_one(port, pk, etag, token, connected)))
        if len(tasks) % 50 == 0:
            await asyncio.sleep(0.05)  # connect in bursts, as a fleet of agents would
    while connected[0] < len(ids):
        await asyncio.sleep(0.1)
    # Each waiter subscribes and reads its request once: done when the server's CPU rests.
    await _until_idle(pid, settle=args.settle)
    after = _rss_kb(pid)
    per = (after - before) / len(ids)
    print(
        f"  uvicorn RSS {before} KB before, {after} KB with {len(ids)} waiters: {per:.1f} KB per waiter "
        f"(target <= {TARGET_KB_PER_WAITER})"
    )

    def decide(pk: int) -> None:
        with transaction.atomic():
            # Registered first, so it runs first after commit: the moment of the commit.
            transaction.on_commit(lambda: committed.__setitem__(pk, time.time()))
            request_act(request_id=pk, action="approve", actor=approver)

    act = sync_to_async(decide, thread_sensitive=True)
    interval = 1.0 / args.decide_rate
    began = time.monotonic()
    for n, pk in enumerate(ids):
        await asyncio.sleep(max(0.0, began + n * interval - time.monotonic()))
        await act(pk)
    print(f"  decided {len(ids)} requests at {len(ids) / (time.monotonic() - began):.0f}/s")
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return [r if isinstance(r, tuple) else (0.0, 0, "") for r in results]


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user and system) of `pid` and its living descendants (gunicorn's workers)."""
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        try:
            total += _cpu_seconds(current)
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    todo += [int(child) for child in children.read().split()]
        except OSError:  # ended meanwhile
            continue
    return total


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _until_idle(pid: int, *, settle: float) -> None:
    """Wait `settle` seconds, then until the process used under 2% CPU over half a second."""
    await asyncio.sleep(settle)
    used = _cpu_seconds(pid)
    while True:
        await asyncio.sleep(0.5)
        now = _cpu_seconds(pid)
        if now - used < 0.01:
            return
        used = now


# --- main ----------------------------------------------------------------------------------


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server")
    parser.add_argument("--database", default="baton_api_bench", help="dropped and re-created")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15", help="Redis db for the bench")
    parser.add_argument("--settings", default="config.settings.embedded", help="the bench process's settings")
    parser.add_argument("--workers", type=int, default=16, help="client processes per side")
    # Enough that each request sees few actions: its history (in every answer) stays short.
    parser.add_argument("--requests", type=int, default=60, help="requests per client")
    parser.add_argument("--gunicorn-workers", type=int, default=4, help="gunicorn sync workers")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per side")
    parser.add_argument("--rounds", type=int, default=4, help="windows per side")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds before the first")
    parser.add_argument("--waiters", type=int, default=1000, help="concurrent waiters (0: skip)")
    parser.add_argument("--decide-rate", type=float, default=30.0, help="decisions per second")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds after the waiters connect")
    parser.add_argument("--skip-actions", action="store_true", help="only the waiters")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    _configure_environment(
        settings=args.settings, server_url=args.pg_url, database=args.database, redis_url=args.redis_url
    )
    _recreate_database(args.pg_url, args.database)
    _django_setup()
    dsn = f"{args.pg_url.rstrip('/')}/{args.database}"
    problems: list[str] = []
    missed: list[str] = []
    # One seeding for both parts: the sides' people, and one requester and approver for the waits.
    seed = _seed(workers=args.workers, per_worker=args.requests, sides=(*SIDES, "wait"))
    if not args.skip_actions:
        print(f"(a) actions: {args.workers} clients per side, {args.seconds:g} s measured per side")
        sides, found = _actions(args, dsn, seed)
        problems += found
        print(f"  {'side':8} {'actions/s':>10} {'p50 ms':>8} {'p99 ms':>8}")
        for side in sides.values():
            print(
                f"  {side.name:8} {side.rate:>10.0f} {side.percentile(50) * 1000:>8.1f} "
                f"{side.percentile(99) * 1000:>8.1f}"
            )
        ratio = sides["rest"].rate / sides["raw-pub"].rate if sides["raw-pub"].rate else 0.0
        print(f"  rest / raw-pub = {ratio:.2f} (target >= {TARGET_RATIO})")
        if ratio < TARGET_RATIO:
            missed.append(f"rest/raw-pub {ratio:.2f} < {TARGET_RATIO}")
    if args.waiters:
        print(f"(b) {args.waiters} waiters on one uvicorn process")
        problems += _waiters(args, seed)
    purged, keys = _purge_redis(args.redis_url)
    print(f"  Redis: {purged} Celery messages purged, {keys} channel-layer keys removed")
    for problem in problems:
        print(f"  PROBLEM: {problem}")
    for miss in missed:
        print(f"  MISSED: {miss}")
    return 1 if problems or (args.check and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
