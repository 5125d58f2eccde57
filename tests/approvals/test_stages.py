"""Who fills a stage at run time, the escalation stand-in, and the simulated route."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from accounts.models import Team, TeamMembership
from accounts.roles import APPROVERS, MANAGERS, REQUESTERS
from approvals.models import ApprovalRequest
from approvals.publishing import policy_simulate
from approvals.route import escalation_slots, stage_slots, users_who_may_decide
from approvals.routing import Stage, policy_parse
from tests.factories import GroupFactory, UserFactory
from workflows.models import AuditEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    """rita asks; maria manages her; finance has fiona, fred, a retired member and someone without the role."""
    finance = GroupFactory.create(name="finance")
    maria = UserFactory.create(username="maria", roles=[MANAGERS])
    rita = UserFactory.create(
        username="rita", roles=[REQUESTERS, APPROVERS], member_of=[finance], manager=maria
    )
    return {
        "finance": finance,
        "maria": maria,
        "rita": rita,
        "fiona": UserFactory.create(username="fiona", roles=[APPROVERS], member_of=[finance]),
        "fred": UserFactory.create(username="fred", roles=[APPROVERS], member_of=[finance]),
        "gone": UserFactory.create(username="gone", roles=[APPROVERS], member_of=[finance], is_active=False),
        "olaf": UserFactory.create(username="olaf", member_of=[finance]),
        "carl": UserFactory.create(username="carl", roles=[APPROVERS]),
        "ada": UserFactory.create(username="ada", is_superuser=True),
    }


def _stage(**document) -> Stage:
    return policy_parse({"stages": [{"name": "s", **document}]}).stages[0]


def _keys(slots) -> list[str]:
    return [s.key for s in slots]


def test_who_may_decide(people):
    # the approver role's permission, a manager's, a superuser's; not a plain or inactive user
    persons = {name: p for name, p in people.items() if name != "finance"}
    may = users_who_may_decide(p.pk for p in persons.values())
    assert sorted(name for name, p in persons.items() if p.pk in may) == [
        "ada",
        "carl",
        "fiona",
        "fred",
        "maria",
        "rita",
    ]
    # a permission given to the person directly counts too
    permission = Permission.objects.get(codename="decide_approvalrequest")
    people["olaf"].user_permissions.add(permission)
    assert people["olaf"].pk in users_who_may_decide([people["olaf"].pk])
    assert users_who_may_decide([]) == set()


def test_named_users_are_one_slot_each_in_the_documents_order(people):
    stage = _stage(approvers={"users": ["fred", "carl", "gone", "olaf", "nobody"]})
    slots = stage_slots(stage, requester=people["rita"])
    # inactive people, people who may not decide and unknown names fill no slot
    assert _keys(slots) == [f"user:{people['fred'].pk}", f"user:{people['carl'].pk}"]
    assert [s.label for s in slots] == [str(people["fred"]), str(people["carl"])]


def test_a_group_is_one_slot_for_any_and_all(people):
    for rule in ("any", "all"):
        slots = stage_slots(_stage(approvers={"groups": ["finance"]}, rule=rule), requester=people["rita"])
        assert _keys(slots) == [f"group:{people['finance'].pk}"]
        assert slots[0].label == "group finance"


def test_a_quorum_opens_groups_into_the_people_who_may_decide_never_the_requester(people):
    stage = _stage(approvers={"groups": ["finance"], "users": ["fred", "carl"]}, rule="quorum", quorum=2)
    slots = stage_slots(stage, requester=people["rita"])
    # fred is named and a member: one slot; rita (requester), gone (inactive) and olaf (no role) are out
    assert _keys(slots) == [f"user:{people[n].pk}" for n in ("fred", "carl", "fiona")]


def test_the_requester_is_never_a_slot(people):
    stage = _stage(approvers={"users": ["rita", "carl"]})
    assert _keys(stage_slots(stage, requester=people["rita"])) == [f"user:{people['carl'].pk}"]


def test_the_requesters_manager_and_team_managers(people):
    # given rita in a team managed by carl (and by herself, which never counts)
    team = Team.objects.create(slug="ops", name="Ops")
    TeamMembership.objects.create(team=team, user=people["rita"], is_manager=True)
    TeamMembership.objects.create(team=team, user=people["carl"], is_manager=True)
    TeamMembership.objects.create(team=team, user=people["fred"])
    stage = _stage(approvers={"requester_manager": True, "team_manager": True}, rule="all")
    # then her manager and her team's other manager fill a slot each
    assert _keys(stage_slots(stage, requester=people["rita"])) == [
        f"user:{people['maria'].pk}",
        f"user:{people['carl'].pk}",
    ]
    # fred's team manager is rita and carl; he has no line manager
    assert _keys(stage_slots(stage, requester=people["fred"])) == [
        f"user:{people['carl'].pk}",
        f"user:{people['rita'].pk}",
    ]
    # and someone without a manager or a team has nobody
    assert stage_slots(stage, requester=people["ada"]) == []


def test_an_inactive_manager_fills_no_slot(people):
    people["maria"].is_active = False
    people["maria"].save()
    assert stage_slots(_stage(approvers={"requester_manager": True}), requester=people["rita"]) == []


def test_the_escalation_stand_in(people):
    group = _stage(approvers={"users": ["carl"]}, escalate_to={"group": "finance"})
    user = _stage(approvers={"users": ["carl"]}, escalate_to={"user": "fred"})
    own = _stage(approvers={"users": ["carl"]}, escalate_to={"user": "rita"})
    # (marked as a stand-in, who decides the stage alone)
    assert _keys(escalation_slots(group, requester=people["rita"])) == [
        f"stand-in:group:{people['finance'].pk}"
    ]
    assert _keys(escalation_slots(user, requester=people["rita"])) == [f"stand-in:user:{people['fred'].pk}"]
    # the requester never stands in for their own request; no target, no stand-in
    assert escalation_slots(own, requester=people["rita"]) == []
    assert escalation_slots(_stage(approvers={"users": ["carl"]}), requester=people["rita"]) == []


def test_the_simulated_route_shows_stages_approvers_and_skips(people):
    # given a three-stage policy
    policy = policy_parse(
        {
            "stages": [
                {"name": "manager", "approvers": {"requester_manager": True}},
                {
                    "name": "finance",
                    "approvers": {"groups": ["finance"]},
                    "when": {"field": "amount", "op": "gt", "value": 1000},
                },
                {
                    "name": "cfo",
                    "approvers": {"users": ["carl"]},
                    "when": {"field": "amount", "op": "gt", "value": 10000},
                },
            ]
        }
    )
    # when a claim of 4,200 by rita is simulated
    route = policy_simulate(policy=policy, payload={"amount": 4200}, requester=people["rita"])
    # then it shows who each stage goes to and why the CFO is skipped
    assert route.describe() == [
        f"1. manager: {people['maria']}; any one of them",
        "2. finance: group finance; any one of them",
        "3. cfo: skipped (amount is 4200, so amount > 10000 is false)",
    ]
    assert [(s.stage.name, s.applies) for s in route.steps] == [
        ("manager", True),
        ("finance", True),
        ("cfo", False),
    ]


def test_the_simulated_route_says_when_nobody_could_approve(people):
    policy = policy_parse(
        {
            "stages": [
                {
                    "name": "manager",
                    "approvers": {"requester_manager": True},
                    "escalate_to": {"user": "carl"},
                },
                {"name": "board", "approvers": {"users": ["fred"]}, "rule": "quorum", "quorum": 2},
            ]
        }
    )
    # ada has no manager: the manager stage goes to carl; the board can never reach 2
    route = policy_simulate(policy=policy, payload={}, requester=people["ada"])
    assert route.describe() == [
        f"1. manager: {people['carl']}; any one of them — not enough approvers; handed to carl",
        "2. board: nobody; 2 of them — nobody could approve this stage: submitting would be refused",
    ]


def test_simulating_writes_nothing(people):
    policy = policy_parse({"stages": [{"name": "s", "approvers": {"groups": ["finance"]}}]})
    policy_simulate(policy=policy, payload={}, requester=people["rita"])
    assert ApprovalRequest.objects.count() == 0
    assert AuditEntry.objects.count() == 0
