"""The demo installation's people and policies, for the routing scenario tests.

The people and groups are those of approvals.demo (DEMO_PEOPLE); the request types and
their policies are loaded from approvals/demo_policies/*.yaml through the real loader,
published with every publish-time check, exactly as the demo data does.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.contrib.auth.models import Group
from guardian.shortcuts import assign_perm

from accounts.models import Team, TeamMembership, User
from accounts.roles import REQUESTERS, roles_sync
from approvals.demo import DEMO_PEOPLE, POLICY_DIR
from approvals.models import ApprovalRequest, Decision, RequestType
from approvals.publishing import policy_file_load, policy_file_read, split_policy_file
from approvals.services import request_act, request_create
from tests.factories import publish_policy
from workflows.models import AuditEntry, Handoff
from workflows.services import TransitionResult

PAYLOADS: dict[str, dict[str, Any]] = {
    "expense": {"amount": 500, "currency": "EUR", "purpose": "Taxi to the airport"},
    "access": {"system": "payroll", "level": "read", "justification": "Quarterly salary review."},
    "purchase": {"vendor": "Desk & Co", "amount": 3600, "items": "Six standing desks"},
    "content": {"channel": "blog", "headline": "How we approve", "body": "A short story of how we say yes."},
    "general": {},
    "onboarding": {"employee": "Sam Lee", "starts_on": "2026-12-14", "job_title": "Support engineer"},
    "invoice": {"supplier": "Paper Ltd", "invoice_number": "INV-7", "amount": 420},
}


@dataclass
class PolicyWorld:
    people: dict[str, User]
    types: dict[str, RequestType]

    def __getitem__(self, username: str) -> User:
        return self.people[username]

    def submit(
        self, slug: str, *, requester: str = "rita", title: str = "", **payload: Any
    ) -> ApprovalRequest:
        return request_create(
            requester=self.people[requester],
            request_type=self.types[slug],
            title=title or f"A {slug} request",
            payload={**PAYLOADS[slug], **payload},
        )

    def act(
        self,
        request: ApprovalRequest,
        action: str,
        who: str,
        *,
        comment: str = "",
        on_behalf_of: str | None = None,
        data: dict[str, Any] | None = None,
    ) -> TransitionResult[ApprovalRequest]:
        if action in {"reject", "request_changes"} and not comment:
            comment = f"{who} says {action}"
        return request_act(
            request_id=request.pk,
            action=action,
            actor=self.people[who],
            comment=comment,
            on_behalf_of=self.people[on_behalf_of] if on_behalf_of else None,
            data=data,
        )


def load_demo_world(*, checked: bool = False) -> PolicyWorld:
    """The demo people, rita's manager maria, the operations team, and the five demo policies.

    With `checked`, the policy files go through the real loader and publishing with every
    check (as the demo data does); without, the same documents are published unchecked,
    which is five times faster for the many tests that only need the policies in place.
    """
    roles = roles_sync()
    people: dict[str, User] = {}
    for _role, username, first, last, role_groups, other_groups, staff, superuser in DEMO_PEOPLE:
        user = User.objects.create_user(
            username=username,
            password="pw",
            first_name=first,
            last_name=last,
            email=f"{username}@example.com",
            is_staff=staff,
            is_superuser=superuser,
        )
        user.groups.add(*[roles[g] for g in role_groups])
        user.groups.add(*[Group.objects.get_or_create(name=g)[0] for g in other_groups])
        people[username] = user
    for username in ("rita", "alex", "eddie", "sam"):
        people[username].manager = people["maria"]
        people[username].save(update_fields=["manager"])
    team = Team.objects.create(slug="operations", name="Operations")
    for username, is_manager in (("rita", False), ("alex", False), ("maria", True)):
        TeamMembership.objects.create(team=team, user=people[username], is_manager=is_manager)
    types: dict[str, RequestType] = {}
    for path in sorted(POLICY_DIR.glob("*.yaml")):
        if checked:
            result = policy_file_load(path=path, publish=True, actor=people["admin"])
            assert not result.problems, result.describe()
            assert result.request_type is not None
            request_type = RequestType.objects.get(pk=result.request_type.pk)
        else:
            type_part, document = copy.deepcopy(_demo_file(path))
            request_type = RequestType.objects.create(**type_part)
            publish_policy(request_type=request_type, document=document)
        types[request_type.slug] = request_type
        assign_perm("approvals.submit_requesttype", roles[REQUESTERS], request_type)
    return PolicyWorld(people=people, types=types)


@functools.cache
def _demo_file(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    return split_policy_file(policy_file_read(path))


# --- reading what happened -------------------------------------------------------------------


def holders(request: ApprovalRequest) -> list[tuple[str, str]]:
    """The open handoffs as (stage, holder): a user name, or 'group <name>'."""
    found = []
    for handoff in Handoff.objects.for_instance(request).open().select_related("assignee", "candidate_group"):
        holder = handoff.assignee.username if handoff.assignee else f"group {handoff.candidate_group.name}"  # type: ignore[union-attr]
        found.append((handoff.stage, holder))
    return sorted(found)


def decisions(request: ApprovalRequest) -> list[tuple[int, str, str, str, str, str]]:
    """Every decision as (revision, stage, outcome, principal, actor, comment), in order."""
    return [
        (d.revision, d.stage_name, d.outcome, d.principal.username, d.actor.username, d.comment)
        for d in Decision.objects.filter(request=request).select_related("principal", "actor").order_by("id")
    ]


def trail(request: ApprovalRequest) -> list[AuditEntry]:
    return list(AuditEntry.objects.for_instance(request).order_by("seq"))


def last_entry(request: ApprovalRequest) -> AuditEntry:
    return AuditEntry.objects.for_instance(request).order_by("-seq").first()  # type: ignore[return-value]


def snapshot(request: ApprovalRequest) -> tuple[Any, ...]:
    """Everything a refused action must leave as it was."""
    request.refresh_from_db()
    return (
        request.state,
        request.version,
        request.stage_index,
        list(request.stage_slots),
        request.revision,
        request.payload,
        AuditEntry.objects.for_instance(request).count(),
        Decision.objects.filter(request=request).count(),
        holders(request),
    )
