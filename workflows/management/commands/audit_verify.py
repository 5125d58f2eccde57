"""manage.py audit_verify: walk every audit chain and name the first entry that does not match;
with --checkpoint FILE, also prove that nothing that checkpoint signed was changed or removed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows import evidence_verifier
from workflows.audit import AuditReport, audit_verify
from workflows.checkpoints import SigningKeyMissing, audit_verify_against


class Command(BaseCommand):
    help = (
        "Verify the hash chains of the audit trail; exit 1 naming the first broken entry. "
        "With --checkpoint FILE (a file written by audit_checkpoint --output, or downloaded), also "
        "check its signature and that every chain it signed is still there, unchanged."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=2000)
        parser.add_argument("--checkpoint", type=Path, help="a kept checkpoint file to verify against")
        parser.add_argument(
            "--public-key",
            type=Path,
            help="the public key (PEM) to check the checkpoint's signature with "
            "(default: the public half of Baton's signing key)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        path: Path | None = options.get("checkpoint")
        if path is None:
            self._report(audit_verify(batch_size=options["batch_size"]), [])
            return
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise CommandError(f"cannot read the checkpoint {path}: {exc}") from None
        public_key: Ed25519PublicKey | None = None
        if options.get("public_key"):
            public_key = evidence_verifier.public_key_load(options["public_key"].read_bytes())
        try:
            check, report = audit_verify_against(
                document, public_key=public_key, batch_size=options["batch_size"]
            )
        except SigningKeyMissing as exc:
            raise CommandError(f"{exc} (or pass --public-key)") from None
        for ref in check.unknown:
            self.stderr.write(f"NOTE the checkpoint names {ref}, whose model is not installed here")
        statement = check.statement
        self._report(
            report,
            check.problems,
            covered=f" against checkpoint of {statement.get('created_at')} "
            f"({statement.get('entries')} entries in {statement.get('chains')} chains)",
        )

    def _report(self, report: AuditReport, problems: list[str], covered: str = "") -> None:
        if report.ok and not problems:
            self.stdout.write(
                self.style.SUCCESS(
                    f"OK: {report.entries} entries in {report.chains} chains verified{covered}; "
                    "every chain is intact."
                )
            )
            return
        for problem in problems:
            self.stderr.write(f"CHECKPOINT {problem}")
        for brk in report.breaks:
            self.stderr.write(f"BROKEN {brk}")
        first = problems[0] if problems else str(report.first_break)
        raise CommandError(
            f"audit trail broken: first mismatch at {first} "
            f"({len(report.breaks) + len(problems)} problem(s) in {report.chains} chains, "
            f"{report.entries} entries checked{covered})"
        )
