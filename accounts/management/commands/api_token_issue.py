"""Issue an API token for a person or service account; the secret is printed once."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.models import User
from accounts.tokens import TokenInputError, api_token_create


class Command(BaseCommand):
    help = "Issue an API token (e.g. for a service account). The secret is printed once, never stored."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", required=True)
        parser.add_argument("--days", type=int, default=None, help="Expires after this many days.")
        parser.add_argument("--read-only", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        owner = User.objects.filter(username=options["username"]).first()
        if owner is None:
            raise CommandError(f"No user '{options['username']}'.")
        days = options["days"]
        try:
            issued = api_token_create(
                owner=owner,
                name=options["name"],
                expires_at=timezone.now() + timedelta(days=days) if days else None,
                read_only=options["read_only"],
            )
        except TokenInputError as exc:
            raise CommandError(f"{exc.field}: {exc.message}") from None
        self.stdout.write(issued.secret)
