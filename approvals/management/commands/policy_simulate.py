"""`manage.py policy_simulate --type SLUG --requester USERNAME --payload JSON [--version N]`:
the route a request would take, without submitting anything."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from approvals.publishing import (
    person_find,
    policy_simulate,
    policy_version_find,
    request_type_find,
    version_label,
)
from approvals.routing import PolicyError
from approvals.schemas import payload_errors
from workflows import errors


class Command(BaseCommand):
    help = (
        "Show the route a request would take: its stages, who would approve each, and which stages "
        "would be skipped and why. Uses the type's current version unless --version is given."
    )

    def add_base_argument(self, parser: CommandParser, *args: Any, **kwargs: Any) -> None:
        # Django's own --version (its release) would clash with ours (a policy version).
        if "--version" not in args:
            super().add_base_argument(parser, *args, **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--type", required=True, metavar="SLUG", help="the request type")
        parser.add_argument("--requester", required=True, metavar="USERNAME", help="who would submit it")
        parser.add_argument("--payload", default="{}", metavar="JSON", help="the payload, a JSON object")
        parser.add_argument("--version", type=int, metavar="N", help="a version number (default: current)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            payload = json.loads(options["payload"])
        except ValueError as exc:
            raise CommandError(f"--payload is not valid JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise CommandError("--payload must be a JSON object, e.g. '{\"amount\": 1200}'.")
        try:
            request_type = request_type_find(slug=options["type"])
            version = policy_version_find(request_type=request_type, number=options["version"])
            requester = person_find(username=options["requester"])
            route = policy_simulate(policy=version.policy, payload=payload, requester=requester)
        except errors.WorkflowError as exc:
            raise CommandError(exc.detail) from None
        except PolicyError as exc:
            raise CommandError(
                f"{version_label(version)} cannot be read: " + "; ".join(exc.problems)
            ) from None
        self.stdout.write(
            f"{version_label(version)} ({version.get_status_display().lower()}), requested by {requester.username}:"
        )
        for line in route.describe():
            self.stdout.write(f"  {line}")
        # The route is shown anyway: a payload the form would refuse still tells what the policy does.
        for field_name, messages in payload_errors(
            schema=request_type.payload_schema, payload=payload
        ).items():
            for message in messages:
                self.stdout.write(f"note: submitting this payload would be refused: {field_name}: {message}")
