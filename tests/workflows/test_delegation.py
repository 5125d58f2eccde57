"""Acting on someone's behalf: both people are on record, and the principal's handoff is done."""

from __future__ import annotations

import pytest
from django.utils import timezone

from accounts.models import Delegation, User
from approvals.models import ApprovalRequest
from approvals.services import request_act
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
