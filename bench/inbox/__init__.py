"""bench/inbox: the inbox and the team view on a million requests, beside hand-written SQL,
on PostgreSQL.

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
  delegation) for a colleague who holds items of their own. The measured manager has 50
  direct reports (generated users, in 0-4 groups each), who hold open items (claimed ones,
  requests sent back to them), and whose groups' queues the team view shows too.

What is measured, `--repeat` rounds, after a warm-up of each side; the sides run in turn
in every round (each round starting with the next), so the load of the shared machine
falls on all of them alike:

  page       GET /inbox/ for the measured person through Django's test client: the whole
             server side of the page (middleware, session, the selector's queries, the
             navigation counts, the template); its SQL statements counted.
  selector   approvals.selectors.inbox_page alone (its queries and the Python around them).
  raw        the same rows and counts by hand, with psycopg on its own connection: the
             person's groups and delegators, the first page of 50 open handoffs joined to
             their requests, requesters and types in the inbox's order, and the counts.
  team       the same three for GET /team/ as the manager: approvals.selectors.team_page,
             and by hand: the reports, their groups, the counts per member and per group
             (one UNION ALL), the first page of 50 oldest first with the same joins.

Targets (issue 7), for each page: its statement count is the same whatever the page size
(10 or 50 rows here; tests/performance pins it for data sizes), and its p95 server time is
at most 2x the hand-written queries'. Printed: p50/p95 of each, the ratios, the statements,
and whether the hand-written SQL found the same rows, in the same order, and the same counts.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.inbox import data, inbox_side, team_side  # noqa: E402

TARGET_RATIO = 2.0


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
    parser.add_argument("--only", choices=["inbox", "team"], help="measure one page only")
    args = parser.parse_args(argv)

    data.configure(server_url=args.server_url, database=args.database)
    build = args.rebuild or not data.database_exists(args.server_url, args.database)
    if build:
        data.recreate(args.server_url, args.database)
    import django

    django.setup()
    if build:
        print(f"making the data set in {args.database} ...", flush=True)
        started = time.perf_counter()
        took = data.build(requests=args.requests, users=args.users, groups=args.groups)
        total = time.perf_counter() - started
        print("  " + ", ".join(f"{k} {v:.1f}s" for k, v in took.items()) + f"; total {total:.0f}s")
    else:
        print(f"using the data set in {args.database} (--rebuild to make it again)")
        from django.core.management import call_command

        call_command("migrate", verbosity=0)  # indexes added since the data set was made
        data.team_build()
    print("  " + ", ".join(f"{k} {v:,}" for k, v in data.sizes().items()))

    from django.conf import settings

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    figures = []
    for name, side in (("inbox", inbox_side), ("team", team_side)):
        if args.only in (None, name):
            figures.append(side.measure(repeat=args.repeat))
            figures[-1].print(repeat=args.repeat, target=TARGET_RATIO)
            sys.stdout.flush()
    ok = all(f.ok(TARGET_RATIO) for f in figures)
    return 0 if ok or not args.check else 1
