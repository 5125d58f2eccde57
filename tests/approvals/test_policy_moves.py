"""Policy versions: published ones never change, each request keeps its version, and moving
in-flight requests to a new version is a dry run first, then an audited move per request."""

from __future__ import annotations

import pytest

from approvals.models import ApprovalRequest, PolicyVersion, PublishedPolicyError
from approvals.publishing import policy_draft_create, policy_move_apply, policy_move_plan, policy_publish
from tests.approvals.policy_world import PolicyWorld, decisions, holders, load_demo_world, snapshot, trail
from tests.factories import publish_policy
from workflows import errors
from workflows.audit import audit_verify
from workflows.models import AuditEntry, Handoff
from workflows.services import transition

pytestmark = pytest.mark.django_db

# Expense v2: finance decides every claim first, then the manager; the CFO stage is gone.
EXPENSE_V2 = {
    "stages": [
        {"name": "finance", "approvers": {"groups": ["finance"]}, "sla": "1d"},
        {"name": "manager", "approvers": {"requester_manager": True}},
    ]
}


@pytest.fixture
def world() -> PolicyWorld:
    return load_demo_world()


def _publish_v2(world: PolicyWorld, document: dict | None = None) -> PolicyVersion:
    return publish_policy(request_type=world.types["expense"], document=document or EXPENSE_V2, checked=True)


def test_publishing_a_new_version_leaves_requests_in_flight_on_theirs(world):
    # given a claim submitted under v1
    v1 = world.types["expense"].current_policy
    old = world.submit("expense", amount=4200)
    # when v2 is published
    v2 = _publish_v2(world)
    # then the old claim still follows v1, and a new one follows v2
    old.refresh_from_db()
    assert (old.policy_version, old.stage_index, holders(old)) == (v1, 0, [("manager", "maria")])
    new = world.submit("expense", amount=4200)
    assert new.policy_version == v2
    assert holders(new) == [("finance", "group finance")]
    # and the old one goes on under v1: manager, then finance
    world.act(old, "approve", "maria")
    assert world.act(old, "approve", "fiona").instance.state == "approved"
    assert ApprovalRequest.objects.get(pk=old.pk).policy_version == v1


def test_the_dry_run_reports_each_move_and_changes_nothing(world):
    # given three expense claims under v1: at the manager, at finance, and waiting for changes,
    # and one already approved
    at_manager = world.submit("expense", amount=4200, title="At manager")
    at_finance = world.submit("expense", amount=4200, title="At finance")
    world.act(at_finance, "approve", "maria")
    waiting = world.submit("expense", amount=50, title="Waiting")
    world.act(waiting, "request_changes", "maria", comment="Receipt?")
    done = world.submit("expense", amount=50, title="Done")
    world.act(done, "approve", "maria")
    v2 = _publish_v2(world)
    before = [snapshot(r) for r in (at_manager, at_finance, waiting, done)]
    entries = AuditEntry.objects.count()
    # when the move is planned
    rows = policy_move_plan(request_type=world.types["expense"], to_version=v2)
    # then each request in flight has a row: where it is, where it would go, whose handoffs change
    assert [r.request.pk for r in rows] == [at_manager.pk, at_finance.pk, waiting.pk]
    by_title = {r.request.title: r for r in rows}
    manager = by_title["At manager"]
    assert (manager.from_version, manager.from_stage, manager.to_stage) == (
        1,
        "stage 'manager'",
        "stage 'finance'",
    )
    assert manager.closing == [str(world["maria"])]
    assert manager.opening == ["group finance"]
    # the manager's approval counts again in v2's stage of the same name; finance comes first now
    finance = by_title["At finance"]
    assert (finance.from_stage, finance.to_stage) == ("stage 'finance'", "stage 'finance'")
    assert (finance.closing, finance.opening) == (["finance"], ["group finance"])
    assert (by_title["Waiting"].from_stage, by_title["Waiting"].to_stage) == (
        "waiting for changes",
        "waiting for changes",
    )
    assert by_title["Waiting"].closing == by_title["Waiting"].opening == []
    assert manager.describe() == (
        f"REQ-{at_manager.pk} (In review): v1 stage 'manager' → stage 'finance'; "
        f"closes {world['maria']}; opens group finance"
    )
    assert not any(r.problem or r.moved for r in rows)
    # and nothing changed
    assert [snapshot(r) for r in (at_manager, at_finance, waiting, done)] == before
    assert AuditEntry.objects.count() == entries


