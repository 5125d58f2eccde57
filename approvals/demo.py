"""Demo data for the embedded mode: one login per role, teams, request types with their
policies (loaded from approvals/demo_policies/*.yaml, as a team would keep them in git),
a few requests, and an out-of-office (Maria's expense claims delegated to Alex).

Idempotent: running it again updates what exists and creates nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from accounts.models import Delegation, Team, TeamMembership, User
from accounts.roles import APPROVERS, AUDITORS, MANAGERS, REQUESTERS, roles_sync
from approvals.delegations import delegation_create
from approvals.models import ApprovalRequest, RequestType
from approvals.publishing import policy_file_load
from approvals.services import request_act, request_create

DEMO_PASSWORD = "baton-demo"  # noqa: S105  (embedded demo only; printed on start)
POLICY_DIR = Path(__file__).resolve().parent / "demo_policies"


@dataclass(frozen=True)
class DemoLogin:
    role: str
    username: str
    password: str


# role shown on start, username, first, last, role groups, other groups, staff, superuser
DEMO_PEOPLE = [
    ("requester", "rita", "Rita", "Requester", [REQUESTERS], [], False, False),
    ("approver", "alex", "Alex", "Approver", [REQUESTERS, APPROVERS], ["editors"], False, False),
    ("manager", "maria", "Maria", "Manager", [REQUESTERS, MANAGERS], [], False, False),
    ("auditor", "audrey", "Audrey", "Auditor", [AUDITORS], [], False, False),
    ("admin", "admin", "Ada", "Admin", [REQUESTERS], [], True, True),
    ("finance approver", "fiona", "Fiona", "Finance", [REQUESTERS, APPROVERS], ["finance"], False, False),
    ("CFO", "carl", "Carl", "Chief-Financial", [REQUESTERS, APPROVERS], [], False, False),
    ("system owner", "owen", "Owen", "Owner", [REQUESTERS, APPROVERS], [], False, False),
    ("security", "sam", "Sam", "Security", [REQUESTERS, APPROVERS], ["security"], False, False),
    ("procurement", "pat", "Pat", "Procurement", [REQUESTERS, APPROVERS], ["procurement"], False, False),
    ("procurement", "quinn", "Quinn", "Procurement", [REQUESTERS, APPROVERS], ["procurement"], False, False),
    ("procurement", "rosa", "Rosa", "Procurement", [REQUESTERS, APPROVERS], ["procurement"], False, False),
    ("editor", "eddie", "Eddie", "Editor", [REQUESTERS, APPROVERS], ["editors"], False, False),
    ("legal", "lena", "Lena", "Legal", [REQUESTERS, APPROVERS], ["legal"], False, False),
    ("finance (pays)", "felix", "Felix", "Finance", [REQUESTERS, APPROVERS], ["finance"], False, False),
    ("IT (tasks)", "ivan", "Ivan", "IT", [REQUESTERS], ["it"], False, False),
    ("facilities (tasks)", "faye", "Faye", "Facilities", [REQUESTERS], ["facilities"], False, False),
    ("HR (tasks)", "hana", "Hana", "HR", [REQUESTERS], ["hr"], False, False),
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
    for role, username, first, last, role_groups, other_groups, staff, superuser in DEMO_PEOPLE:
        user = _person(username, first, last, staff, superuser)
        user.groups.add(*[roles[g] for g in role_groups])
        user.groups.add(*[Group.objects.get_or_create(name=g)[0] for g in other_groups])
        people[username] = user
        logins.append(DemoLogin(role=role, username=username, password=DEMO_PASSWORD))

    for username in ("rita", "alex", "eddie", "sam"):
        people[username].manager = people["maria"]
        people[username].save(update_fields=["manager"])
    team, _ = Team.objects.get_or_create(slug="operations", defaults={"name": "Operations"})
    for username, is_manager in (("rita", False), ("alex", False), ("maria", True)):
        TeamMembership.objects.update_or_create(
            team=team, user=people[username], defaults={"is_manager": is_manager}
        )

    for path in sorted(POLICY_DIR.glob("*.yaml")):
        result = policy_file_load(path=path, publish=True, actor=people["admin"])
        if result.problems:
            raise RuntimeError(result.describe())
    for request_type in RequestType.objects.filter(slug__in=[p.stem for p in POLICY_DIR.glob("*.yaml")]):
        assign_perm("approvals.submit_requesttype", roles[REQUESTERS], request_type)

    if not ApprovalRequest.objects.filter(requester=people["rita"]).exists():
        _demo_requests(people)
    _demo_delegation(people)
    return logins


def _demo_delegation(people: dict[str, User]) -> None:
    """Maria is out for two weeks: Alex stands in for her on expense claims (so his
    Delegations page lists Rita's claims "for Maria"). Made again once it has ended."""
    maria, alex = people["maria"], people["alex"]
    if Delegation.objects.open().filter(delegator=maria, delegate=alex).exists():
        return
    now = timezone.now()
    delegation_create(
        actor=maria,
        delegator=maria,
        delegate=alex,
        starts_at=now - timedelta(hours=1),
        ends_at=now + timedelta(days=14),
        scope=["expense"],
        reason="Out of office: conference",
    )


def _demo_requests(people: dict[str, User]) -> None:
    rita, maria = people["rita"], people["maria"]
    types = {t.slug: t for t in RequestType.objects.all()}
    request_create(
        requester=rita,
        request_type=types["general"],
        title="Laptop for the new hire",
        description="A 14-inch laptop for Sam, who starts on Monday.",
        payload={"needed_by": "2026-12-07"},
    )
    offsite = request_create(
        requester=rita,
        request_type=types["expense"],
        title="Team offsite",
        description="Two days, twelve people.",
        payload={"amount": 4200, "currency": "EUR", "purpose": "Team offsite in Lisbon"},
    )
    # The manager has approved; it now waits for finance (above 1,000).
    request_act(request_id=offsite.pk, action="approve", actor=maria, comment="Good value.")
    request_create(
        requester=rita,
        request_type=types["expense"],
        title="Taxi to the airport",
        payload={"amount": 48.5, "currency": "EUR", "purpose": "Client visit"},
    )
    request_create(
        requester=rita,
        request_type=types["access"],
        title="Payroll read access",
        payload={
            "system": "payroll",
            "level": "read",
            "justification": "Quarterly salary review for my team.",
        },
    )
    request_create(
        requester=rita,
        request_type=types["purchase"],
        title="Standing desks",
        payload={"vendor": "Desk & Co", "amount": 3600, "items": "Six standing desks"},
    )
    hire = request_create(
        requester=rita,
        request_type=types["onboarding"],
        title="Onboarding: Sam Lee",
        payload={"employee": "Sam Lee", "starts_on": "2026-12-14", "job_title": "Support engineer"},
    )
    # The hiring manager said yes: IT, facilities and HR now each have their part to do.
    request_act(request_id=hire.pk, action="approve", actor=maria, comment="Welcome aboard.")
    request_create(
        requester=rita,
        request_type=types["content"],
        title="Blog: our approval process",
        payload={"channel": "blog", "headline": "How we approve", "body": "A short story of how we say yes."},
        submit=False,
    )
