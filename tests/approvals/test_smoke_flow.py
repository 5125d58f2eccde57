import pytest

from approvals.services import request_act
from tests.factories import make_request
from workflows.models import AuditEntry, Handoff


@pytest.mark.django_db
def test_submitted_request_is_approved_by_an_approver(requester, approver, request_type):
    # given a submitted request
    req = make_request(requester=requester, request_type=request_type)
    assert req.state == "in_review"
    # when an approver of the type's group approves it
    result = request_act(request_id=req.pk, action="approve", actor=approver, comment="ok")
    # then it is approved, its review handoff is closed and the chain has three entries
    assert result.instance.state == "approved"
    assert not Handoff.objects.for_instance(req).open().exists()
    assert list(AuditEntry.objects.for_instance(req).order_by("seq").values_list("action", flat=True)) == [
        "create",
        "submit",
        "approve",
    ]