def test_applying_the_move_moves_each_request_in_an_audited_transition(world):
    # given a claim at finance under v1, approved by the manager, and one waiting for changes
    v1 = world.types["expense"].current_policy
    at_finance = world.submit("expense", amount=4200)
    world.act(at_finance, "approve", "maria")
    old_handoff = Handoff.objects.for_instance(at_finance).open().get()
    waiting = world.submit("expense", amount=50)
    world.act(waiting, "request_changes", "maria", comment="Receipt?")
    v2 = _publish_v2(world)
    # when the move is applied by an administrator
    rows = policy_move_apply(request_type=world.types["expense"], to_version=v2, actor=world["admin"])
    # then both moved
    assert [(r.request.pk, r.moved, r.problem) for r in rows] == [
        (at_finance.pk, True, ""),
        (waiting.pk, True, ""),
    ]
    at_finance.refresh_from_db()
    waiting.refresh_from_db()
    assert (at_finance.policy_version, at_finance.state, at_finance.stage_index) == (v2, "in_review", 0)
    assert (waiting.policy_version, waiting.state, waiting.stage_index) == (v2, "changes_requested", None)
    # each with one 'move_policy' audit entry saying from which version to which
    move = trail(at_finance)[-1]
    assert (move.action, move.source, move.target, move.actor) == (
        "move_policy",
        "in_review",
        "in_review",
        world["admin"],
    )
    assert move.data["policy"] == {"from": v1.pk, "to": v2.pk}
    assert move.data["route"] == {"to": "finance"}
    assert trail(waiting)[-1].action == "move_policy"
    assert trail(waiting)[-1].data["policy"] == {"from": v1.pk, "to": v2.pk}
    # the old handoff closed and v2's opened (with v2's SLA)
    old_handoff.refresh_from_db()
    assert old_handoff.close_reason == Handoff.CloseReason.SUPERSEDED
    assert move.data["handoffs"]["closed"][0]["id"] == old_handoff.pk
    (new_handoff,) = Handoff.objects.for_instance(at_finance).open()
    assert (new_handoff.stage, new_handoff.candidate_group.name) == ("finance", "finance")
    assert new_handoff.due_at is not None
    # the requester waiting for changes still holds their handoff
    assert holders(waiting) == [("changes", "rita")]
    # and under v2: finance, then the manager, whose earlier approval counts again
    result = world.act(at_finance, "approve", "fiona")
    assert result.instance.state == "approved"
    assert result.entry.data["route"]["met"] == ["manager"]
    assert [(d[1], d[3]) for d in decisions(at_finance)] == [("manager", "maria"), ("finance", "fiona")]
    # the waiting one is routed by v2 when resubmitted
    world.act(waiting, "resubmit", "rita", data={})
    assert holders(waiting) == [("finance", "group finance")]
    assert audit_verify().ok


def test_a_move_where_the_decisions_so_far_meet_the_new_route_approves_it(world):
    # given a claim at finance under v1 (the manager approved), and v2 with only the manager stage
    req = world.submit("expense", amount=4200)
    world.act(req, "approve", "maria")
    v2 = _publish_v2(world, {"stages": [{"name": "manager", "approvers": {"requester_manager": True}}]})
    # when it is moved
    (row,) = policy_move_plan(request_type=world.types["expense"], to_version=v2)
    assert row.to_stage == "approved"
    policy_move_apply(request_type=world.types["expense"], to_version=v2)
    # then it is approved by the system's move, and nobody holds it any more
    req.refresh_from_db()
    assert req.state == "approved"
    move = trail(req)[-1]
    assert (move.action, move.target, move.actor, move.data["system"]) == (
        "move_policy",
        "approved",
        None,
        True,
    )
    assert holders(req) == []


def test_a_vote_against_becomes_a_veto_when_the_new_version_says_so(world):
    # given a purchase order with one dissent under v1 (no veto)
    req = world.submit("purchase")
    world.act(req, "reject", "rosa", comment="Too expensive.")
    purchase = world.types["purchase"]
    document = purchase.current_policy.document
    v2 = publish_policy(
        request_type=purchase,
        document={**document, "stages": [{**document["stages"][0], "veto": True}]},
        checked=True,
    )
    # when it is moved to v2, where a reject is a veto
    policy_move_apply(request_type=purchase, to_version=v2)
    # then it is rejected
    req.refresh_from_db()
    assert (req.state, req.policy_version) == ("rejected", v2)


def test_a_request_that_could_not_move_is_reported_and_left_alone(world):
    # given a claim by carl (no manager) under v1, where the manager stage escalates to managers
    req = world.submit("expense", requester="carl", amount=50)
    # and v2, whose only stage is the requester's manager, without an escalation target
    v2 = _publish_v2(world, {"stages": [{"name": "manager", "approvers": {"requester_manager": True}}]})
    before = snapshot(req)
    # when the move is planned and applied
    (planned,) = policy_move_plan(request_type=world.types["expense"], to_version=v2)
    (applied,) = policy_move_apply(request_type=world.types["expense"], to_version=v2)
    # then the problem is named, and the request stays on v1 as it was
    assert "Stage 'manager' of the Expense claim policy has nobody who could approve it" in planned.problem
    assert planned.describe().endswith("cannot move: " + planned.problem)
    assert (applied.moved, applied.problem) == (False, planned.problem)
    assert snapshot(req) == before


