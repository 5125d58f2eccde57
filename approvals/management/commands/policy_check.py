"""`manage.py policy_check [PATH...] [--type SLUG]`: the publish-time checks, one line per problem."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.publishing import (
    CheckResult,
    policy_file_check,
    policy_file_paths,
    request_type_find,
    versions_check,
)
from workflows import errors


class Command(BaseCommand):
    help = (
        "Check approval policies before publishing: empty approver sets, unknown people and groups, "
        "conditions on fields the payload schema lacks or of the wrong type, quorums larger than the "
        "approvers, unreachable stages. Without paths: every type's current version and every draft. "
        "With paths: those files. Exits 1 when anything has a problem."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="*", metavar="PATH", help="policy files or directories")
        parser.add_argument("--type", metavar="SLUG", help="only this request type")

    def handle(self, *args: Any, **options: Any) -> None:
        slug = options["type"]
        results: list[CheckResult]
        problems: list[str] = []
        if options["paths"]:
            paths, problems = policy_file_paths(options["paths"])
            results = [policy_file_check(path=path) for path in paths]
            if slug:
                # A file that cannot be read has no slug: keep it, its problem is worth knowing.
                results = [r for r in results if r.slug in {slug, ""}]
        else:
            try:
                request_type = request_type_find(slug=slug) if slug else None
            except errors.WorkflowError as exc:
                raise CommandError(exc.detail) from None
            results = versions_check(request_type=request_type)
        for result in results:
            problems.extend(result.lines())
        if problems:
            for line in problems:
                self.stdout.write(line)
            broken = sum(1 for r in results if r.problems)
            raise CommandError(f"{len(problems)} problem(s) in {broken} of {len(results)} checked.")
        if not results:
            self.stdout.write("OK: nothing to check.")
            return
        self.stdout.write(f"OK: {len(results)} checked, no problems ({', '.join(r.where for r in results)}).")
