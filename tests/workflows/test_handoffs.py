"""Handoffs: claim, unclaim and reassign, each recorded, announced, and all-or-nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.models import User
from approvals.models import ApprovalRequest, RequestType
from approvals.services import request_act
from tests.factories import make_request
from tests.workflows.support import db_snapshot
from workflows import errors
from workflows.audit import audit_verify
from workflows.models import AuditEntry, Handoff, OutboxEvent
from workflows.services import handoff_claim, handoff_reassign, handoff_unclaim, instance_channel_group
from workflows.webhooks.events import FANOUT_TASK


def review_handoff(request: ApprovalRequest) -> Handoff:
    return Handoff.objects.for_instance(request).open().get()


def refused(call: Any, error: type[errors.WorkflowError], match: str | None = None, **kwargs: Any) -> Any:
    """Call a handoff service, expect `error`, and check that nothing was written."""
    before = db_snapshot()
    with pytest.raises(error, match=match) as caught:
        call(**kwargs)
    assert db_snapshot() == before
    return caught.value


def new_events(before: set[Any]) -> list[OutboxEvent]:
    return list(OutboxEvent.objects.exclude(id__in=before))


def deactivated(user: User) -> User:
    User.objects.filter(pk=user.pk).update(is_active=False)
    return User.objects.get(pk=user.pk)


# --- claim -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_group_member_claims_a_handoff(
    submitted: ApprovalRequest, approver: User, approver_group: Group, requester: User
):
    # given a request in review offered to the reviewers group
    handoff = review_handoff(submitted)
    events_before = set(OutboxEvent.objects.values_list("id", flat=True))
    # when a reviewer claims it
    claimed = handoff_claim(handoff_id=handoff.pk, actor=approver)
    # then they hold it, the handoff stays open, and the claim is on record
    assert (claimed.pk, claimed.assignee_id, claimed.candidate_group_id) == (
        handoff.pk,
        approver.pk,
        approver_group.pk,
    )
    assert claimed.claimed_at is not None
    assert claimed.closed_at is None
    entry = AuditEntry.objects.for_instance(submitted).order_by("-seq").first()
    assert entry is not None
    assert (entry.kind, entry.action, entry.source, entry.target) == (
        "handoff",
        "claim",
        "in_review",
        "in_review",
    )
    assert (entry.actor_id, entry.on_behalf_of_id) == (approver.pk, None)
    assert entry.data == {"handoff": handoff.pk, "user": approver.pk, "group": approver_group.pk}
    # and the claimer, the group, the requester and the request's watchers are told
    events = new_events(events_before)
    assert {e.destination for e in events} == {
        f"inbox.user.{approver.pk}",
        f"inbox.group.{approver_group.pk}",
        f"inbox.user.{requester.pk}",
        instance_channel_group(submitted),
        FANOUT_TASK,  # and its webhook subscribers, through the fan-out task
    }
    assert {e.payload["topic"] for e in events if e.kind == OutboxEvent.Kind.CHANNEL} == {"handoff.changed"}
    assert audit_verify().ok


@pytest.mark.django_db
def test_a_claimed_request_waits_only_for_its_claimer(
    submitted: ApprovalRequest, approver: User, second_approver: User
):
    # given a review claimed by one reviewer
    handoff_claim(handoff_id=review_handoff(submitted).pk, actor=approver)
    # when a colleague approves it  /  then Forbidden, while the claimer may
    with pytest.raises(errors.Forbidden):
        request_act(request_id=submitted.pk, action="approve", actor=second_approver)
    assert request_act(request_id=submitted.pk, action="approve", actor=approver).target == "approved"


@pytest.mark.django_db
def test_only_group_members_may_claim(submitted: ApprovalRequest, outsider: User, foreign_approver: User):
    for user in (outsider, foreign_approver):
        refused(
            handoff_claim,
            errors.Forbidden,
            "Only members",
            handoff_id=review_handoff(submitted).pk,
            actor=user,
        )


@pytest.mark.django_db
def test_an_inactive_member_may_not_claim(submitted: ApprovalRequest, approver: User):
    refused(
        handoff_claim, errors.Forbidden, handoff_id=review_handoff(submitted).pk, actor=deactivated(approver)
    )


@pytest.mark.django_db
def test_a_handoff_is_not_claimed_twice(submitted: ApprovalRequest, approver: User, second_approver: User):
    # given a claimed review
    handoff = handoff_claim(handoff_id=review_handoff(submitted).pk, actor=approver)
    # when the claimer claims again, or a colleague tries  /  then TransitionNotAllowed
    refused(
        handoff_claim, errors.TransitionNotAllowed, "claimed by you", handoff_id=handoff.pk, actor=approver
    )
    refused(
        handoff_claim,
        errors.TransitionNotAllowed,
        "already claimed",
        handoff_id=handoff.pk,
        actor=second_approver,
    )


@pytest.mark.django_db
def test_the_requester_may_not_claim_their_own_request(requesting_approver: User, request_type: RequestType):
    # given a reviewer's own request, offered to their group
    own = make_request(requester=requesting_approver, request_type=request_type)
    # when they claim it  /  then Forbidden
    refused(
        handoff_claim,
        errors.Forbidden,
        "own requester",
        handoff_id=review_handoff(own).pk,
        actor=requesting_approver,
    )


@pytest.mark.django_db
def test_a_closed_handoff_cannot_be_claimed(
    submitted: ApprovalRequest, approver: User, second_approver: User
):
    handoff = review_handoff(submitted)
    request_act(request_id=submitted.pk, action="approve", actor=approver)
    refused(
        handoff_claim, errors.TransitionNotAllowed, "closed", handoff_id=handoff.pk, actor=second_approver
    )


@pytest.mark.django_db
def test_claim_checks_the_handoff_before_the_delegation(
    submitted: ApprovalRequest, approver: User, second_approver: User, outsider: User
):
    # given a review already claimed, and someone with no delegation from the reviewer
    handoff = handoff_claim(handoff_id=review_handoff(submitted).pk, actor=approver)
    # when they claim it "on behalf" of a colleague  /  then the conflict answers, not Forbidden
    refused(
        handoff_claim,
        errors.TransitionNotAllowed,
        "already claimed",
        handoff_id=handoff.pk,
        actor=outsider,
        on_behalf_of=second_approver,
    )


@pytest.mark.django_db
def test_claiming_on_behalf_without_a_delegation_is_forbidden(
    submitted: ApprovalRequest, approver: User, outsider: User
):
    refused(
        handoff_claim,
        errors.Forbidden,
        "has not delegated",
        handoff_id=review_handoff(submitted).pk,
        actor=outsider,
        on_behalf_of=approver,
    )


@pytest.mark.django_db
def test_a_missing_handoff_is_not_found(approver: User):
    for handoff_id in (987_654, "nope", None):
        refused(handoff_claim, errors.NotFound, handoff_id=handoff_id, actor=approver)
        refused(handoff_unclaim, errors.NotFound, handoff_id=handoff_id, actor=approver)
        refused(
            handoff_reassign,
            errors.NotFound,
            handoff_id=handoff_id,
            actor=approver,
            to_user=approver,
            reason="x",
        )


# --- unclaim ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("by", ["approver", "manager"])
def test_the_holder_or_a_manager_gives_a_claim_back(
    submitted: ApprovalRequest, approver: User, approver_group: Group, by: str, request: pytest.FixtureRequest
):
    # given a review claimed by a reviewer
    handoff = handoff_claim(handoff_id=review_handoff(submitted).pk, actor=approver)
    actor: User = request.getfixturevalue(by)
    events_before = set(OutboxEvent.objects.values_list("id", flat=True))
    # when the reviewer (or a manager) releases it
    released = handoff_unclaim(handoff_id=handoff.pk, actor=actor)
    # then it is offered to the group again, and the release is on record
    assert (released.assignee_id, released.claimed_at, released.closed_at) == (None, None, None)
    entry = AuditEntry.objects.for_instance(submitted).order_by("-seq").first()
    assert entry is not None
    assert (entry.action, entry.actor_id) == ("unclaim", actor.pk)
    assert entry.data == {"handoff": handoff.pk, "user": approver.pk, "group": approver_group.pk}
    # and the former holder and the group are told
    destinations = {e.destination for e in new_events(events_before)}
    assert {f"inbox.user.{approver.pk}", f"inbox.group.{approver_group.pk}"} <= destinations
    assert audit_verify().ok


@pytest.mark.django_db
def test_others_may_not_release_a_claim(
    submitted: ApprovalRequest, approver: User, second_approver: User, outsider: User
):
    handoff = handoff_claim(handoff_id=review_handoff(submitted).pk, actor=approver)
    for user in (second_approver, outsider):
        refused(handoff_unclaim, errors.Forbidden, handoff_id=handoff.pk, actor=user)


@pytest.mark.django_db
def test_an_inactive_holder_may_not_release_a_claim(submitted: ApprovalRequest, approver: User):
    handoff = handoff_claim(handoff_id=review_handoff(submitted).pk, actor=approver)
    refused(handoff_unclaim, errors.Forbidden, handoff_id=handoff.pk, actor=deactivated(approver))


@pytest.mark.django_db
def test_only_a_claimed_open_handoff_can_be_released(
    submitted: ApprovalRequest, approver: User, manager: User
):
    handoff = review_handoff(submitted)
    refused(handoff_unclaim, errors.TransitionNotAllowed, "not claimed", handoff_id=handoff.pk, actor=manager)
    request_act(request_id=submitted.pk, action="approve", actor=approver)
    refused(handoff_unclaim, errors.TransitionNotAllowed, "closed", handoff_id=handoff.pk, actor=manager)


# --- reassign --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_manager_reassigns_a_handoff(
    submitted: ApprovalRequest,
    manager: User,
    approver: User,
    second_approver: User,
    approver_group: Group,
    requester: User,
):
    # given a review claimed by one reviewer, due tomorrow
    due = timezone.now() + timedelta(days=1)
    old = review_handoff(submitted)
    Handoff.objects.filter(pk=old.pk).update(due_at=due)
    handoff_claim(handoff_id=old.pk, actor=approver)
    events_before = set(OutboxEvent.objects.values_list("id", flat=True))
    # when a manager hands it to a colleague in the same group, saying why
    successor = handoff_reassign(
        handoff_id=old.pk,
        actor=manager,
        to_user=second_approver,
        to_group=approver_group,
        reason="Alex is ill",
    )
    # then the old handoff is closed as reassigned, pointing at its successor
    old.refresh_from_db()
    assert old.close_reason == Handoff.CloseReason.REASSIGNED
    assert (old.closed_by_id, old.replaced_by_id, old.assignee_id) == (manager.pk, successor.pk, approver.pk)
    assert old.closed_at is not None
    # and the successor is open, held by the colleague, with the same stage and due date
    successor.refresh_from_db()
    assert successor.closed_at is None
    assert (successor.assignee_id, successor.candidate_group_id) == (second_approver.pk, approver_group.pk)
    assert (successor.stage, successor.due_at, successor.opened_by_id) == ("review", due, manager.pk)
    assert successor.claimed_at is not None
    assert list(Handoff.objects.for_instance(submitted).open()) == [successor]
    # and a 'reassign' entry names the manager, the reason, who held it and who holds it now
    entry = AuditEntry.objects.for_instance(submitted).order_by("-seq").first()
    assert entry is not None
    assert (entry.kind, entry.action, entry.actor_id, entry.comment) == (
        "handoff",
        "reassign",
        manager.pk,
        "Alex is ill",
    )
    assert (entry.data["from"]["id"], entry.data["from"]["user"]) == (old.pk, approver.pk)
    assert (entry.data["to"]["id"], entry.data["to"]["user"]) == (successor.pk, second_approver.pk)
    # and the old holder, the new holder, the group and the requester are told live, and
    # the two holders by a notification (the task)
    destinations = {e.destination for e in new_events(events_before)}
    assert destinations == {
        f"inbox.user.{approver.pk}",
        f"inbox.user.{second_approver.pk}",
        f"inbox.group.{approver_group.pk}",
        f"inbox.user.{requester.pk}",
        instance_channel_group(submitted),
        "approvals.notify_transition",
        FANOUT_TASK,
    }
    # and the new holder decides, the old one no longer may
    with pytest.raises(errors.Forbidden):
        request_act(request_id=submitted.pk, action="approve", actor=approver)
    assert request_act(request_id=submitted.pk, action="approve", actor=second_approver).target == "approved"
    assert audit_verify().ok


@pytest.mark.django_db
def test_a_holder_passes_their_own_handoff_on(
    submitted: ApprovalRequest, approver: User, foreign_approver: User
):
    # given a review claimed by a reviewer
    old = handoff_claim(handoff_id=review_handoff(submitted).pk, actor=approver)
    # when they pass it to a person outside the group
    successor = handoff_reassign(
        handoff_id=old.pk, actor=approver, to_user=foreign_approver, reason="legal question"
    )
    # then that person alone holds it (no group) and may decide
    assert (successor.assignee_id, successor.candidate_group_id) == (foreign_approver.pk, None)
    assert request_act(request_id=submitted.pk, action="approve", actor=foreign_approver).target == "approved"


@pytest.mark.django_db
def test_a_manager_hands_a_request_to_another_group(
    submitted: ApprovalRequest, manager: User, foreign_approver: User
):
    # given a review offered to the reviewers  /  when a manager hands it to the legal group
    legal = Group.objects.get(name="legal")
    successor = handoff_reassign(
        handoff_id=review_handoff(submitted).pk, actor=manager, to_group=legal, reason="legal"
    )
    # then it is offered unclaimed to legal, whose members may claim it
    assert (successor.assignee_id, successor.candidate_group_id, successor.claimed_at) == (
        None,
        legal.pk,
        None,
    )
    assert handoff_claim(handoff_id=successor.pk, actor=foreign_approver).assignee_id == foreign_approver.pk


@pytest.mark.django_db
def test_reassignments_chain(
    submitted: ApprovalRequest, manager: User, approver: User, second_approver: User
):
    # given a review reassigned twice
    first = review_handoff(submitted)
    second = handoff_reassign(handoff_id=first.pk, actor=manager, to_user=approver, reason="one")
    third = handoff_reassign(handoff_id=second.pk, actor=manager, to_user=second_approver, reason="two")
    # then each handoff points to its successor and only the last is open
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.replaced_by_id, second.replaced_by_id) == (second.pk, third.pk)
    assert [h.pk for h in Handoff.objects.for_instance(submitted).open()] == [third.pk]
    actions = list(
        AuditEntry.objects.for_instance(submitted).order_by("seq").values_list("action", flat=True)
    )
    assert actions == ["create", "submit", "reassign", "reassign"]


@pytest.mark.django_db
def test_only_a_manager_or_the_holder_may_reassign(
    submitted: ApprovalRequest, approver: User, second_approver: User, outsider: User
):
    # given a review offered unclaimed to the group: a member does not hold it yet
    for user in (approver, outsider):
        refused(
            handoff_reassign,
            errors.Forbidden,
            "manager or the item's holder",
            handoff_id=review_handoff(submitted).pk,
            actor=user,
            to_user=second_approver,
            reason="mine now",
        )
    # and once a colleague claimed it, a member who is not the holder still may not
    claimed = handoff_claim(handoff_id=review_handoff(submitted).pk, actor=second_approver)
    refused(
        handoff_reassign,
        errors.Forbidden,
        handoff_id=claimed.pk,
        actor=approver,
        to_user=approver,
        reason="x",
    )


@pytest.mark.django_db
def test_an_inactive_manager_may_not_reassign(submitted: ApprovalRequest, manager: User, approver: User):
    refused(
        handoff_reassign,
        errors.Forbidden,
        handoff_id=review_handoff(submitted).pk,
        actor=deactivated(manager),
        to_user=approver,
        reason="x",
    )


@pytest.mark.django_db
def test_reassign_input_is_checked(
    submitted: ApprovalRequest,
    manager: User,
    approver: User,
    foreign_approver: User,
    approver_group: Group,
    outsider: User,
):
    handoff_id = review_handoff(submitted).pk
    cases: list[tuple[dict[str, Any], str]] = [
        ({"to_user": approver, "reason": ""}, "reason"),
        ({"to_user": approver, "reason": "   "}, "reason"),
        ({"reason": "nobody"}, "to_user"),
        ({"to_user": deactivated(outsider), "reason": "x"}, "to_user"),
        ({"to_user": foreign_approver, "to_group": approver_group, "reason": "x"}, "to_user"),
    ]
    for kwargs, field in cases:
        # when a manager reassigns with incomplete or contradictory input
        error = refused(handoff_reassign, errors.InvalidInput, handoff_id=handoff_id, actor=manager, **kwargs)
        # then InvalidInput names the field
        assert field in error.field_errors


@pytest.mark.django_db
def test_a_request_is_never_handed_to_its_requester(
    submitted: ApprovalRequest, manager: User, requester: User, approver_group: Group
):
    # given the requester joined the reviewers group
    requester.groups.add(approver_group)
    for to_group in (None, approver_group):
        error = refused(
            handoff_reassign,
            errors.InvalidInput,
            "own requester",
            handoff_id=review_handoff(submitted).pk,
            actor=manager,
            to_user=requester,
            to_group=to_group,
            reason="x",
        )
        assert "to_user" in error.field_errors


@pytest.mark.django_db
def test_a_closed_handoff_cannot_be_reassigned(submitted: ApprovalRequest, manager: User, approver: User):
    handoff = review_handoff(submitted)
    request_act(request_id=submitted.pk, action="approve", actor=approver)
    refused(
        handoff_reassign,
        errors.TransitionNotAllowed,
        "closed",
        handoff_id=handoff.pk,
        actor=manager,
        to_user=approver,
        reason="x",
    )
