"""bench/live: 1,000 connected WebSocket clients, transitions at a steady rate, beside a bare
channels-redis group_send to the same clients in the same run.

Run it (PostgreSQL at 127.0.0.1:5432, Redis; uvicorn starts as a child):

    .venv/bin/python -m bench.live                          # 1,000 clients, 1 transition/s (and 1 bare send/s) for 20 s
    .venv/bin/python -m bench.live --clients 200 --seconds 5 --check

It re-creates the database `baton_live_bench` (`--database`), migrates it, makes one
review group with `--clients` approvers (each with a signed-in session) and a requester,
then starts one ASGI server (uvicorn, the production WebSocket tier, channels-redis's
pub/sub layer on `--redis`, a channel prefix of its own) and a client process holding one
/ws/inbox/ socket per approver.

What is measured, in the same run, against the same sockets:

  memory  the ASGI process's RSS before the clients connect (after one warm-up socket)
          and with all of them connected and idle: KB per idle connection.
          Target: <= 40 KB.
  live    requests submitted at `--rate` per second for `--seconds` through the real
          service (one transaction each; the outbox pushes after commit, the stamp script
          numbers, logs and publishes), each heard by every client on the group's stream.
          Latency: from the moment the transaction committed (an on-commit hook that runs
          before the push) to the moment a client's socket received the event.
  bare    as many messages at the same rate, interleaved with the transitions (half a
          period apart, so both meet the same load), sent with the layer's own group_send
          to the same group (no transaction, no outbox, no number), relayed by the same
          consumer. Latency: from just before group_send to receipt.
  Both: p50, p99 and max over every (client, event) delivery; lost = expected deliveries
  not received; duplicates = deliveries received twice; for live also gaps in the stream
  numbers each client saw. Targets: nothing lost; live p99 <= 1.5x bare p99.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_KB_PER_CONNECTION = 40.0
TARGET_P99_RATIO = 1.5


def _configure(*, server_url: str, database: str, redis_url: str, prefix: str) -> dict[str, str]:
    """This process's environment (and the ASGI child's): PostgreSQL, Redis pub/sub."""
    env = {
        "DJANGO_SETTINGS_MODULE": "config.settings.embedded",
        "DATABASE_URL": f"{server_url.rstrip('/')}/{database}",
        "REDIS_URL": redis_url,
        "CHANNEL_PREFIX": prefix,
        # Notification tasks are not what is measured: they stay in this process's memory.
        "CELERY_BROKER_URL": "memory://",
        "OUTBOX_RELAY_IN_ASGI": "0",
        "DEBUG": "0",
        "LOG_LEVEL": "WARNING",
        "CONN_MAX_AGE": "600",
        "PYTHONPATH": str(ROOT),
    }
    os.environ.update(env)
    return {**os.environ, **env}


def _recreate(server_url: str, database: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{server_url.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def _build(*, clients: int) -> tuple[int, int, int, list[str]]:
    """Migrate and make the people. Returns (requester id, type id, group id, session keys)."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.auth.models import Group
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command
    from guardian.shortcuts import assign_perm

    from accounts.models import User
    from accounts.roles import APPROVERS, REQUESTERS, roles_sync
    from accounts.sessions import LOGGED_IN_AT, SEEN_AT
    from approvals.models import RequestType
    from approvals.publishing import policy_draft_create, policy_publish

    call_command("migrate", verbosity=0)
    roles = roles_sync()
    reviewers = Group.objects.create(name="bench-reviewers")
    requester = User.objects.create_user(username="bench-requester", first_name="Rita", last_name="Bench")
    requester.groups.add(roles[REQUESTERS])
    people = User.objects.bulk_create(
        [
            User(username=f"bench-a{i:04d}", first_name="A", last_name=str(i), password="!")
            for i in range(clients)
        ]
    )
    reviewers.user_set.add(*people)
    roles[APPROVERS].user_set.add(*people)
    # Published once the group has its approvers (publishing checks it has some).
    request_type = RequestType.objects.create(slug="bench-live", name="Bench live")
    document = {"stages": [{"name": "review", "approvers": {"groups": [reviewers.name]}, "rule": "any"}]}
    policy_publish(
        version=policy_draft_create(request_type=request_type, document=document, actor=None), actor=None
    )
    assign_perm("approvals.submit_requesttype", roles[REQUESTERS], request_type)
    keys = []
    now = time.time()
    for person in people:
        session = SessionStore()
        session[SESSION_KEY] = str(person.pk)
        session[BACKEND_SESSION_KEY] = "accounts.backends.RoleModelBackend"
        session[HASH_SESSION_KEY] = person.get_session_auth_hash()
        session[LOGGED_IN_AT] = now
        session[SEEN_AT] = now
        session.create()
        assert session.session_key is not None
        keys.append(session.session_key)
    return requester.pk, request_type.pk, reviewers.pk, keys


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def _wait_port(port: int, *, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("the ASGI server exited")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("the ASGI server did not start")


# --- the client process ---------------------------------------------------------------------


async def _clients(port: int, keys: list[str]) -> None:
    """Hold one socket per session; print 'connected', then on 'stop' (stdin) the deliveries."""
    from websockets.asyncio.client import connect

    received: list[list[Any]] = []  # [client, key, monotonic-free wall time, stream, seq]
    gate = asyncio.Semaphore(50)
    sockets = []

    async def hold(index: int, key: str) -> None:
        async with gate:
            socket = await connect(
                f"ws://127.0.0.1:{port}/ws/inbox/",
                additional_headers={"Cookie": f"sessionid={key}", "Origin": f"http://127.0.0.1:{port}"},
                open_timeout=60,
                max_queue=None,
            )
            ready = json.loads(await socket.recv())
            assert ready["type"] == "ready", ready
        sockets.append(socket)
        async for raw in socket:
            now = time.time()
            message = json.loads(raw)
            if message["type"] == "event":
                event = message["event"]
                received.append(
                    [index, event.get("ref") or event["id"], now, message["stream"], message["seq"]]
                )

    tasks = [asyncio.ensure_future(hold(i, key)) for i, key in enumerate(keys)]
    while len(sockets) < len(keys):
        await asyncio.sleep(0.1)
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        if failed:
            raise RuntimeError(f"a client could not connect: {failed[0].exception()}")
    print("connected", flush=True)

    async def progress() -> None:
        while True:
            await asyncio.sleep(0.5)
            print(f"received {len(received)}", flush=True)

    reporter = asyncio.ensure_future(progress())
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    reporter.cancel()
    for socket in sockets:
        await socket.close()
    for task in tasks:
        task.cancel()
    print(json.dumps(received), flush=True)


# --- the driver -------------------------------------------------------------------------------


def _now_into(moments: list[float]) -> None:
    moments.append(time.time())


def _interleaved(
    *, requester_id: int, type_id: int, group: str, rate: float, seconds: float
) -> tuple[dict[str, float], dict[str, float]]:
    """At `rate` per second each, half a period apart: submit a request through the
    service, and group_send a bare message to the group. Both share the machine's load
    at every moment. Returns (when each request committed, by its event ref; when each
    bare message was sent, by its id)."""
    from channels.layers import get_channel_layer
    from django.db import transaction

    from accounts.models import User
    from approvals.models import RequestType
    from approvals.services import request_create

    layer = get_channel_layer()
    assert layer is not None
    # The layer speaks asyncio: one loop in a thread of its own, kept for the whole run.
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="bare-sender", daemon=True).start()
    requester = User.objects.get(pk=requester_id)
    request_type = RequestType.objects.get(pk=type_id)
    committed: dict[str, float] = {}
    sent: dict[str, float] = {}
    started = time.monotonic()
    for n in range(int(rate * seconds)):
        time.sleep(max(0.0, started + n / rate - time.monotonic()))
        moment: list[float] = []
        with transaction.atomic():
            # Registered first, so it runs at commit, before the outbox's push.
            transaction.on_commit(partial(_now_into, moment))
            request = request_create(
                requester=requester, request_type=request_type, title=f"n{n}", submit=True
            )
        committed[request.workflow_ref()] = moment[0]
        time.sleep(max(0.0, started + (n + 0.5) / rate - time.monotonic()))
        key = f"bare-{n}"
        sent[key] = time.time()
        message = {"type": "relay.event", "event": {"id": key, "topic": "bench.bare"}}
        asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop).result()
    loop.call_soon_threadsafe(loop.stop)
    return committed, sent


