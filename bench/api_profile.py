"""bench/api_profile: the CPU of one REST action end to end, in one process, load-independent.

    .venv/bin/python -m bench.api_profile                   # CPU per action, three rounds
    .venv/bin/python -m bench.api_profile --profile out.prof  # and a cProfile of one more round

It drops and re-creates the database `baton_api_profile` (`--database`), seeds one
requester and one approver as bench/transitions does (its `_seed`, side `rest`), gives each
an API token, and calls the WSGI application of `config.wsgi` with the production settings
directly (no HTTP server, no other process): `POST /api/v1/requests/{id}/actions/{name}/`
with a Bearer token, alternately `request_changes` by the approver and `resubmit` by the
requester on `--requests` requests in turn, as bench/api's clients do. Printed per round of
`--actions` actions: this process's CPU per action, the PostgreSQL backend's CPU per action
(from /proc: the server must run on this machine) and the wall time; and the statements of
one request_changes and one resubmit. Each round makes every history longer (about
2 x actions / requests entries): with the defaults the histories stay as short as
bench/api's.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.transitions import (  # noqa: E402
    _configure_environment,
    _create_requests,
    _django_setup,
    _recreate_database,
    _seed,
)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432", help="PostgreSQL server")
    parser.add_argument("--database", default="baton_api_profile", help="dropped and re-created")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15", help="Redis db (cache, layer)")
    parser.add_argument("--requests", type=int, default=100, help="requests acted on in turn")
    parser.add_argument("--actions", type=int, default=200, help="actions per round")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds")
    parser.add_argument("--profile", default="", help="write a cProfile (CPU time) of one more round here")
    return parser.parse_args(argv)


def _backend_cpu_seconds() -> float:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    _configure_environment(
        settings="config.settings.production",
        server_url=args.pg_url,
        database=args.database,
        redis_url=args.redis_url,
    )
    os.environ["SECRET_KEY"] = secrets.token_urlsafe(64)
    os.environ["API_RATE"] = "100000000/min"
    _recreate_database(args.pg_url, args.database)
    _django_setup()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from accounts.models import User
    from accounts.tokens import api_token_create
    from config.wsgi import application

    plan = _seed(workers=1, per_worker=args.requests, sides=("rest",)).plans[0]
    ids = _create_requests(plan)
    tokens = {
        "approver": api_token_create(owner=User.objects.get(pk=plan.approver_id), name="profile").secret,
        "requester": api_token_create(owner=User.objects.get(pk=plan.requester_id), name="profile").secret,
    }
    states = dict.fromkeys(ids, "in_review")
    turn = 0

    def call(pk: int, name: str, who: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": f"/api/v1/requests/{pk}/actions/{name}/",
            "QUERY_STRING": "",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "REMOTE_ADDR": "127.0.0.1",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(data),
            "wsgi.errors": sys.stderr,
            "CONTENT_LENGTH": str(len(data)),
            "CONTENT_TYPE": "application/json",
            "HTTP_AUTHORIZATION": f"Bearer {tokens[who]}",
            "HTTP_X_FORWARDED_PROTO": "https",  # behind the TLS proxy, as production expects
        }
        status: list[str] = []

        def start_response(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status.append(line)
            return None

        answer = b"".join(application(environ, start_response))
        if not status[0].startswith("200"):
            raise RuntimeError(f"{name} on {pk}: {status[0]} {answer[:300]!r}")
        return dict(json.loads(answer))

    def step() -> None:
        nonlocal turn
        pk = ids[turn % len(ids)]
        turn += 1
        if states[pk] == "in_review":
            states[pk] = call(pk, "request_changes", "approver", {"comment": "Which one?"})["state"]
        else:
            states[pk] = call(pk, "resubmit", "requester", {})["state"]

    for _ in range(len(ids) * 2):  # warm-up: per-process caches, prepared statements
        step()
    for _ in range(2):
        with CaptureQueriesContext(connection) as captured:
            step()
        print(f"statements of one action: {len(captured.captured_queries)}")
    for index in range(args.rounds):
        backend, cpu, wall = _backend_cpu_seconds(), time.process_time(), time.perf_counter()
        for _ in range(args.actions):
            step()
        n = args.actions
        print(
            f"round {index}: {(time.process_time() - cpu) / n * 1000:.2f} ms CPU per action here, "
            f"PostgreSQL backend {(_backend_cpu_seconds() - backend) / n * 1000:.2f} ms, "
            f"wall {(time.perf_counter() - wall) / n * 1000:.2f} ms"
        )
    if args.profile:
        profile = cProfile.Profile(time.process_time)
        profile.enable()
        for _ in range(args.actions):
            step()
        profile.disable()
        profile.dump_stats(args.profile)
        print(f"cProfile of {args.actions} more actions (CPU time): {args.profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
