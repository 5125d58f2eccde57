"""`manage.py policy_load PATH... [--publish] [--actor USERNAME]`: load policy files kept in git."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.publishing import person_find, policy_file_load, policy_file_paths
from workflows import errors


class Command(BaseCommand):
    help = (
        "Load approval policies from YAML or JSON files (directories: every *.yaml, *.yml, *.json). "
        "Each file makes or updates its request type and adds a draft when its policy changed; "
        "--publish publishes it. Loading the same files again changes nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", metavar="PATH", help="policy files or directories")
        parser.add_argument("--publish", action="store_true", help="publish each loaded version")
        parser.add_argument("--actor", metavar="USERNAME", help="recorded as creator and publisher")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            actor = person_find(username=options["actor"]) if options["actor"] else None
        except errors.WorkflowError as exc:
            raise CommandError(exc.detail) from None
        paths, problems = policy_file_paths(options["paths"])
        for path in paths:
            result = policy_file_load(path=path, publish=options["publish"], actor=actor)
            if result.problems:
                # One line per problem, so each can be found and fixed on its own.
                problems.extend(f"{result.path}: {problem}" for problem in result.problems)
            else:
                self.stdout.write(result.describe())
        if problems:
            for line in problems:
                self.stderr.write(line)
            raise CommandError(f"{len(problems)} problem(s); the files with problems were not loaded.")
