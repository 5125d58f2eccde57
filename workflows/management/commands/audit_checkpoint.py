"""manage.py audit_checkpoint: sign the state of every audit chain now (see workflows.checkpoints)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from workflows.checkpoints import (
    CheckpointRefused,
    SigningKeyMissing,
    checkpoint_create,
    checkpoint_file_write,
)


class Command(BaseCommand):
    help = (
        "Record a signed checkpoint of the audit trail (a Merkle root over every chain's head, "
        "Ed25519-signed); with --output also write it, with every chain's head, to a file to keep."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, help="also write the checkpoint (JSON) to this file")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            checkpoint = checkpoint_create()
        except SigningKeyMissing as exc:
            raise CommandError(str(exc)) from None
        except CheckpointRefused as exc:
            for problem in exc.problems:
                self.stderr.write(f"DIFFERS {problem}")
            raise CommandError(
                f"{exc} Nothing was signed: run `manage.py audit_verify --checkpoint FILE` with a kept copy."
            ) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"Checkpoint {checkpoint.pk}: {checkpoint.entries} entries in {checkpoint.chains} chains, "
                f"root {checkpoint.root}, signed by key {checkpoint.key_id} at {checkpoint.created_at:%Y-%m-%d %H:%M:%S}."
            )
        )
        output: Path | None = options.get("output")
        if output is not None:
            checkpoint_file_write(checkpoint, output)
            self.stdout.write(f"Written to {output}: keep it outside Baton.")
