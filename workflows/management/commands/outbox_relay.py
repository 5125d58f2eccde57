"""manage.py outbox_relay: deliver outbox events that the after-commit push could not.

Run one or more beside the web tier in production (they share work with SKIP LOCKED).
"""

from __future__ import annotations

import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from workflows.outbox import outbox_relay_drain, outbox_retry_dead


class Command(BaseCommand):
    help = "Deliver pending outbox events, retrying with backoff; --once for a single pass."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Drain what is due, then exit.")
        parser.add_argument("--interval", type=float, default=settings.OUTBOX_RELAY_INTERVAL)
        parser.add_argument(
            "--retry-dead", action="store_true", help="Put dead-letter events back in the queue first."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["retry_dead"]:
            count = outbox_retry_dead()
            self.stdout.write(f"{count} dead event(s) queued again")
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        while True:
            result = outbox_relay_drain()
            if result.delivered or result.retried or result.dead:
                self.stdout.write(
                    f"delivered {result.delivered}, retrying {result.retried}, dead {result.dead}"
                )
            if options["once"] or stopping:
                return
            time.sleep(options["interval"])
            if stopping:
                return
