"""A known audit trail for the auditors' tests: every kind of action, with known counts.

Built on the page tests' `World` (one person per role, the 'general' type reviewed by
the group 'reviewers'); adds a second reviewer, a delegation, a second type reviewed by
'finance', and these requests, in this order:

    REQ a  'Desk'      approved by alex ("Looks right")
    REQ b  'Laptop'    asked for changes by alex ("Add a quote"), resubmitted with a new
                       title 'Laptop with quote', approved by bea on behalf of alex
    REQ c  'Chair'     cancelled by maria ("No budget")
    REQ d  'Monitor'   claimed by alex, reassigned by maria to bea ("Alex is away")
    REQ e  'Lamp'      moved by the system to the type's second policy version
    REQ f  'Invoice'   of type 'finance', waiting in review
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from django.utils import timezone

from accounts.models import Delegation, User
from approvals.models import ApprovalRequest, RequestType
from approvals.publishing import policy_move_apply
from approvals.services import request_act
from tests.approvals.conftest import World
from tests.factories import RequestTypeFactory, UserFactory, make_request, publish_policy
from workflows.models import Handoff
from workflows.services import handoff_claim, handoff_reassign


@dataclass
class AuditWorld:
    world: World
    requests: dict[str, ApprovalRequest] = field(default_factory=dict)
    finance: RequestType | None = None
    bea: User | None = None

    def req(self, key: str) -> ApprovalRequest:
        found = self.requests[key]
        found.refresh_from_db()
        return found


def audit_world_build(world: World) -> AuditWorld:
    built = AuditWorld(world=world)
    reviewers = world.request_type._approver_group  # type: ignore[attr-defined]
    bea = UserFactory.create(username="bea", first_name="Bea", last_name="", member_of=[reviewers])
    bea.groups.add(*world.user("approver").groups.all())
    built.bea = bea
    alex, maria, rita = world.user("approver"), world.user("manager"), world.user("requester")
    Delegation.objects.create(
        delegator=alex, delegate=bea, starts_at=timezone.now() - timedelta(minutes=1), reason="holiday"
    )

    def new(key: str, title: str, request_type: RequestType | None = None) -> ApprovalRequest:
        built.requests[key] = make_request(
            requester=rita, request_type=request_type or world.request_type, title=title
        )
        return built.requests[key]

    a = new("a", "Desk")
    request_act(request_id=a.pk, action="approve", actor=alex, comment="Looks right")

    b = new("b", "Laptop")
    request_act(request_id=b.pk, action="request_changes", actor=alex, comment="Add a quote")
    request_act(request_id=b.pk, action="resubmit", actor=rita, data={"title": "Laptop with quote"})
    request_act(request_id=b.pk, action="approve", actor=bea, on_behalf_of=alex, comment="For Alex")

    c = new("c", "Chair")
    request_act(request_id=c.pk, action="cancel", actor=maria, comment="No budget")

    d = new("d", "Monitor")
    handoff = Handoff.objects.for_instance(d).open().get()
    handoff_claim(handoff_id=handoff.pk, actor=alex)
    handoff_reassign(handoff_id=handoff.pk, actor=maria, to_user=bea, reason="Alex is away")

    e = new("e", "Lamp")
    second = publish_policy(
        request_type=world.request_type,
        document={"stages": [{"name": "check", "approvers": {"groups": [reviewers.name]}, "rule": "any"}]},
    )
    # Every request of the type still in flight moves: d (reassigned) and e.
    policy_move_apply(request_type=world.request_type, to_version=second)

    fiona_group = world.user("other_approver").groups.get(name="finance")
    built.finance = RequestTypeFactory.create(slug="finance", name="Finance", approver_group=fiona_group)
    new("f", "Invoice", built.finance)
    assert e.pk  # made before the move
    return built


# What the trail holds, by kind (entries of requests only):
#   a: create, submit, approve                           3
#   b: create, submit, request_changes, resubmit, approve 5
#   c: create, submit, cancel                            3
#   d: create, submit, claim, reassign, move_policy      5
#   e: create, submit, move_policy                       3
#   f: create, submit                                    2
REQUEST_ENTRIES = 21