def _drained(worker: subprocess.Popen[str], *, expected: int, quiet: float = 5.0) -> None:
    """Wait until the clients received `expected` deliveries, or nothing more for `quiet` s."""
    assert worker.stdout is not None
    last, since = -1, time.monotonic()
    while True:
        count = int(worker.stdout.readline().split()[1])
        if count >= expected:
            return
        if count != last:
            last, since = count, time.monotonic()
        elif time.monotonic() - since > quiet:
            return


def _figures(sent: dict[str, float], deliveries: list[list[Any]], clients: int) -> dict[str, float]:
    seen: dict[tuple[int, str], float] = {}
    duplicates = 0
    for client, key, at, _, _ in deliveries:
        if key not in sent:
            continue
        if (client, key) in seen:
            duplicates += 1
            continue
        seen[(client, key)] = at
    latencies = sorted((at - sent[key]) * 1000 for (_, key), at in seen.items())
    if not latencies:
        return {"lost": clients * len(sent), "duplicates": duplicates, "p50": 0, "p99": 0, "max": 0}
    return {
        "deliveries": len(latencies),
        "lost": clients * len(sent) - len(seen),
        "duplicates": duplicates,
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "max": latencies[-1],
    }


def _gaps(deliveries: list[list[Any]]) -> int:
    """Missing numbers in what each client saw of each numbered stream."""
    seqs: dict[tuple[int, str], list[int]] = {}
    for client, _, _, stream, seq in deliveries:
        if stream is not None and seq is not None:
            seqs.setdefault((client, stream), []).append(seq)
    missing = 0
    for numbers in seqs.values():
        numbers.sort()
        missing += (numbers[-1] - numbers[0] + 1) - len(set(numbers))
    return missing


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=1.0, help="transitions (and bare sends) per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--server", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="baton_live_bench")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/8")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # the client process: port:keys-file
    args = parser.parse_args()
    if args.worker:
        port, keys_file = args.worker.split(":", 1)
        asyncio.run(_clients(int(port), json.loads(Path(keys_file).read_text())))
        return 0

    prefix = f"benchlive{os.getpid()}"
    env = _configure(server_url=args.server, database=args.database, redis_url=args.redis, prefix=prefix)
    _recreate(args.server, args.database)
    import django

    django.setup()
    print(f"building {args.clients} approvers with sessions ...", flush=True)
    requester_id, type_id, group_id, keys = _build(clients=args.clients)
    keys_file = Path(f"/tmp/bench-live-{os.getpid()}.json")
    keys_file.write_text(json.dumps(keys))

    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    asgi = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/uvicorn"),
            "config.asgi:application",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            # As the README's production section runs it: uvicorn's lighter WebSocket
            # implementation, without per-message deflate (a zlib state per socket: 44 KB
            # of the 64 KB a bare ASGI app's idle socket held here, to compress messages
            # of a few hundred bytes).
            "--ws",
            "websockets-sansio",
            "--ws-per-message-deflate",
            "false",
        ],
        cwd=ROOT,
        env=env,
    )
    worker: subprocess.Popen[str] | None = None
    try:
        _wait_port(port, process=asgi)
        # One socket first, so what loads lazily is loaded before the baseline is read.
        warm = subprocess.run(
            [sys.executable, "-m", "bench.live", "--worker", f"{port}:{_one_key(keys_file, keys)}"],
            input="stop\n",
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=env,
            timeout=60,
            check=True,
        )
        assert "connected" in warm.stdout, warm.stderr
        time.sleep(1)
        idle_before = _rss_kb(asgi.pid)
        worker = subprocess.Popen(
            [sys.executable, "-m", "bench.live", "--worker", f"{port}:{keys_file}"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=env,
        )
        assert worker.stdout is not None
        assert worker.stdin is not None
        started = time.monotonic()
        line = worker.stdout.readline()
        assert line.strip() == "connected", line
        print(f"{args.clients} clients connected in {time.monotonic() - started:.1f} s", flush=True)
        time.sleep(2)
        idle_after = _rss_kb(asgi.pid)
        per_connection = (idle_after - idle_before) / args.clients

        print(
            f"live and bare, interleaved: {int(args.rate * args.seconds)} of each at {args.rate}/s ...",
            flush=True,
        )
        committed, bare_sent = _interleaved(
            requester_id=requester_id,
            type_id=type_id,
            group=f"inbox.group.{group_id}",
            rate=args.rate,
            seconds=args.seconds,
        )
        _drained(worker, expected=(len(committed) + len(bare_sent)) * args.clients)
        worker.stdin.write("stop\n")
        worker.stdin.flush()
        line = worker.stdout.readline()
        while line.startswith("received"):
            line = worker.stdout.readline()
        deliveries = json.loads(line)
    finally:
        if worker is not None:
            worker.kill()
        asgi.terminate()
        asgi.wait(timeout=15)
        keys_file.unlink(missing_ok=True)

    live = _figures(committed, deliveries, args.clients)
    bare = _figures(bare_sent, deliveries, args.clients)
    gaps = _gaps([d for d in deliveries if d[1] in committed])
    print()
    print(f"{'':6} {'deliveries':>10} {'lost':>6} {'dup':>5} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, row in (("live", live), ("bare", bare)):
        print(
            f"{name:6} {row.get('deliveries', 0):>10.0f} {row['lost']:>6.0f} {row['duplicates']:>5.0f}"
            f" {row['p50']:>8.1f} {row['p99']:>8.1f} {row['max']:>8.1f}"
        )
    ratio = live["p99"] / bare["p99"] if bare["p99"] else float("inf")
    print(f"live p99 / bare p99: {ratio:.2f} (target <= {TARGET_P99_RATIO})")
    print(f"gaps in the stream numbers the clients saw: {gaps}")
    print(
        f"ASGI RSS: {idle_before / 1024:.1f} MB before, {idle_after / 1024:.1f} MB with {args.clients} idle"
        f" connections: {per_connection:.1f} KB each (target <= {TARGET_KB_PER_CONNECTION})"
    )
    missed = []
    if live["lost"] or gaps:
        missed.append("live events were lost")
    if ratio > TARGET_P99_RATIO:
        missed.append("live p99 above 1.5x bare")
    if per_connection > TARGET_KB_PER_CONNECTION:
        missed.append("memory per idle connection above 40 KB")
    print("targets: " + ("all met" if not missed else "missed: " + "; ".join(missed)))
    return 1 if args.check and missed else 0


def _one_key(keys_file: Path, keys: list[str]) -> Path:
    one = keys_file.with_suffix(".warm.json")
    one.write_text(json.dumps(keys[:1]))
    return one


if __name__ == "__main__":
    sys.exit(main())
