"""manage.py audit_verify: walk every audit chain and name the first entry that does not match."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows.audit import audit_verify


class Command(BaseCommand):
    help = "Verify the hash chains of the audit trail; exit 1 naming the first broken entry."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=2000)

    def handle(self, *args: Any, **options: Any) -> None:
        report = audit_verify(batch_size=options["batch_size"])
        if report.ok:
            self.stdout.write(
                self.style.SUCCESS(
                    f"OK: {report.entries} entries in {report.chains} chains verified; every chain is intact."
                )
            )
            return
        for brk in report.breaks:
            self.stderr.write(f"BROKEN {brk}")
        raise CommandError(
            f"audit trail broken: first mismatch at {report.first_break} "
            f"({len(report.breaks)} problem(s) in {report.chains} chains, {report.entries} entries checked)"
        )
