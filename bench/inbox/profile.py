"""Where a page's time goes, in figures that do not depend on the load of the machine:

    .venv/bin/python -m bench.inbox.profile            # both pages
    .venv/bin/python -m bench.inbox.profile team --plans

For each page (on the data set `python -m bench.inbox` made): its statements, each with
PostgreSQL's own execution time (EXPLAIN (ANALYZE, BUFFERS); --plans prints the plans),
then the CPU time of the whole page in this process (the least of three rounds, so a
burst of load from elsewhere does not count), then a cProfile of the page (process time)
with the functions that cost most, cumulatively (--top).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.inbox import data  # noqa: E402

PAGES = {"inbox": ("/inbox/", data.MEASURED), "team": ("/team/", data.MANAGER)}


def statements(client: Any, url: str, *, plans: bool) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    found = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    total = 0.0
    print(f"{len(found)} statements; server execution time of each (EXPLAIN ANALYZE):")
    for sql in found:
        with connection.cursor() as cursor:
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            plan = [row[0] for row in cursor.fetchall()]
        executed = next(line for line in plan if "Execution Time" in line)
        ms = float(re.findall(r"([\d.]+) ms", executed)[0])
        total += ms
        print(f"  {ms:8.2f} ms  {' '.join(sql.split())[:110]}")
        if plans:
            print("\n".join("      " + line for line in plan))
    print(f"  {total:8.2f} ms  in all")


def cpu(client: Any, url: str, *, pages: int) -> None:
    rounds = []
    for _ in range(3):
        started = time.process_time()
        for _ in range(pages):
            client.get(url)
        rounds.append((time.process_time() - started) / pages * 1000)
    print(f"CPU per page in this process: {min(rounds):.2f} ms (least of 3 rounds of {pages})")


def profile(client: Any, url: str, *, pages: int, top: int) -> None:
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for _ in range(pages):
        client.get(url)
    profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(top)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", nargs="?", choices=sorted(PAGES))
    parser.add_argument("--server-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="baton_bench_inbox")
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--plans", action="store_true", help="print each statement's plan")
    args = parser.parse_args(argv)
    data.configure(server_url=args.server_url, database=args.database)
    if not data.database_exists(args.server_url, args.database):
        print("no data set: run `python -m bench.inbox` first")
        return 1
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client

    from accounts.models import User

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    for name, (url, username) in PAGES.items():
        if args.page not in (None, name):
            continue
        print(f"\n== {name} (GET {url})")
        client = Client()
        client.force_login(User.objects.get(username=username))
        for _ in range(10):  # caches, prepared statements
            client.get(url)
        statements(client, url, plans=args.plans)
        cpu(client, url, pages=args.pages)
        profile(client, url, pages=args.pages, top=args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
