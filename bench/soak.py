"""bench/soak: the back half of Baton under faults — Celery workers, beat, the outbox relay —
on PostgreSQL and a Redis of its own, under a steady mixed load, while a worker is
SIGKILLed and Redis is restarted. Afterwards it counts what must hold and prints it.

    .venv/bin/python -m bench.soak --seconds 90 --database baton_bench_soak --redis-port 6397

What runs: two Celery workers, Celery beat (the timers scan every 2 s, so SLAs of one
minute run out during the soak) and one outbox relay, as subprocesses. The load runs in
this process through the services (the web tier is not part of this soak): submissions of
two request types (one whose stage is rejected automatically after 1 minute, one whose
manager is told), approvals, claims and reassignments, at a steady pace.

Faults: at a third of the time worker 1 is SIGKILLed (and started again 3 s later); at
half the time Redis is stopped for 3 s and started again.

Afterwards (once the relay and the workers are idle): every accepted action is in the
database once, every audit chain verifies, every outbox event is delivered, each
notification exists once per event and person (a constraint; the count is printed), no
request timed out twice and no handoff escalated twice.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent


def _configure(*, server_url: str, database: str, redis_url: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.embedded"
    os.environ["DATABASE_URL"] = f"{server_url.rstrip('/')}/{database}"
    os.environ["REDIS_URL"] = redis_url
    os.environ["CELERY_BROKER_URL"] = redis_url
    os.environ["DEBUG"] = "0"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["OUTBOX_RELAY_IN_ASGI"] = "0"
    os.environ["TIMERS_SCAN_SECONDS"] = "2"
    os.environ["CELERY_VISIBILITY_TIMEOUT"] = "600"
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.dummy.EmailBackend"


class Redis:
    """A redis-server of the soak's own, to stop and start again."""

    def __init__(self, port: int, workdir: Path) -> None:
        self.port, self.workdir = port, workdir
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(0.5)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


