from typing import Any

from django.core.management.base import BaseCommand

from approvals.demo import demo_load


class Command(BaseCommand):
    help = "Load demo users (one per role), a team, request types and requests. Idempotent."

    def handle(self, *args: Any, **options: Any) -> None:
        logins = demo_load()
        self.stdout.write("Demo logins (user name / password):")
        for login in logins:
            self.stdout.write(f"  {login.role:<20} {login.username:<10} {login.password}")
