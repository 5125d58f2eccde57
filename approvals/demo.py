"""Demo data for the embedded mode: one login per role, a team, request types, requests.

Idempotent: running it again updates what exists and creates nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.auth.models import Group
from django.db import transaction
from guardian.shortcuts import assign_perm

from accounts.models import Team, TeamMembership, User
from accounts.roles import APPROVERS, AUDITORS, MANAGERS, REQUESTERS, roles_sync
from approvals.models import ApprovalRequest, RequestType
from approvals.services import request_act, request_create

DEMO_PASSWORD = "baton-demo"  # noqa: S105  (embedded demo only; printed on start)


@dataclass(frozen=True)
class DemoLogin:
    role: str
    username: str
    password: str


DEMO_PEOPLE = [
    # role shown on start, username, first, last, role groups, staff, superuser
    ("requester", "rita", "Rita", "Requester", [REQUESTERS], False, False),
    ("approver", "alex", "Alex", "Approver", [REQUESTERS, APPROVERS], False, False),
    ("manager", "maria", "Maria", "Manager", [REQUESTERS, MANAGERS], False, False),
    ("auditor", "audrey", "Audrey", "Auditor", [AUDITORS], False, False),
    ("admin", "admin", "Ada", "Admin", [REQUESTERS], True, True),
    ("approver (finance)", "fiona", "Fiona", "Finance", [REQUESTERS, APPROVERS], False, False),
]


def _person(username: str, first: str, last: str, staff: bool, superuser: bool) -> User:
    user, _ = User.objects.get_or_create(username=username)
    user.first_name, user.last_name = first, last
    user.email = f"{username}@example.com"
    user.is_staff, user.is_superuser, user.is_active = staff, superuser, True
    # Reset every time, so the logins printed on start always work.
    user.set_password(DEMO_PASSWORD)
    user.save()
    return user


@transaction.atomic
def demo_load() -> list[DemoLogin]:
    roles = roles_sync()
    people: dict[str, User] = {}
    logins = []
    for role, username, first, last, groups, staff, superuser in DEMO_PEOPLE:
        user = _person(username, first, last, staff, superuser)
        user.groups.add(*[roles[g] for g in groups])
        people[username] = user
        logins.append(DemoLogin(role=role, username=username, password=DEMO_PASSWORD))

    finance, _ = Group.objects.get_or_create(name="finance")
    people["fiona"].groups.add(finance)
    for username in ("rita", "alex"):
        people[username].manager = people["maria"]
        people[username].save(update_fields=["manager"])
    team, _ = Team.objects.get_or_create(slug="operations", defaults={"name": "Operations"})
    for username, is_manager in (("rita", False), ("alex", False), ("maria", True)):
        TeamMembership.objects.update_or_create(
            team=team, user=people[username], defaults={"is_manager": is_manager}
        )

    general, _ = RequestType.objects.update_or_create(
        slug="general",
        defaults={
            "name": "General request",
            "description": "Anything that needs a yes from an approver.",
            "approver_group": roles[APPROVERS],
        },
    )
    expense, _ = RequestType.objects.update_or_create(
        slug="expense",
        defaults={
            "name": "Expense claim",
            "description": "Money spent on the company's behalf.",
            "approver_group": finance,
        },
    )
    for request_type in (general, expense):
        assign_perm("approvals.submit_requesttype", roles[REQUESTERS], request_type)

    if not ApprovalRequest.objects.filter(requester=people["rita"]).exists():
        rita, alex = people["rita"], people["alex"]
        request_create(
            requester=rita,
            request_type=general,
            title="Laptop for the new hire",
            description="A 14-inch laptop for Sam, who starts on Monday.",
        )
        offsite = request_create(
            requester=rita,
            request_type=general,
            title="Team offsite budget",
            description="Two days, twelve people.",
        )
        request_act(request_id=offsite.pk, action="approve", actor=alex, comment="Enjoy it.")
        request_create(requester=rita, request_type=expense, title="Conference travel", submit=False)
    return logins