class Processes:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.running: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str]) -> None:
        log = (self.workdir / f"{name}.log").open("ab")
        self.running[name] = subprocess.Popen(
            argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def kill(self, name: str) -> None:
        process = self.running.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    def stop_all(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.running.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def _worker_argv(name: str) -> list[str]:
    return [str(BIN / "celery"), "-A", "config", "worker", "--pool=solo", "-n", f"{name}@%h", "-Q", "celery",
            "--without-gossip", "--without-mingle", "--loglevel=INFO"]  # fmt: skip


def _world() -> dict[str, Any]:
    from django.core.management import call_command
    from guardian.shortcuts import assign_perm

    from accounts.models import User
    from accounts.roles import APPROVERS, MANAGERS, REQUESTERS, roles_sync
    from approvals.models import RequestType
    from approvals.publishing import policy_draft_create, policy_publish

    call_command("migrate", verbosity=0)
    roles = roles_sync()
    boss = User.objects.create_user(username="soak-boss", email="boss@example.com")
    boss.groups.add(roles[MANAGERS])
    approvers = []
    for i in range(4):
        person = User.objects.create_user(username=f"soak-a{i}", email=f"a{i}@example.com", manager=boss)
        person.groups.add(roles[APPROVERS])
        approvers.append(person)
    requesters = []
    for i in range(4):
        person = User.objects.create_user(username=f"soak-r{i}", email=f"r{i}@example.com")
        person.groups.add(roles[REQUESTERS])
        requesters.append(person)
    names = [a.username for a in approvers]
    types = []
    for slug, overdue in (("soak-reject", "reject"), ("soak-tell", "notify_manager")):
        kind = RequestType.objects.create(slug=slug, name=slug)
        stage = {"name": "review", "approvers": {"users": names}, "sla": "1m", "on_overdue": overdue}
        policy_publish(
            version=policy_draft_create(request_type=kind, document={"stages": [stage]}, actor=None),
            actor=None,
        )
        assign_perm("approvals.submit_requesttype", roles[REQUESTERS], kind)
        types.append(RequestType.objects.get(pk=kind.pk))
    return {"approvers": approvers, "requesters": requesters, "types": types, "boss": boss}


def _load_step(world: dict[str, Any], rng: random.Random, tally: Counter[str]) -> None:
    from approvals.models import ApprovalRequest
    from approvals.services import request_act, request_create
    from workflows import errors
    from workflows.models import Handoff
    from workflows.services import handoff_reassign

    roll = rng.random()
    try:
        if roll < 0.5:
            request_create(
                requester=rng.choice(world["requesters"]),
                request_type=rng.choice(world["types"]),
                title="soak",
            )
            tally["submitted"] += 1
            return
        waiting = list(
            ApprovalRequest.objects.filter(state="in_review").order_by("?").values_list("pk", flat=True)[:1]
        )
        if not waiting:
            return
        handoff = Handoff.objects.filter(object_id=str(waiting[0]), closed_at__isnull=True).first()
        if handoff is None or handoff.assignee is None:
            return
        if roll < 0.8:
            request_act(request_id=waiting[0], action="approve", actor=handoff.assignee)
            tally["approved"] += 1
        else:
            others = [a for a in world["approvers"] if a.pk != handoff.assignee_id]
            handoff_reassign(
                handoff_id=handoff.pk, actor=world["boss"], to_user=rng.choice(others), reason="soak"
            )
            tally["reassigned"] += 1
    except errors.WorkflowError as exc:  # a timer (or the other action) got there first
        tally[f"refused: {type(exc).__name__}"] += 1


def _settle(seconds: float) -> None:
    from workflows.models import OutboxEvent

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not OutboxEvent.objects.exclude(status=OutboxEvent.Status.DELIVERED).exists():
            return
        time.sleep(1)


def _checks(tally: Counter[str]) -> dict[str, Any]:
    from django.db.models import Count

    from approvals.models import ApprovalRequest, Notification
    from workflows.audit import audit_verify
    from workflows.models import AuditEntry, Handoff, OutboxEvent

    timeouts = AuditEntry.objects.filter(action="time_out").values("object_id").annotate(n=Count("id"))
    escalated = Handoff.objects.filter(escalated_at__isnull=False).count()
    escalation_notices = Notification.objects.filter(kind=Notification.Kind.ESCALATION)
    return {
        "requests": ApprovalRequest.objects.count(),
        "submitted (accepted)": tally["submitted"],
        "approvals recorded": AuditEntry.objects.filter(action="approve").count(),
        "approvals accepted": tally["approved"],
        "reassignments recorded": AuditEntry.objects.filter(action="reassign", actor__isnull=False).count(),
        "reassignments accepted": tally["reassigned"],
        "timed out (automatic rejections)": timeouts.count(),
        "requests timed out twice": sum(1 for t in timeouts if t["n"] > 1),
        "handoffs escalated": escalated,
        "escalation notices": escalation_notices.count(),
        "escalation notices twice for a handoff": escalation_notices.values("event_id", "recipient")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .count(),
        "notifications": Notification.objects.count(),
        "outbox events not delivered": OutboxEvent.objects.exclude(
            status=OutboxEvent.Status.DELIVERED
        ).count(),
        "audit chains verify": audit_verify().ok,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--server-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="baton_bench_soak")
    parser.add_argument("--redis-port", type=int, default=6397)
    parser.add_argument("--seconds", type=float, default=90)
    parser.add_argument("--rate", type=float, default=5, help="load steps per second")
    parser.add_argument("--check", action="store_true", help="exit 1 when a check fails")
    args = parser.parse_args(argv)

    from bench.timers import _recreate

    redis_url = f"redis://127.0.0.1:{args.redis_port}/0"
    _configure(server_url=args.server_url, database=args.database, redis_url=redis_url)
    _recreate(args.server_url, args.database)
    workdir = Path(tempfile.mkdtemp(prefix="baton-soak-"))
    redis = Redis(args.redis_port, workdir)
    redis.start()
    import django

    django.setup()
    world = _world()
    processes = Processes(workdir)
    rng = random.Random(11)
    tally: Counter[str] = Counter()
    try:
        processes.start("worker-1", _worker_argv("w1"))
        processes.start("worker-2", _worker_argv("w2"))
        processes.start(
            "beat",
            [str(BIN / "celery"), "-A", "config", "beat", "-s", str(workdir / "beat"), "--loglevel=INFO"],
        )
        processes.start("relay", [sys.executable, "manage.py", "outbox_relay"])
        time.sleep(5)
        print(f"soak for {args.seconds:.0f} s at {args.rate} steps/s; logs in {workdir}", flush=True)
        started = time.monotonic()
        faults = {"kill worker": args.seconds / 3, "restart redis": args.seconds / 2}
        while (elapsed := time.monotonic() - started) < args.seconds:
            for fault, at in list(faults.items()):
                if elapsed >= at:
                    del faults[fault]
                    print(f"  {elapsed:5.1f} s: {fault}", flush=True)
                    if fault == "kill worker":
                        processes.kill("worker-1")
                        time.sleep(3)
                        processes.start("worker-1", _worker_argv("w1"))
                    else:
                        redis.stop()
                        time.sleep(3)
                        redis.start()
            _load_step(world, rng, tally)
            time.sleep(1 / args.rate)
        print("load done; letting the timers and the relay finish ...", flush=True)
        time.sleep(70)  # the last SLAs (1 minute) run out and are scanned
        _settle(60)
        result = _checks(tally)
    finally:
        processes.stop_all()
        redis.stop()
    refused = {k: v for k, v in tally.items() if k.startswith("refused")}
    print(f"\nrefused by the rules (expected under contention): {refused}")
    for key, value in result.items():
        print(f"  {key:42} {value}")
    ok = (
        result["requests"] == tally["submitted"]
        and result["approvals recorded"] == tally["approved"]
        and result["reassignments recorded"] == tally["reassigned"]
        and result["requests timed out twice"] == 0
        and result["escalation notices twice for a handoff"] == 0
        and result["outbox events not delivered"] == 0
        and result["audit chains verify"]
    )
    print("all checks hold" if ok else "A CHECK FAILED")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
