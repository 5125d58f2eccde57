"""The demo policies and every routing rule of the issue, through the real service.

Each scenario submits and decides with approvals.services (the transition service, on the
real database) under the policies of approvals/demo_policies, loaded and published by the
real loader with all its checks.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from accounts.models import Delegation, Team, TeamMembership
from approvals.models import Decision, Notification, RequestRevision
from approvals.notifications import notify_transition
from approvals.services import request_create
from tests.approvals.policy_world import (
    PolicyWorld,
    decisions,
    holders,
    last_entry,
    load_demo_world,
    snapshot,
    trail,
)
from tests.factories import publish_policy
from tests.listening import channel_listen, channel_receive
from tests.mail_support import mail_tasks_run
from workflows import errors
from workflows.audit import audit_verify
from workflows.models import AuditEntry, Handoff, OutboxEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def world() -> PolicyWorld:
    return load_demo_world()


def test_the_demo_policy_files_load_and_publish_with_every_check():
    # given the demo people, when the five demo policy files go through the real loader
    checked = load_demo_world(checked=True)
    # then each type follows its published first version, which reads as the file says
    versions = {slug: t.current_policy for slug, t in checked.types.items()}
    assert sorted(versions) == [
        "access",
        "content",
        "expense",
        "general",
        "invoice",
        "onboarding",
        "purchase",
    ]
    assert all(v is not None and v.is_published and v.number == 1 for v in versions.values())
    assert [s.name for s in versions["expense"].policy.stages] == ["manager", "finance", "cfo"]
    purchase = versions["purchase"].policy.stages[0]
    assert (purchase.rule, purchase.quorum, purchase.veto) == ("quorum", 2, False)
    # and a claim routes through them
    req = checked.submit("expense", amount=4200)
    checked.act(req, "approve", "maria")
    assert checked.act(req, "approve", "fiona").instance.state == "approved"


# --- expense: amount thresholds ----------------------------------------------------------------


def test_expense_of_500_needs_only_the_manager_and_records_why_finance_and_cfo_were_skipped(world):
    # given a claim of 500 by rita, whose manager is maria
    req = world.submit("expense", amount=500)
    # then it waits for maria in the manager stage
    assert (req.state, req.stage_index) == ("in_review", 0)
    assert holders(req) == [("manager", "maria")]
    # when maria approves
    result = world.act(req, "approve", "maria", comment="Fine.")
    # then it is approved, and the audit entry says finance and the CFO were skipped, and why
    assert result.instance.state == "approved"
    assert result.instance.stage_index is None
    assert result.entry.data["route"] == {
        "from": "manager",
        "to": None,
        "skipped": [
            {"stage": "finance", "reason": "amount is 500, so amount > 1000 is false"},
            {"stage": "cfo", "reason": "amount is 500, so amount > 10000 is false"},
        ],
    }
    assert result.entry.data["decision"] == {
        "stage": "manager",
        "outcome": "approve",
        "revision": 1,
        "slot": f"user:{world['maria'].pk}",
        "stage_outcome": "met",
    }
    assert holders(req) == []
    assert decisions(req) == [(1, "manager", "approve", "maria", "maria", "Fine.")]


def test_expense_of_4200_goes_to_the_manager_then_finance(world):
    # given a claim of 4,200
    req = world.submit("expense", amount=4200)
    # when maria approves, then it moves on to the finance group
    moved = world.act(req, "approve", "maria").instance
    assert (moved.state, moved.stage_index) == ("in_review", 1)
    assert holders(req) == [("finance", "group finance")]
    assert last_entry(req).data["route"] == {"from": "manager", "to": "finance"}
    # when fiona of finance approves, then it is approved with the CFO skipped
    result = world.act(req, "approve", "fiona")
    assert result.instance.state == "approved"
    assert result.entry.data["route"]["skipped"] == [
        {"stage": "cfo", "reason": "amount is 4200, so amount > 10000 is false"}
    ]
    assert [(d[1], d[3]) for d in decisions(req)] == [("manager", "maria"), ("finance", "fiona")]


def test_expense_of_20000_goes_to_the_manager_finance_and_the_cfo(world):
    req = world.submit("expense", amount=20000)
    assert world.act(req, "approve", "maria").instance.stage_index == 1
    assert world.act(req, "approve", "fiona").instance.stage_index == 2
    assert holders(req) == [("cfo", "carl")]
    # not approved before the CFO says yes
    req.refresh_from_db()
    assert req.state == "in_review"
    result = world.act(req, "approve", "carl")
    assert result.instance.state == "approved"
    assert [(d[1], d[3]) for d in decisions(req)] == [
        ("manager", "maria"),
        ("finance", "fiona"),
        ("cfo", "carl"),
    ]
    assert [e.action for e in trail(req)] == ["create", "submit", "approve", "approve", "approve"]
    assert not any("skipped" in e.data.get("route", {}) for e in trail(req))


def test_a_reject_in_any_stage_ends_the_expense_claim(world):
    # given a claim of 20,000 that the manager approved
    req = world.submit("expense", amount=20000)
    world.act(req, "approve", "maria")
    # when finance rejects it
    result = world.act(req, "reject", "fiona", comment="No receipt.")
    # then it is rejected, the CFO is never asked and no handoff is left open
    assert result.instance.state == "rejected"
    assert result.entry.data["decision"]["stage_outcome"] == "failed"
    assert holders(req) == []
    assert not Handoff.objects.for_instance(req).filter(stage="cfo").exists()


# --- access: both the system owner and security ---------------------------------------------


def test_access_needs_the_owner_and_security_both(world):
    # given an access request: owen (the owner) and the security group both hold it
    req = world.submit("access")
    assert holders(req) == [("owner-and-security", "group security"), ("owner-and-security", "owen")]
    # when the owner approves alone, then it stays in review, waiting for security only
    alone = world.act(req, "approve", "owen").instance
    assert (alone.state, alone.stage_index) == ("in_review", 0)
    assert last_entry(req).data["decision"]["stage_outcome"] == "pending"
    assert holders(req) == [("owner-and-security", "group security")]
    # when sam of security approves too, then it is approved
    assert world.act(req, "approve", "sam").instance.state == "approved"


def test_access_the_other_order_also_needs_both(world):
    req = world.submit("access")
    assert world.act(req, "approve", "sam").instance.state == "in_review"
    assert holders(req) == [("owner-and-security", "owen")]
    assert world.act(req, "approve", "owen").instance.state == "approved"


@pytest.mark.parametrize(
    ("first", "rejecter"), [(None, "owen"), (None, "sam"), ("owen", "sam"), ("sam", "owen")]
)
def test_access_a_reject_from_either_ends_it(world, first, rejecter):
    # given an access request, maybe already approved by one of the two
    req = world.submit("access")
    if first:
        world.act(req, "approve", first)
    # when the other (or either) rejects
    result = world.act(req, "reject", rejecter, comment="Not needed for the role.")
    # then it is rejected: rule all, a veto each
    assert result.instance.state == "rejected"
    assert holders(req) == []
    # and the other place still open in the stage closed as no longer needed (its holders are told)
    closed = result.entry.data["handoffs"]["closed"]
    assert sorted(h["reason"] for h in closed) == (["done"] if first else ["done", "superseded"])


# --- purchase: any 2 of a 3-person committee, no veto ---------------------------------------


def test_purchase_needs_two_of_three_and_the_third_is_told_their_handoff_closed(
    world, django_capture_on_commit_callbacks
):
    # given a purchase order: each committee member holds a handoff of their own
    req = world.submit("purchase")
    assert holders(req) == [("committee", "pat"), ("committee", "quinn"), ("committee", "rosa")]
    rosa = world["rosa"]
    rosa_handoff = Handoff.objects.for_instance(req).open().get(assignee=rosa)
    # when pat approves, then it still waits for a second
    assert world.act(req, "approve", "pat").instance.state == "in_review"
    assert holders(req) == [("committee", "quinn"), ("committee", "rosa")]
    # and a receiver listening on rosa's inbox
    channel = channel_listen(f"inbox.user.{rosa.pk}")
    # when quinn approves
    with django_capture_on_commit_callbacks(execute=True):
        result = world.act(req, "approve", "quinn")
    # then it is approved, and rosa's handoff was closed as no longer needed
    assert result.instance.state == "approved"
    rosa_handoff.refresh_from_db()
    assert rosa_handoff.close_reason == Handoff.CloseReason.SUPERSEDED
    closed = {h["user"]: h["reason"] for h in result.entry.data["handoffs"]["closed"]}
    assert closed == {world["quinn"].pk: "done", rosa.pk: "superseded"}
    # and a live event went to rosa's inbox
    assert OutboxEvent.objects.filter(destination=f"inbox.user.{rosa.pk}", payload__action="approve").exists()
    (message,) = channel_receive(channel, count=1)
    assert message["event"]["ref"] == req.workflow_ref()
    assert message["event"]["action"] == "approve"
    # and the notification of this change reaches her (and the requester), not quinn who acted
    sent = notify_transition(request_id=req.pk, action="approve", audit_seq=result.entry.seq, event_id="e-1")
    told = set(Notification.objects.filter(request=req).values_list("recipient__username", flat=True))
    assert told == {"rosa", "rita"}
    assert sent == 2
    mail_tasks_run()
    assert any(m.to == ["rosa@example.com"] for m in mail.outbox)


def test_purchase_one_reject_without_veto_keeps_it_open(world):
    # given a purchase order
    req = world.submit("purchase")
    # when one member rejects
    result = world.act(req, "reject", "rosa", comment="Too expensive.")
    # then it is still in review: the reject is a vote against, not a veto
    assert (result.instance.state, result.instance.stage_index) == ("in_review", 0)
    assert result.entry.data["decision"]["stage_outcome"] == "pending"
    assert holders(req) == [("committee", "pat"), ("committee", "quinn")]
    # and two approvals after it still meet the quorum
    world.act(req, "approve", "pat")
    assert world.act(req, "approve", "quinn").instance.state == "approved"


def test_purchase_two_rejects_end_it(world):
    req = world.submit("purchase")
    world.act(req, "reject", "rosa")
    # with one approval and two rejects, two approvals are out of reach
    world.act(req, "approve", "pat")
    result = world.act(req, "reject", "quinn")
    assert result.instance.state == "rejected"
    assert result.entry.data["decision"]["stage_outcome"] == "failed"
    assert holders(req) == []


def test_purchase_two_rejects_first_end_it_at_once(world):
    req = world.submit("purchase")
    world.act(req, "reject", "rosa")
    assert world.act(req, "reject", "pat").instance.state == "rejected"
    # quinn's handoff closed with it
    assert holders(req) == []


def test_a_committee_member_who_submits_is_not_among_the_approvers(world):
    # given pat of the committee submits a purchase order
    req = world.submit("purchase", requester="pat")
    # then only the two others hold it, and both are needed
    assert holders(req) == [("committee", "quinn"), ("committee", "rosa")]
    assert req.stage_slots == [f"user:{world['quinn'].pk}", f"user:{world['rosa'].pk}"]
    world.act(req, "approve", "quinn")
    assert world.act(req, "approve", "rosa").instance.state == "approved"


# --- content: editor, then legal with a veto ------------------------------------------------


def test_content_goes_to_an_editor_then_legal(world):
    req = world.submit("content")
    assert holders(req) == [("editor", "group editors")]
    assert world.act(req, "approve", "eddie").instance.stage_index == 1
    assert holders(req) == [("legal", "group legal")]
    assert world.act(req, "approve", "lena").instance.state == "approved"


def test_content_legal_vetoes(world):
    req = world.submit("content")
    world.act(req, "approve", "alex")
    result = world.act(req, "reject", "lena", comment="Defamatory headline.")
    assert result.instance.state == "rejected"
    assert decisions(req) == [
        (1, "editor", "approve", "alex", "alex", ""),
        (1, "legal", "reject", "lena", "lena", "Defamatory headline."),
    ]


# --- every decision is stored ---------------------------------------------------------------


def test_a_decision_on_someones_behalf_records_both_people(world):
    # given owen is out of office and has delegated his work to alex
    Delegation.objects.create(delegator=world["owen"], delegate=world["alex"], reason="holiday")
    req = world.submit("access")
    # when alex approves on owen's behalf
    result = world.act(req, "approve", "alex", on_behalf_of="owen", comment="For Owen.")
    # then the decision is owen's, taken by alex, in owen's place of the stage
    decision = Decision.objects.get(request=req)
    assert (decision.principal, decision.actor) == (world["owen"], world["alex"])
    assert (decision.stage_index, decision.stage_name, decision.outcome, decision.comment) == (
        0,
        "owner-and-security",
        "approve",
        "For Owen.",
    )
    assert decision.slot == f"user:{world['owen'].pk}"
    assert decision.revision == 1
    # and the audit entry names both
    assert (result.entry.actor, result.entry.on_behalf_of) == (world["alex"], world["owen"])


@pytest.mark.parametrize("action", ["reject", "request_changes"])
def test_reject_and_request_changes_need_a_comment(world, action):
    req = world.submit("expense", amount=500)
    before = snapshot(req)
    with pytest.raises(errors.InvalidInput) as caught:
        world.act(req, action, "maria", comment="   ")
    assert list(caught.value.field_errors) == ["comment"]
    assert snapshot(req) == before


def test_approve_needs_no_comment(world):
    req = world.submit("expense", amount=500)
    assert world.act(req, "approve", "maria", comment="").instance.state == "approved"


# --- request changes, resubmission and revisions ----------------------------------------------


def test_request_changes_hands_back_to_the_requester_and_resubmit_makes_a_revision(world):
    # given a claim of 4,200 the manager approved
    req = world.submit("expense", amount=4200, title="Offsite")
    world.act(req, "approve", "maria")
    # when finance asks for changes
    result = world.act(req, "request_changes", "fiona", comment="Split hotel and travel.")
    # then it is handed back to rita
    assert result.instance.state == "changes_requested"
    assert result.instance.stage_index is None
    assert holders(req) == [("changes", "rita")]
    assert decisions(req)[-1] == (
        1,
        "finance",
        "request_changes",
        "fiona",
        "fiona",
        "Split hotel and travel.",
    )
    # when rita resubmits with a lower amount and a new title
    resubmitted = world.act(
        req,
        "resubmit",
        "rita",
        data={"title": "Offsite (hotel)", "payload": {**req.payload, "amount": 3900}},
    )
    # then it is revision 2, routed from the start: approvals of revision 1 do not carry over
    req.refresh_from_db()
    assert (req.state, req.revision, req.stage_index) == ("in_review", 2, 0)
    assert req.payload["amount"] == 3900
    assert holders(req) == [("manager", "maria")]
    # the diff between the revisions is stored and in the audit trail
    revision = RequestRevision.objects.get(request=req, number=2)
    assert revision.diff == [
        {"field": "title", "before": "Offsite", "after": "Offsite (hotel)"},
        {"field": "payload.amount", "before": 4200, "after": 3900},
    ]
    assert (revision.title, revision.payload["amount"], revision.created_by) == (
        "Offsite (hotel)",
        3900,
        world["rita"],
    )
    assert resubmitted.entry.data["revision"] == {"number": 2, "diff": revision.diff}
    assert RequestRevision.objects.get(request=req, number=1).payload["amount"] == 4200
    # maria and fiona decide again on revision 2
    world.act(req, "approve", "maria")
    assert world.act(req, "approve", "fiona").instance.state == "approved"
    assert [(d[0], d[1], d[3]) for d in decisions(req)] == [
        (1, "manager", "maria"),
        (1, "finance", "fiona"),
        (2, "manager", "maria"),
        (2, "finance", "fiona"),
    ]


def test_approvals_carry_over_when_the_policy_says_so(world):
    # given the expense policy with carry_over_approvals
    expense = world.types["expense"]
    document = {**expense.current_policy.document, "options": {"carry_over_approvals": True}}
    publish_policy(request_type=expense, document=document, checked=True)
    req = world.submit("expense", amount=4200)
    world.act(req, "approve", "maria")
    world.act(req, "request_changes", "fiona", comment="Add the receipt.")
    # when rita resubmits
    result = world.act(
        req, "resubmit", "rita", data={"payload": {**req.payload, "purpose": "Offsite + receipt"}}
    )
    # then the manager's approval of revision 1 still counts: it goes straight to finance
    assert (result.instance.state, result.instance.stage_index) == ("in_review", 1)
    assert result.entry.data["route"]["met"] == ["manager"]
    assert holders(req) == [("finance", "group finance")]
    assert world.act(req, "approve", "fiona").instance.state == "approved"


def test_a_change_request_answer_can_be_routed_differently(world):
    # given a claim of 4,200 sent back by finance
    req = world.submit("expense", amount=4200)
    world.act(req, "approve", "maria")
    world.act(req, "request_changes", "fiona", comment="Too much.")
    # when rita lowers it to 800 and maria approves again
    world.act(req, "resubmit", "rita", data={"payload": {**req.payload, "amount": 800}})
    result = world.act(req, "approve", "maria")
    # then finance is skipped this time, and the skip is recorded
    assert result.instance.state == "approved"
    assert [s["stage"] for s in result.entry.data["route"]["skipped"]] == ["finance", "cfo"]


def test_a_resubmission_is_checked_against_the_schema(world):
    req = world.submit("expense", amount=4200)
    world.act(req, "request_changes", "maria", comment="Currency?")
    before = snapshot(req)
    with pytest.raises(errors.InvalidInput) as caught:
        world.act(
            req, "resubmit", "rita", data={"payload": {**req.payload, "amount": -5}, "state": "approved"}
        )
    assert caught.value.field_errors == {
        "payload.amount": ["Must be more than 0."],
        "state": ["This field cannot be changed on resubmission."],
    }
    assert snapshot(req) == before
    assert RequestRevision.objects.filter(request=req).count() == 1


def test_only_the_requester_resubmits(world):
    req = world.submit("expense", amount=500)
    world.act(req, "request_changes", "maria", comment="Receipt?")
    with pytest.raises(errors.Forbidden):
        world.act(req, "resubmit", "maria", data={})


# --- who the managers are ---------------------------------------------------------------------


def test_the_requesters_manager_approves(world):
    # given sam, whose manager is maria, and carl, who has none, ... sam's claim goes to maria
    req = world.submit("expense", requester="sam", amount=50)
    assert holders(req) == [("manager", "maria")]
    assert req.stage_slots == [f"user:{world['maria'].pk}"]


def test_the_managers_of_the_requesters_teams_approve(world):
    # given a type whose one stage is the requester's team managers, and rita in two teams
    other = Team.objects.create(slug="events", name="Events")
    TeamMembership.objects.create(team=other, user=world["rita"])
    TeamMembership.objects.create(team=other, user=world["carl"], is_manager=True)
    general = world.types["general"]
    publish_policy(
        request_type=general,
        document={"stages": [{"name": "team", "approvers": {"team_manager": True}, "rule": "all"}]},
        checked=True,
    )
    # when rita submits
    req = world.submit("general")
    # then the manager of each of her teams holds it, and both must approve
    assert holders(req) == [("team", "carl"), ("team", "maria")]
    world.act(req, "approve", "maria")
    assert world.act(req, "approve", "carl").instance.state == "approved"


def test_a_team_manager_who_submits_is_not_their_own_approver(world):
    general = world.types["general"]
    publish_policy(
        request_type=general,
        document={
            "stages": [{"name": "team", "approvers": {"team_manager": True}, "escalate_to": {"user": "carl"}}]
        },
        checked=True,
    )
    # maria manages the only team she is in: her request goes to the escalation target
    req = world.submit("general", requester="maria")
    assert holders(req) == [("team", "carl")]


def test_a_requester_without_a_manager_is_refused_clearly(world):
    # given an expense policy whose manager stage has no escalation target, and carl, who has no manager
    expense = world.types["expense"]
    document = {"stages": [{"name": "manager", "approvers": {"requester_manager": True}}]}
    publish_policy(request_type=expense, document=document, checked=True)
    count = expense.requests.count()
    # when carl submits a claim
    with pytest.raises(errors.InvalidInput) as caught:
        world.submit("expense", requester="carl")
    # then he is told why, on the request type, and nothing is left behind
    message = (
        "Stage 'manager' of the Expense claim policy has nobody who could approve it for this request "
        "(the requester's manager). Ask an administrator to fix the policy or the people it names."
    )
    assert caught.value.field_errors == {"request_type": [message]}
    assert expense.requests.count() == count


def test_a_requester_without_a_manager_goes_to_the_escalation_target(world):
    # given the demo expense policy (the manager stage escalates to the managers group)
    # when carl, who has no manager, submits
    req = world.submit("expense", requester="carl", amount=50)
    # then the managers group holds it, and the audit trail says why
    assert holders(req) == [("manager", "group managers")]
    assert (
        last_entry(req).data["route"]["note"]
        == "nobody could approve stage 'manager'; handed to group managers"
    )
    assert world.act(req, "approve", "maria").instance.state == "approved"


def test_the_sla_sets_the_handoffs_due_date(world):
    # given the expense policy: manager 2d, finance 3d
    start = timezone.now()
    req = world.submit("expense", amount=4200)
    end = timezone.now()
    (manager,) = Handoff.objects.for_instance(req).open()
    assert start + timedelta(days=2) <= manager.due_at <= end + timedelta(days=2)
    world.act(req, "approve", "maria")
    (finance,) = Handoff.objects.for_instance(req).open()
    assert abs(finance.due_at - finance.opened_at - timedelta(days=3)) < timedelta(seconds=5)


def test_a_stage_without_an_sla_has_no_due_date(world):
    general = world.types["general"]
    publish_policy(
        request_type=general,
        document={"stages": [{"name": "review", "approvers": {"groups": ["approvers"]}}]},
    )
    req = world.submit("general")
    assert Handoff.objects.for_instance(req).open().get().due_at is None


def test_a_policy_whose_every_stage_is_skipped_approves_on_submission(world):
    general = world.types["general"]
    publish_policy(
        request_type=general,
        document={
            "stages": [
                {
                    "name": "review",
                    "approvers": {"groups": ["approvers"]},
                    "when": {"field": "needed_by", "op": "exists"},
                }
            ]
        },
        checked=True,
    )
    req = world.submit("general")
    assert (req.state, req.stage_index) == ("approved", None)
    assert last_entry(req).data["route"] == {
        "to": None,
        "skipped": [{"stage": "review", "reason": "needed_by is not given, so needed_by is set is false"}],
    }
    assert req.decided_at is not None


def test_submitting_validates_the_payload_naming_each_field(world):
    with pytest.raises(errors.InvalidInput) as caught:
        request_create(
            requester=world["rita"],
            request_type=world.types["expense"],
            title="x",
            payload={"amount": "lots", "currency": "JPY"},
        )
    assert caught.value.field_errors == {
        "payload.amount": ["Must be a number."],
        "payload.currency": ["Choose one of: EUR, USD, GBP."],
        "payload.purpose": ["This field is required."],
    }


# --- separation of duties -----------------------------------------------------------------------


def test_the_requester_never_approves_their_own_request_even_in_the_approver_group(world):
    # given alex, an editor, submits a content publication the editors group reviews
    req = world.submit("content", requester="alex")
    before = snapshot(req)
    # when alex tries to approve it
    with pytest.raises(errors.Forbidden) as caught:
        world.act(req, "approve", "alex")
    # then it is refused and nothing changed; eddie, the other editor, may
    assert "own request" in caught.value.detail
    assert snapshot(req) == before
    assert world.act(req, "approve", "eddie").instance.stage_index == 1


def test_the_requester_never_decides_through_a_delegation(world):
    # given lena (legal) delegated her work to alex, and alex submits a content publication
    Delegation.objects.create(delegator=world["lena"], delegate=world["alex"])
    req = world.submit("content", requester="alex")
    world.act(req, "approve", "eddie")
    before = snapshot(req)
    # when alex approves his own request on lena's behalf
    with pytest.raises(errors.Forbidden) as caught:
        world.act(req, "approve", "alex", on_behalf_of="lena")
    # then it is refused, and nothing changed
    assert caught.value.detail == "You cannot decide on your own request, not even on someone's behalf."
    assert snapshot(req) == before
    # and lena herself still may
    assert world.act(req, "approve", "lena").instance.state == "approved"


def test_nobody_decides_on_behalf_of_the_requester(world):
    # given rita delegated her work to eddie
    Delegation.objects.create(delegator=world["rita"], delegate=world["eddie"])
    req = world.submit("content")
    before = snapshot(req)
    # when eddie approves rita's request on her behalf
    with pytest.raises(errors.Forbidden):
        world.act(req, "approve", "eddie", on_behalf_of="rita")
    assert snapshot(req) == before


def _two_stages_with_alex(world: PolicyWorld, **options: bool) -> None:
    publish_policy(
        request_type=world.types["general"],
        document={
            "options": options,
            "stages": [
                {"name": "first", "approvers": {"users": ["alex"]}},
                {"name": "second", "approvers": {"users": ["alex", "sam"]}, "rule": "all"},
            ],
        },
        checked=True,
    )


def test_one_person_decides_once_per_request(world):
    # given two stages that both name alex
    _two_stages_with_alex(world)
    req = world.submit("general")
    world.act(req, "approve", "alex")
    assert req.__class__.objects.get(pk=req.pk).stage_index == 1
    before = snapshot(req)
    # when alex tries to decide in the second stage too
    with pytest.raises(errors.Forbidden) as caught:
        world.act(req, "approve", "alex")
    # then he is refused: one decision per person per request
    assert "already decided" in caught.value.detail
    assert snapshot(req) == before
    # and the second stage never waited for him: only sam holds it, and sam alone finishes it
    holders = {h.assignee.username for h in Handoff.objects.for_instance(req).open()}
    assert holders == {"sam"}
    assert world.act(req, "approve", "sam").instance.state == "approved"


def test_one_decision_per_stage_when_the_policy_allows_more(world):
    # given the same two stages, with one_decision_per_person: false
    _two_stages_with_alex(world, one_decision_per_person=False)
    req = world.submit("general")
    world.act(req, "approve", "alex")
    # then alex decides in the second stage too, once
    world.act(req, "approve", "alex")
    assert world.act(req, "approve", "sam").instance.state == "approved"
    assert [(d[1], d[3]) for d in decisions(req)] == [
        ("first", "alex"),
        ("second", "alex"),
        ("second", "sam"),
    ]


def test_not_twice_in_one_stage_even_when_the_policy_allows_more(world):
    # given a stage without veto where alex already voted against
    publish_policy(
        request_type=world.types["general"],
        document={
            "options": {"one_decision_per_person": False},
            "stages": [
                {"name": "vote", "approvers": {"users": ["alex", "sam"]}, "rule": "any", "veto": False}
            ],
        },
        checked=True,
    )
    req = world.submit("general")
    world.act(req, "reject", "alex")
    before = snapshot(req)
    with pytest.raises(errors.Forbidden):
        world.act(req, "approve", "alex")
    assert snapshot(req) == before


@pytest.mark.parametrize("delegate_first", [True, False])
def test_a_delegate_cannot_satisfy_a_quorum_twice(world, delegate_first):
    # given quinn delegated her work to pat, both on the purchase committee
    Delegation.objects.create(delegator=world["quinn"], delegate=world["pat"])
    req = world.submit("purchase")
    # when pat decides for himself and then for quinn (or the other way round)
    first, second = ({"on_behalf_of": "quinn"}, {}) if delegate_first else ({}, {"on_behalf_of": "quinn"})
    world.act(req, "approve", "pat", **first)
    before = snapshot(req)
    with pytest.raises(errors.Forbidden) as caught:
        world.act(req, "approve", "pat", **second)
    # then the second is refused: one person, one voice in the quorum
    assert "already decided" in caught.value.detail
    assert snapshot(req) == before
    # and quinn herself cannot add a second voice after pat spoke for her
    if delegate_first:
        with pytest.raises(errors.Forbidden):
            world.act(req, "approve", "quinn")
    # rosa's approval completes the quorum
    assert world.act(req, "approve", "rosa").instance.state == "approved"


def test_a_decision_after_the_request_was_decided_is_not_allowed(world):
    req = world.submit("expense", amount=500)
    world.act(req, "approve", "maria")
    with pytest.raises(errors.TransitionNotAllowed):
        world.act(req, "reject", "fiona", comment="late")


def test_an_approver_of_another_stage_cannot_decide_now(world):
    # given a 4,200 claim waiting for the manager
    req = world.submit("expense", amount=4200)
    before = snapshot(req)
    # fiona (finance) cannot jump the queue
    with pytest.raises(errors.Forbidden):
        world.act(req, "approve", "fiona")
    assert snapshot(req) == before


def test_the_audit_trail_has_one_entry_per_change_and_verifies(world):
    req = world.submit("expense", amount=20000)
    world.act(req, "approve", "maria")
    world.act(req, "request_changes", "fiona", comment="Receipt?")
    world.act(req, "resubmit", "rita", data={"payload": {**req.payload, "amount": 900}})
    world.act(req, "approve", "maria")
    entries = trail(req)
    assert [(e.action, e.source, e.target) for e in entries] == [
        ("create", "", "draft"),
        ("submit", "draft", "in_review"),
        ("approve", "in_review", "in_review"),
        ("request_changes", "in_review", "changes_requested"),
        ("resubmit", "changes_requested", "in_review"),
        ("approve", "in_review", "approved"),
    ]
    assert all(e.kind == AuditEntry.Kind.TRANSITION for e in entries[1:])
    assert audit_verify().ok


def test_a_quorum_handed_to_its_escalation_target_is_decided_by_the_stand_in(world):
    # given a committee of 3 that must all agree (quorum 3), escalating to the managers group
    purchase = world.types["purchase"]
    document = purchase.current_policy.document
    stage = {**document["stages"][0], "quorum": 3, "veto": True}
    publish_policy(request_type=purchase, document={**document, "stages": [stage]}, checked=True)
    # when pat of the committee submits: only 2 others could approve, fewer than 3
    req = world.submit("purchase", requester="pat")
    # then the stage is handed to the managers group instead
    assert holders(req) == [("committee", "group managers")]
    assert (
        last_entry(req).data["route"]["note"]
        == "nobody could approve stage 'committee'; handed to group managers"
    )
    # and the stand-in's approval decides the stage: an approval never rejects
    result = world.act(req, "approve", "maria")
    assert result.instance.state == "approved"
    assert result.entry.data["decision"]["stage_outcome"] == "met"


def test_a_stand_ins_reject_ends_the_request(world):
    purchase = world.types["purchase"]
    document = purchase.current_policy.document
    stage = {**document["stages"][0], "quorum": 3}
    publish_policy(request_type=purchase, document={**document, "stages": [stage]}, checked=True)
    req = world.submit("purchase", requester="pat")
    assert world.act(req, "reject", "maria", comment="Not now.").instance.state == "rejected"


def test_an_approval_that_would_leave_a_quorum_out_of_reach_is_refused_not_a_rejection(world):
    # given a committee where all 3 must agree, and quinn delegated her work to pat
    purchase = world.types["purchase"]
    document = purchase.current_policy.document
    publish_policy(
        request_type=purchase,
        document={**document, "stages": [{**document["stages"][0], "quorum": 3}]},
        checked=True,
    )
    Delegation.objects.create(delegator=world["quinn"], delegate=world["pat"])
    req = world.submit("purchase")
    before = snapshot(req)
    # when pat approves on quinn's behalf (after which pat could not speak for himself: 2 of 3 left)
    with pytest.raises(errors.TransitionNotAllowed) as caught:
        world.act(req, "approve", "pat", on_behalf_of="quinn")
    # then the approval is refused with the reason, and nothing changed
    assert (
        "could not be met after this approval: it needs 3 approvals and only 2 people" in caught.value.detail
    )
    assert snapshot(req) == before
    # and the three deciding for themselves approve it
    for name in ("pat", "quinn", "rosa"):
        result = world.act(req, "approve", name)
    assert result.instance.state == "approved"


def test_carried_over_approvals_count_as_decisions_of_the_new_revision(world):
    # given two stages naming alex, approvals carried over a change request
    publish_policy(
        request_type=world.types["general"],
        document={
            "options": {"carry_over_approvals": True},
            "stages": [
                {"name": "first", "approvers": {"users": ["alex"]}},
                {"name": "second", "approvers": {"users": ["alex", "sam"]}},
            ],
        },
        checked=True,
    )
    req = world.submit("general")
    world.act(req, "approve", "alex")
    world.act(req, "request_changes", "sam", comment="Date?")
    world.act(req, "resubmit", "rita", data={"payload": {"needed_by": "2030-01-01"}})
    req.refresh_from_db()
    assert (req.revision, req.stage_index) == (2, 1)
    before = snapshot(req)
    # when alex, whose first-stage approval still counts, tries to decide the second stage
    with pytest.raises(errors.Forbidden):
        world.act(req, "approve", "alex")
    # then he is refused: his voice already counts in this revision
    assert snapshot(req) == before
    assert world.act(req, "approve", "sam").instance.state == "approved"
