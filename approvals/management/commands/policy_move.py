"""`manage.py policy_move --type SLUG --to NUMBER [--apply] [--actor USERNAME]`: move in-flight
requests to another published version; a dry run unless --apply."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.publishing import (
    policy_move_apply,
    policy_move_plan,
    policy_mover,
    policy_version_find,
    request_type_find,
    version_label,
)
from workflows import errors


class Command(BaseCommand):
    help = (
        "Move the in-flight requests of a type to one of its published policy versions. By default a "
        "dry run: which requests would move, to which stage, whose handoffs close and open; nothing "
        "changes. With --apply each request moves in its own audited transition (move_policy)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--type", required=True, metavar="SLUG", help="the request type")
        parser.add_argument("--to", required=True, type=int, metavar="NUMBER", help="the version to move to")
        parser.add_argument("--apply", action="store_true", help="really move them (default: dry run)")
        parser.add_argument(
            "--actor", metavar="USERNAME", help="a superuser recorded as moving them (default: the system)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            actor = policy_mover(username=options["actor"])
            request_type = request_type_find(slug=options["type"])
            version = policy_version_find(request_type=request_type, number=options["to"])
            if options["apply"]:
                rows = policy_move_apply(request_type=request_type, to_version=version, actor=actor)
            else:
                rows = policy_move_plan(request_type=request_type, to_version=version)
        except errors.WorkflowError as exc:
            raise CommandError(exc.detail) from None
        target = version_label(version)
        blocked = [row for row in rows if row.problem]
        if not options["apply"]:
            for row in rows:
                self.stdout.write(row.describe())
            self.stdout.write(
                f"Dry run: {len(rows) - len(blocked)} request(s) would move to {target}"
                + (f", {len(blocked)} cannot move" if blocked else "")
                + ". Nothing changed; run again with --apply to move them."
            )
            return
        for row in rows:
            self.stdout.write(("moved: " if row.moved else "not moved: ") + row.describe())
        moved = sum(1 for row in rows if row.moved)
        self.stdout.write(f"Moved {moved} request(s) to {target}.")
        if blocked:
            raise CommandError(f"{len(blocked)} request(s) could not be moved; see above.")
