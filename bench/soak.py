"""bench/soak: Baton under faults — two WSGI and two ASGI web processes, two Celery
workers, beat and the outbox relay, on PostgreSQL and a Redis of its own, under a steady
mixed load, while a worker is SIGKILLed, Redis is restarted and a web process is stopped
and started. Afterwards it counts what must hold and prints it.

    .venv/bin/python -m bench.soak --seconds 90 --database baton_bench_soak --redis-port 6397

What runs, as subprocesses: two gunicorn (WSGI) and two uvicorn (ASGI) web processes,
two Celery workers, Celery beat (the timers scan every 2 s, so SLAs of one minute run out
during the soak) and one outbox relay. The load: submissions and approvals over HTTP, in
turn to each web process, as logged-in people (forms with their CSRF tokens), and
reassignments by a manager through the service, at a steady pace; of two request types
(one whose stage is rejected automatically after 1 minute, one whose manager is told).
An HTTP action counts as accepted when the server answered it with its redirect.

Faults: at a third of the time worker 1 is SIGKILLed (and started again 3 s later); at
half the time Redis is stopped for 3 s and started again; at two thirds the first WSGI
process is stopped (SIGTERM) and started again 3 s later.

Mail goes by SMTP to a local receiver (bench.receivers, in this process), and a webhook
subscription of the manager's to every event type posts to a local HTTP receiver that
verifies each signature with the `standardwebhooks` package.

Afterwards (once the relay and the workers are idle): every accepted action is in the
database once, every audit chain verifies, every outbox event is delivered, each
notification exists once per event and person (a constraint; the count is printed), no
request timed out twice and no handoff escalated twice; every mail the database says was
sent arrived (by Message-ID), every webhook delivery it says succeeded arrived (by
webhook-id), none missing; copies sent again after a crash are printed (bench/soak_checks.py).
"""

from __future__ import annotations

import argparse
import os
import random
import re
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

from bench.receivers import SmtpReceiver, WebhookCounter  # noqa: E402  (after the path is set)
from bench.soak_checks import database_checks, failures, receiver_checks, settle  # noqa: E402


def _configure(*, server_url: str, database: str, redis_url: str, smtp_port: int) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.embedded"
    os.environ["DATABASE_URL"] = f"{server_url.rstrip('/')}/{database}"
    os.environ["REDIS_URL"] = redis_url
    os.environ["CELERY_BROKER_URL"] = redis_url
    os.environ["DEBUG"] = "0"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["OUTBOX_RELAY_IN_ASGI"] = "0"
    os.environ["TIMERS_SCAN_SECONDS"] = "2"
    os.environ["CELERY_VISIBILITY_TIMEOUT"] = "600"
    os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.smtp.EmailBackend"
    os.environ["EMAIL_HOST"] = "127.0.0.1"
    os.environ["EMAIL_PORT"] = str(smtp_port)
    # Retries and the sweeps for tasks lost with Redis's restart (it keeps no data) run
    # within the soak's settling time.
    os.environ["MAIL_RETRY_SCHEDULE"] = os.environ["WEBHOOK_RETRY_SCHEDULE"] = "1,2,5,10"
    os.environ["MAIL_RESUME_AFTER"] = os.environ["WEBHOOK_RESUME_AFTER"] = os.environ[
        "NOTIFY_RESUME_AFTER"
    ] = "10"
    os.environ["RESUME_SWEEP_SECONDS"] = "5"


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

    def stop(self, name: str) -> None:
        process = self.running.pop(name)
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)

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


PASSWORD = "soak-password-1"  # nosec B105 - a throwaway soak database's test users


class Web:
    """A logged-in browser session per person, on each of the web processes in turn."""

    def __init__(self, ports: list[int]) -> None:
        import requests

        self.ports = ports
        self.sessions: dict[tuple[str, int], requests.Session] = {}
        self.turn = 0

    def _session(self, username: str, port: int) -> Any:
        import requests

        key = (username, port)
        if key not in self.sessions:
            session = requests.Session()
            base = f"http://127.0.0.1:{port}"
            page = session.get(f"{base}/login/", timeout=10)
            session.post(
                f"{base}/login/",
                data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": _csrf(page.text)},
                headers={"Referer": f"{base}/login/"},
                timeout=10,
                allow_redirects=False,
            )
            self.sessions[key] = session
        return self.sessions[key]

    def post(self, username: str, path: str, data: dict[str, Any]) -> int:
        """POST a form as `username` to the next web process: 302 when it answered with the
        request's page (accepted), else its status (0: unreachable, 1: sent elsewhere)."""
        import requests

        port = self.ports[self.turn % len(self.ports)]
        self.turn += 1
        base = f"http://127.0.0.1:{port}"
        try:
            session = self._session(username, port)
            form = session.get(f"{base}{path}", timeout=10) if path.startswith("/requests/new/") else None
            token = _csrf(form.text) if form is not None else session.cookies.get("csrftoken", "")
            response = session.post(
                f"{base}{path}",
                data={**data, "csrfmiddlewaretoken": token},
                headers={"Referer": f"{base}{path}"},
                timeout=15,
                allow_redirects=False,
            )
        except requests.RequestException:
            self.sessions.pop((username, port), None)
            return 0
        if response.status_code == 302 and not re.search(
            r"/requests/\d+/$", response.headers.get("Location", "")
        ):
            self.sessions.pop((username, port), None)  # e.g. back to the login page
            return 1
        return response.status_code