def test_only_a_published_version_of_the_same_type_is_a_target(world):
    expense = world.types["expense"]
    draft = policy_draft_create(request_type=expense, document=EXPENSE_V2, actor=None)
    with pytest.raises(errors.InvalidInput):
        policy_move_plan(request_type=expense, to_version=draft)
    with pytest.raises(errors.InvalidInput):
        policy_move_plan(request_type=expense, to_version=world.types["access"].current_policy)


def test_moving_one_request_needs_an_administrator_and_a_published_version(world):
    req = world.submit("expense", amount=50)
    v2 = _publish_v2(world)
    # a manager may not move it
    with pytest.raises(errors.Forbidden):
        transition(
            model=ApprovalRequest,
            instance_id=req.pk,
            name="move_policy",
            actor=world["maria"],
            data={"version": v2.pk},
        )
    # to its own version, or to a draft, is refused with the reason on 'version'
    with pytest.raises(errors.InvalidInput) as same:
        transition(
            model=ApprovalRequest,
            instance_id=req.pk,
            name="move_policy",
            actor=world["admin"],
            data={"version": req.policy_version_id},
        )
    assert "already follows" in same.value.field_errors["version"][0]
    draft = policy_draft_create(request_type=world.types["expense"], document=EXPENSE_V2, actor=None)
    with pytest.raises(errors.InvalidInput):
        transition(
            model=ApprovalRequest,
            instance_id=req.pk,
            name="move_policy",
            actor=world["admin"],
            data={"version": draft.pk},
        )
    result = transition(
        model=ApprovalRequest,
        instance_id=req.pk,
        name="move_policy",
        actor=world["admin"],
        data={"version": v2.pk},
    )
    assert result.instance.policy_version == v2


# --- published versions never change ---------------------------------------------------------


def test_a_published_version_cannot_be_changed_or_deleted(world):
    version = world.types["expense"].current_policy
    document = dict(version.document)
    # not through the model
    version.document = {"stages": []}
    with pytest.raises(PublishedPolicyError):
        version.save()
    with pytest.raises(PublishedPolicyError):
        version.delete()
    # nor in bulk
    with pytest.raises(PublishedPolicyError):
        PolicyVersion.objects.filter(pk=version.pk).update(document={"stages": []})
    with pytest.raises(PublishedPolicyError):
        PolicyVersion.objects.filter(pk=version.pk).delete()
    with pytest.raises(PublishedPolicyError):
        PolicyVersion.objects.filter(pk=version.pk).update(status=PolicyVersion.Status.DRAFT)
    # and it reads as it was published
    version.refresh_from_db()
    assert version.document == document
    assert version.is_published
    # publishing it again is refused too
    with pytest.raises(errors.TransitionNotAllowed):
        policy_publish(version=version, actor=None)


def test_a_draft_can_be_changed_and_deleted(world):
    draft = policy_draft_create(request_type=world.types["expense"], document=EXPENSE_V2, actor=None)
    assert draft.number == 2
    draft.document = {"stages": [EXPENSE_V2["stages"][0]]}
    draft.save()
    PolicyVersion.objects.filter(pk=draft.pk).update(source="edited")
    draft.refresh_from_db()
    assert (len(draft.document["stages"]), draft.source) == (1, "edited")
    draft.delete()
    assert not PolicyVersion.objects.filter(pk=draft.pk).exists()


def test_a_draft_that_fails_the_checks_is_not_published(world):
    # given a draft naming a user who does not exist and a quorum larger than its approvers
    expense = world.types["expense"]
    draft = policy_draft_create(
        request_type=expense,
        document={
            "stages": [
                {"name": "x", "approvers": {"users": ["nobody", "carl"]}, "rule": "quorum", "quorum": 3}
            ]
        },
        actor=None,
    )
    current = expense.current_policy_id
    # when it is published, then every problem is listed and nothing changes
    with pytest.raises(errors.InvalidInput) as caught:
        policy_publish(version=draft, actor=None)
    assert caught.value.field_errors == {
        "document": [
            "stage 1 'x': user 'nobody' does not exist or is not active",
            "stage 1 'x': quorum 3 is larger than its 1 possible approver(s)",
        ]
    }
    draft.refresh_from_db()
    expense.refresh_from_db()
    assert (draft.status, expense.current_policy_id) == ("draft", current)
