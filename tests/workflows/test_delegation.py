"""Acting on someone's behalf: both people are on record, and the principal's handoff is done."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import Delegation, User
from accounts.roles import REQUESTERS, roles_sync
from approvals.models import ApprovalRequest, RequestType
from approvals.services import request_act
from tests.factories import make_request
from workflows import errors
from workflows.audit import audit_verify
from workflows.models import AuditEntry, Handoff
from workflows.services import handoff_claim


@pytest.mark.django_db
@pytest.mark.parametrize("claimed_first", [False, True], ids=["group-handoff", "claimed-by-principal"])
def test_a_delegate_approves_on_behalf_of_a_reviewer(
    submitted: ApprovalRequest, approver: User, outsider: User, claimed_first: bool
):
    # given a reviewer out of office who delegated their work to a colleague with no role
    Delegation.objects.create(delegator=approver, delegate=outsider, reason="holiday")
    handoff = Handoff.objects.for_instance(submitted).open().get()
    if claimed_first:
        handoff_claim(handoff_id=handoff.pk, actor=approver)
    # when the colleague approves on the reviewer's behalf
    result = request_act(
        request_id=submitted.pk, action="approve", actor=outsider, on_behalf_of=approver, comment="per Alex"
    )
    # then the request is approved and the audit entry names both people
    assert result.target == "approved"
    entry = AuditEntry.objects.get(pk=result.entry.pk)
    assert (entry.actor_id, entry.on_behalf_of_id) == (outsider.pk, approver.pk)
    assert entry.comment == "per Alex"
    # and the reviewer's handoff closed as done, by the person who acted
    handoff.refresh_from_db()
    assert handoff.close_reason == Handoff.CloseReason.DONE
    assert handoff.closed_by_id == outsider.pk
    assert entry.data["handoffs"]["closed"] == [
        {"id": handoff.pk, "reason": "done", "user": handoff.assignee_id, "group": handoff.candidate_group_id}
    ]
    assert audit_verify().ok


@pytest.mark.django_db
def test_acting_on_ones_own_behalf_records_no_principal(submitted: ApprovalRequest, approver: User):
    # given a reviewer  /  when they approve naming themselves as principal
    result = request_act(request_id=submitted.pk, action="approve", actor=approver, on_behalf_of=approver)
    # then the entry records only the actor
    assert (result.entry.actor_id, result.entry.on_behalf_of_id) == (approver.pk, None)


@pytest.mark.django_db
def test_a_delegate_claims_for_the_principal(submitted: ApprovalRequest, approver: User, outsider: User):
    # given a reviewer who delegated to a colleague outside the reviewers group
    Delegation.objects.create(delegator=approver, delegate=outsider)
    handoff = Handoff.objects.for_instance(submitted).open().get()
    # when the colleague claims the review on the reviewer's behalf
    claimed = handoff_claim(handoff_id=handoff.pk, actor=outsider, on_behalf_of=approver)
    # then the reviewer holds it, and the claim entry names both people
    assert claimed.assignee_id == approver.pk
    entry = AuditEntry.objects.for_instance(submitted).get(action="claim")
    assert (entry.actor_id, entry.on_behalf_of_id) == (outsider.pk, approver.pk)
    assert entry.data == {"handoff": handoff.pk, "user": approver.pk, "group": handoff.candidate_group_id}


@pytest.mark.django_db
def test_a_delegation_ends_when_revoked(submitted: ApprovalRequest, approver: User, outsider: User):
    # given a delegation that was used once and then revoked
    delegation = Delegation.objects.create(delegator=approver, delegate=outsider)
    handoff = Handoff.objects.for_instance(submitted).open().get()
    handoff_claim(handoff_id=handoff.pk, actor=outsider, on_behalf_of=approver)
    Delegation.objects.filter(pk=delegation.pk).update(revoked_at=timezone.now())
    # when the colleague tries to approve on the reviewer's behalf  /  then Forbidden
    with pytest.raises(errors.Forbidden, match="has not delegated"):
        request_act(request_id=submitted.pk, action="approve", actor=outsider, on_behalf_of=approver)


# --- scope, chaining, and the delegator's own requests ---------------------------------


@pytest.mark.django_db
def test_a_delegation_reaches_only_the_request_types_it_lists(
    submitted: ApprovalRequest, approver: User, outsider: User
):
    # given a reviewer who delegated only their 'travel' requests to a colleague
    Delegation.objects.create(delegator=approver, delegate=outsider, scope=["travel"])
    # when the colleague approves a 'general' request on the reviewer's behalf
    # then Forbidden: the delegation does not reach this type, and nothing was written
    before = AuditEntry.objects.count()
    with pytest.raises(errors.Forbidden, match="has not delegated this work"):
        request_act(request_id=submitted.pk, action="approve", actor=outsider, on_behalf_of=approver)
    assert AuditEntry.objects.count() == before
    # when the delegation is widened to 'general' too
    Delegation.objects.update(scope=["travel", "general"])
    result = request_act(request_id=submitted.pk, action="approve", actor=outsider, on_behalf_of=approver)
    # then it works, and both people are on record
    assert (result.target, result.entry.actor_id, result.entry.on_behalf_of_id) == (
        "approved",
        outsider.pk,
        approver.pk,
    )


@pytest.mark.django_db
def test_a_scoped_delegation_does_not_let_the_delegate_claim_other_types(
    submitted: ApprovalRequest, approver: User, outsider: User
):
    # given a reviewer who delegated only 'travel' requests
    Delegation.objects.create(delegator=approver, delegate=outsider, scope=["travel"])
    handoff = Handoff.objects.for_instance(submitted).open().get()
    # when the colleague claims a 'general' request's review for the reviewer  /  then Forbidden
    with pytest.raises(errors.Forbidden, match="has not delegated"):
        handoff_claim(handoff_id=handoff.pk, actor=outsider, on_behalf_of=approver)
    handoff.refresh_from_db()
    assert handoff.assignee_id is None


@pytest.mark.django_db
def test_a_delegation_never_chains(
    submitted: ApprovalRequest, approver: User, outsider: User, second_approver: User
):
    # given the reviewer Alex delegated to Olaf, and Olaf delegated to Bea
    Delegation.objects.create(delegator=approver, delegate=outsider)
    Delegation.objects.create(delegator=outsider, delegate=second_approver)
    # when Bea approves on Alex's behalf  /  then Forbidden: Alex delegated nothing to her
    with pytest.raises(errors.Forbidden, match="has not delegated"):
        request_act(request_id=submitted.pk, action="approve", actor=second_approver, on_behalf_of=approver)
    # and Bea acting for Olaf gets Olaf's rights, which decide nothing here
    with pytest.raises(errors.Forbidden, match="not an approver"):
        request_act(request_id=submitted.pk, action="approve", actor=second_approver, on_behalf_of=outsider)
    submitted.refresh_from_db()
    assert submitted.state == "in_review"


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["withdraw", "resubmit"])
def test_a_delegate_never_acts_on_the_delegators_own_request(
    submitted: ApprovalRequest,
    changes_requested: ApprovalRequest,
    requester: User,
    outsider: User,
    action: str,
):
    # given a requester who delegated all their work to a colleague
    Delegation.objects.create(delegator=requester, delegate=outsider)
    target = changes_requested if action == "resubmit" else submitted
    target.refresh_from_db()
    before = (target.state, target.version, AuditEntry.objects.count())
    # when the colleague withdraws (or resubmits) the requester's own request for them
    with pytest.raises(errors.Forbidden, match="own item"):
        request_act(request_id=target.pk, action=action, actor=outsider, on_behalf_of=requester)
    # then nothing changed
    target.refresh_from_db()
    assert (target.state, target.version, AuditEntry.objects.count()) == before


@pytest.mark.django_db
def test_a_delegate_never_cancels_a_managers_own_request(
    request_type: RequestType, manager: User, outsider: User, requester: User
):
    # given a manager (who may cancel requests) with a request of their own in review
    manager.groups.add(roles_sync()[REQUESTERS])
    own = make_request(requester=manager, request_type=request_type)
    Delegation.objects.create(delegator=manager, delegate=outsider)
    # when the delegate cancels it for the manager  /  then Forbidden
    with pytest.raises(errors.Forbidden, match="own item"):
        request_act(
            request_id=own.pk, action="cancel", actor=outsider, on_behalf_of=manager, comment="Not needed"
        )
    # while a request of someone else, the manager's delegate may cancel for them
    other = make_request(requester=requester, request_type=request_type)
    result = request_act(
        request_id=other.pk, action="cancel", actor=outsider, on_behalf_of=manager, comment="Not needed"
    )
    assert (result.target, result.entry.on_behalf_of_id) == ("cancelled", manager.pk)


@pytest.mark.django_db
def test_an_inactive_delegator_delegates_nothing(submitted: ApprovalRequest, approver: User, outsider: User):
    # given a reviewer who delegated, then left (deactivated)
    Delegation.objects.create(delegator=approver, delegate=outsider)
    User.objects.filter(pk=approver.pk).update(is_active=False)
    approver.refresh_from_db()
    # when the delegate approves on their behalf  /  then Forbidden
    with pytest.raises(errors.Forbidden):
        request_act(request_id=submitted.pk, action="approve", actor=outsider, on_behalf_of=approver)