def _csrf(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    return found.group(1) if found else ""


def _wsgi_argv(port: int) -> list[str]:
    return [str(BIN / "gunicorn"), "config.wsgi:application", "-w", "1", "-b", f"127.0.0.1:{port}",
            "--log-level", "warning"]  # fmt: skip


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
        person = User.objects.create_user(
            username=f"soak-a{i}", email=f"a{i}@example.com", manager=boss, password=PASSWORD
        )
        person.groups.add(roles[APPROVERS])
        approvers.append(person)
    requesters = []
    for i in range(4):
        person = User.objects.create_user(username=f"soak-r{i}", email=f"r{i}@example.com", password=PASSWORD)
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


def _subscribe(owner: Any, hooks: WebhookCounter) -> None:
    """The manager (who sees every request) subscribes to every event type."""
    from workflows.models import WebhookEventType
    from workflows.webhooks.services import webhook_subscription_create

    made = webhook_subscription_create(
        owner=owner, target_url=hooks.url, event_types=list(WebhookEventType.values)
    )
    hooks.secrets.append(made.secret)


def _load_step(world: dict[str, Any], web: Web, rng: random.Random, tally: Counter[str]) -> None:
    from approvals.models import ApprovalRequest
    from workflows import errors
    from workflows.models import Handoff
    from workflows.services import handoff_reassign

    roll = rng.random()
    if roll < 0.5:
        kind = rng.choice(world["types"])
        status = web.post(
            rng.choice(world["requesters"]).username, f"/requests/new/{kind.slug}/", {"title": "soak"}
        )
        tally["submitted" if status == 302 else f"submit answered {status}"] += 1
        return
    waiting = list(
        ApprovalRequest.objects.filter(state="in_review").order_by("?").values_list("pk", "version")[:1]
    )
    if not waiting:
        return
    pk, version = waiting[0]
    handoff = (
        Handoff.objects.filter(object_id=str(pk), closed_at__isnull=True).select_related("assignee").first()
    )
    if handoff is None or handoff.assignee is None:
        return
    if roll < 0.8:
        status = web.post(
            handoff.assignee.username, f"/requests/{pk}/act/", {"action": "approve", "version": version}
        )
        tally["approved" if status == 302 else f"approve answered {status}"] += 1
        return
    others = [a for a in world["approvers"] if a.pk != handoff.assignee_id]
    try:
        handoff_reassign(
            handoff_id=handoff.pk, actor=world["boss"], to_user=rng.choice(others), reason="soak"
        )
        tally["reassigned"] += 1
    except errors.WorkflowError as exc:  # a timer (or a decision) got there first
        tally[f"reassign refused: {type(exc).__name__}"] += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--server-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="baton_bench_soak")
    parser.add_argument("--redis-port", type=int, default=6397)
    parser.add_argument("--seconds", type=float, default=90)
    parser.add_argument("--rate", type=float, default=5, help="load steps per second")
    parser.add_argument("--web-port", type=int, default=18600, help="the first of four ports")
    parser.add_argument("--check", action="store_true", help="exit 1 when a check fails")
    args = parser.parse_args(argv)

    from bench.timers import _recreate

    redis_url = f"redis://127.0.0.1:{args.redis_port}/0"
    smtp, hooks = SmtpReceiver(), WebhookCounter()
    smtp.__enter__()
    hooks.__enter__()
    _configure(server_url=args.server_url, database=args.database, redis_url=redis_url, smtp_port=smtp.port)
    _recreate(args.server_url, args.database)
    workdir = Path(tempfile.mkdtemp(prefix="baton-soak-"))
    redis = Redis(args.redis_port, workdir)
    redis.start()
    import django

    django.setup()
    world = _world()
    _subscribe(world["boss"], hooks)
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
        ports = [args.web_port + i for i in range(4)]
        processes.start("wsgi-1", _wsgi_argv(ports[0]))
        processes.start("wsgi-2", _wsgi_argv(ports[1]))
        for port in ports[2:]:
            processes.start(f"asgi-{port}", [str(BIN / "uvicorn"), "config.asgi:application", "--port", str(port),
                                             "--log-level", "warning"])  # fmt: skip
        time.sleep(8)
        web = Web(ports)
        print(f"soak for {args.seconds:.0f} s at {args.rate} steps/s; logs in {workdir}", flush=True)
        started = time.monotonic()
        faults = {
            "kill worker": args.seconds / 3,
            "restart redis": args.seconds / 2,
            "restart a web process": args.seconds * 2 / 3,
        }
        while (elapsed := time.monotonic() - started) < args.seconds:
            for fault, at in list(faults.items()):
                if elapsed >= at:
                    del faults[fault]
                    print(f"  {elapsed:5.1f} s: {fault}", flush=True)
                    if fault == "kill worker":
                        processes.kill("worker-1")
                        time.sleep(3)
                        processes.start("worker-1", _worker_argv("w1"))
                    elif fault == "restart redis":
                        redis.stop()
                        time.sleep(3)
                        redis.start()
                    else:
                        processes.stop("wsgi-1")
                        time.sleep(3)
                        processes.start("wsgi-1", _wsgi_argv(ports[0]))
            _load_step(world, web, rng, tally)
            time.sleep(1 / args.rate)
        print("load done; letting the timers and the relay finish ...", flush=True)
        time.sleep(70)  # the last SLAs (1 minute) run out and are scanned
        settle(90)
        result = {**database_checks(tally), **receiver_checks(smtp, hooks)}
    finally:
        processes.stop_all()
        redis.stop()
        smtp.__exit__()
        hooks.__exit__()
    other = {k: v for k, v in tally.items() if k not in {"submitted", "approved", "reassigned"}}
    print(f"\nnot accepted (refused by the rules, or a web process down): {other}")
    for key, value in result.items():
        print(f"  {key:54} {value}")
    failed = failures(result, tally)
    ok = not failed
    if failed:
        print(f"failed: {', '.join(failed)}")
    print("all checks hold" if ok else "A CHECK FAILED")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
