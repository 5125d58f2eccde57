"""Every domain error of the transition service, through request_act and directly.

Each refusal must leave the database exactly as it was: state, version, handoffs, audit
entries, outbox events and idempotency keys. A refusal writes nothing, so each test tries
both entry points on the same request.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Delegation, User
from approvals.models import ApprovalRequest, RequestType
from approvals.services import COMMENT_MAX, request_act
from tests.factories import make_request
from tests.workflows.support import db_snapshot
from workflows import errors
from workflows.models import Handoff
from workflows.services import SYSTEM, handoff_claim, transition

Act = Callable[..., Any]


def via_request_act(request_id: Any, action: str, **kwargs: Any) -> Any:
    return request_act(request_id=request_id, action=action, **kwargs)


def via_transition(request_id: Any, action: str, **kwargs: Any) -> Any:
    return transition(model=ApprovalRequest, instance_id=request_id, name=action, **kwargs)


ENTRY_POINTS: list[Act] = [via_request_act, via_transition]


def assert_refused(
    error: type[errors.WorkflowError],
    request_id: Any,
    action: str,
    match: str | None = None,
    entry_points: list[Act] = ENTRY_POINTS,
    **kwargs: Any,
) -> errors.WorkflowError:
    """Call each entry point, expect `error` from each, and check that nothing at all was written."""
    caught: list[errors.WorkflowError] = []
    for act in entry_points:
        before = db_snapshot()
        with pytest.raises(error, match=match) as raised:
            act(request_id, action, **kwargs)
        assert db_snapshot() == before, f"{act.__name__} wrote something before refusing"
        caught.append(raised.value)
    # both entry points answer alike
    assert len({(type(e), e.detail, str(e.field_errors)) for e in caught}) == 1 or len(entry_points) == 1
    return caught[0]


def deactivated(user: User) -> User:
    User.objects.filter(pk=user.pk).update(is_active=False)
    return User.objects.get(pk=user.pk)


# --- NotFound ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_missing_request_is_not_found(approver: User, submitted: ApprovalRequest):
    # given a request exists, but not under these ids
    for missing_id in [999_999, "999999", 2**70, 0, -1, None]:
        # when someone acts on a missing id  /  then NotFound (404), and nothing was written
        error = assert_refused(errors.NotFound, missing_id, "approve", actor=approver, comment="ok")
        assert error.http_status == 404


@pytest.mark.django_db
def test_a_malformed_id_is_not_found(approver: User, submitted: ApprovalRequest):
    # given malformed ids (text, SQL, a decimal, a UUID for an integer key, a list)
    for malformed_id in ["abc", "", "1; DROP TABLE x", "1.5", "4f8a7c2e-0000-4000-8000-000000000000", [1]]:
        # when someone acts on one  /  then NotFound, not a crash
        assert_refused(errors.NotFound, malformed_id, "approve", actor=approver, comment="ok")


@pytest.mark.django_db
def test_a_missing_id_with_an_idempotency_key_leaves_no_key(approver: User):
    assert_refused(errors.NotFound, 424242, "approve", actor=approver, idempotency_key="k-missing")


# --- TransitionNotAllowed: the state check comes before the permission check -------------


@pytest.mark.django_db
def test_approving_an_approved_request_is_not_allowed(approved: ApprovalRequest, second_approver: User):
    # given an approved request  /  when another reviewer approves it again
    # then TransitionNotAllowed (a conflict, 409), and nothing was written
    error = assert_refused(errors.TransitionNotAllowed, approved.pk, "approve", actor=second_approver)
    assert error.http_status == 409
    assert "approved" in error.detail


@pytest.mark.django_db
def test_state_is_checked_before_permission(
    approved: ApprovalRequest, outsider: User, requester: User, foreign_approver: User
):
    # given an approved request, and people who could never approve it anyway
    for user in [outsider, requester, foreign_approver, deactivated(foreign_approver)]:
        # when they approve it  /  then the answer is the conflict, not Forbidden
        assert_refused(errors.TransitionNotAllowed, approved.pk, "approve", actor=user, comment="x")
    # and on behalf of someone who delegated nothing, too
    assert_refused(
        errors.TransitionNotAllowed, approved.pk, "approve", actor=outsider, on_behalf_of=requester
    )


@pytest.mark.django_db
def test_submitting_a_request_in_review_is_not_allowed(submitted: ApprovalRequest, requester: User):
    assert_refused(errors.TransitionNotAllowed, submitted.pk, "submit", actor=requester)


@pytest.mark.django_db
def test_the_system_skips_role_checks_but_never_the_state_check(approved: ApprovalRequest):
    # given an approved request  /  when the system tries to approve it  /  then not allowed
    assert_refused(
        errors.TransitionNotAllowed, approved.pk, "approve", entry_points=[via_transition], actor=SYSTEM
    )


@pytest.mark.django_db
def test_the_system_may_act_without_a_role(submitted: ApprovalRequest):
    # given a request in review  /  when the system cancels it (no person, no role)
    result = transition(model=ApprovalRequest, instance_id=submitted.pk, name="cancel", actor=SYSTEM)
    # then it is cancelled, recorded without an actor and marked as the system's doing
    assert result.target == "cancelled"
    assert result.entry.actor_id is None
    assert result.entry.data["system"] is True


# --- Forbidden -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_user_without_the_approver_role_may_not_approve(submitted: ApprovalRequest, outsider: User):
    error = assert_refused(errors.Forbidden, submitted.pk, "approve", "not an approver", actor=outsider)
    assert error.http_status == 403


@pytest.mark.django_db
def test_an_approver_of_another_group_may_not_approve(submitted: ApprovalRequest, foreign_approver: User):
    # given an approver who holds no handoff of this request
    # when they approve  /  then Forbidden: it is not waiting for them
    assert_refused(errors.Forbidden, submitted.pk, "approve", "not waiting for you", actor=foreign_approver)


@pytest.mark.django_db
def test_a_reviewer_may_not_approve_what_a_colleague_claimed(
    submitted: ApprovalRequest, approver: User, second_approver: User
):
    # given the review handoff claimed by one reviewer
    handoff_claim(handoff_id=Handoff.objects.for_instance(submitted).open().get().pk, actor=approver)
    # when the other reviewer approves  /  then Forbidden
    assert_refused(errors.Forbidden, submitted.pk, "approve", "not waiting for you", actor=second_approver)


@pytest.mark.django_db
def test_an_inactive_approver_may_not_approve(submitted: ApprovalRequest, approver: User):
    # given a reviewer whose account was deactivated  /  when they approve  /  then Forbidden
    assert_refused(errors.Forbidden, submitted.pk, "approve", "not active", actor=deactivated(approver))


@pytest.mark.django_db
def test_a_requester_may_not_approve_their_own_request(requesting_approver: User, request_type: RequestType):
    # given a reviewer of the type who submitted a request of it
    own = make_request(requester=requesting_approver, request_type=request_type)
    # when they approve it  /  then Forbidden (separation of duties)
    assert_refused(errors.Forbidden, own.pk, "approve", "your own request", actor=requesting_approver)


@pytest.mark.django_db
def test_a_requester_may_not_decide_their_own_request_through_a_delegation(
    submitted: ApprovalRequest, requester: User, approver: User
):
    # given a reviewer who delegated their work to the requester of a request in review
    Delegation.objects.create(delegator=approver, delegate=requester, reason="holiday")
    for action in ["approve", "reject", "request_changes"]:
        # when the requester decides their own request on the reviewer's behalf
        # then Forbidden: the delegation loophole is closed
        assert_refused(
            errors.Forbidden,
            submitted.pk,
            action,
            "not even on someone's behalf",
            actor=requester,
            on_behalf_of=approver,
            comment="looks fine to me",
        )


@pytest.mark.django_db
def test_acting_on_behalf_without_a_delegation_is_forbidden(
    submitted: ApprovalRequest, approver: User, outsider: User
):
    assert_refused(
        errors.Forbidden, submitted.pk, "approve", "has not delegated", actor=outsider, on_behalf_of=approver
    )


@pytest.mark.django_db
def test_acting_on_an_inactive_delegation_is_forbidden(
    submitted: ApprovalRequest, approver: User, outsider: User
):
    now = timezone.now()
    inactive = {
        "expired": {"starts_at": now - timedelta(days=10), "ends_at": now - timedelta(days=1)},
        "revoked": {"starts_at": now - timedelta(days=1), "revoked_at": now - timedelta(minutes=1)},
        "not started": {"starts_at": now + timedelta(days=1)},
    }
    for times in inactive.values():
        # given a delegation from the reviewer to a colleague that is over, revoked, or not yet started
        delegation = Delegation.objects.create(delegator=approver, delegate=outsider, **times)
        # when the colleague approves on the reviewer's behalf  /  then Forbidden
        assert_refused(
            errors.Forbidden,
            submitted.pk,
            "approve",
            "has not delegated",
            actor=outsider,
            on_behalf_of=approver,
        )
        delegation.delete()


@pytest.mark.django_db
def test_a_delegate_acting_for_a_non_approver_is_forbidden(
    submitted: ApprovalRequest, approver: User, outsider: User
):
    # given an active delegation from someone who may not approve, to a reviewer
    Delegation.objects.create(delegator=outsider, delegate=approver)
    # when the reviewer approves on their behalf  /  then Forbidden: the principal's rights count
    assert_refused(
        errors.Forbidden, submitted.pk, "approve", "not an approver", actor=approver, on_behalf_of=outsider
    )


@pytest.mark.django_db
def test_only_the_requester_may_withdraw_and_only_a_manager_may_cancel(
    submitted: ApprovalRequest, approver: User
):
    assert_refused(errors.Forbidden, submitted.pk, "withdraw", "Only the requester", actor=approver)
    assert_refused(errors.Forbidden, submitted.pk, "cancel", "Only a manager", actor=approver)


# --- StaleVersion ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_stale_version_is_refused(submitted: ApprovalRequest, approver: User):
    # given a request at version v
    for expected in [submitted.version - 1, submitted.version + 1]:
        # when a reviewer approves expecting another version  /  then StaleVersion (409)
        error = assert_refused(
            errors.StaleVersion,
            submitted.pk,
            "approve",
            f"version {submitted.version}",
            actor=approver,
            expected_version=expected,
        )
        assert error.http_status == 409


@pytest.mark.django_db
@pytest.mark.parametrize("act", ENTRY_POINTS)
def test_the_expected_version_passes_and_moves_on_by_one(
    submitted: ApprovalRequest, approver: User, act: Act
):
    result = act(submitted.pk, "approve", actor=approver, expected_version=submitted.version)
    assert result.instance.version == submitted.version + 1
    assert ApprovalRequest.objects.get(pk=submitted.pk).version == submitted.version + 1


# --- DuplicateKey ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_key_reused_on_another_request_is_a_duplicate(
    requester: User, request_type: RequestType, approver: User
):
    # given a reviewer who approved one request with a key
    first = make_request(requester=requester, request_type=request_type, title="first")
    second = make_request(requester=requester, request_type=request_type, title="second")
    request_act(request_id=first.pk, action="approve", actor=approver, idempotency_key="key-1")
    # when they use the same key to approve another request
    # then DuplicateKey (422), and the second request is untouched
    error = assert_refused(
        errors.DuplicateKey, second.pk, "approve", "key-1", actor=approver, idempotency_key="key-1"
    )
    assert error.http_status == 422


@pytest.mark.django_db
def test_a_key_reused_for_a_different_call_is_a_duplicate(submitted: ApprovalRequest, approver: User):
    # given a request approved with a key
    request_act(
        request_id=submitted.pk, action="approve", actor=approver, comment="ok", idempotency_key="key-2"
    )
    different_calls: list[dict[str, Any]] = [
        {"action": "reject", "comment": "no"},
        {"action": "approve", "comment": "a different comment"},
        {"action": "approve", "comment": "ok", "data": {"note": "extra"}},
    ]
    for call in different_calls:
        # when the same reviewer sends the key with a different action, comment or data
        # then DuplicateKey: the key is checked first, before the state
        assert_refused(errors.DuplicateKey, submitted.pk, actor=approver, idempotency_key="key-2", **call)


# --- InvalidInput ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_unknown_action_is_invalid(submitted: ApprovalRequest, approver: User):
    # given a request
    for action in ["explode", "save", "_lock", "state", "workflow_prepare", "delete"]:
        # when someone asks for a name that is no lifecycle action of it
        for act in ENTRY_POINTS:
            error = assert_refused(
                errors.InvalidInput, submitted.pk, action, entry_points=[act], actor=approver
            )
            # then InvalidInput (400) naming the field 'action'
            assert "action" in error.field_errors
            assert error.http_status == 400


@pytest.mark.django_db
def test_a_decision_against_the_request_needs_a_comment(submitted: ApprovalRequest, approver: User):
    for action in ["reject", "request_changes"]:
        for comment in ["", "   \n\t "]:
            error = assert_refused(errors.InvalidInput, submitted.pk, action, actor=approver, comment=comment)
            assert list(error.field_errors) == ["comment"]


@pytest.mark.django_db
def test_bad_resubmit_fields_are_invalid(changes_requested: ApprovalRequest, requester: User):
    # given a request sent back for changes
    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"title": ""}, ["title"]),
        ({"title": "   "}, ["title"]),
        ({"title": "x" * 201}, ["title"]),
        ({"requester": 1}, ["requester"]),
        ({"payload": "not an object"}, ["payload"]),
        ({"title": "", "state": "approved", "payload": []}, ["payload", "state", "title"]),
    ]
    for data, bad_fields in cases:
        # when the requester resubmits with bad fields
        error = assert_refused(
            errors.InvalidInput, changes_requested.pk, "resubmit", actor=requester, data=data
        )
        # then InvalidInput names each bad field
        assert sorted(error.field_errors) == bad_fields


@pytest.mark.django_db
@pytest.mark.parametrize("act", ENTRY_POINTS)
def test_good_resubmit_fields_are_applied(changes_requested: ApprovalRequest, requester: User, act: Act):
    data = {"title": "  Buy two desks ", "description": "with quote"}
    result = act(changes_requested.pk, "resubmit", actor=requester, data=data)
    assert (result.instance.state, result.instance.title) == ("in_review", "Buy two desks")
    assert result.entry.data["changes"]["title"] == ["Buy a desk", "Buy two desks"]


@pytest.mark.django_db
def test_a_too_long_comment_is_invalid(submitted: ApprovalRequest, approver: User):
    # given a comment one character over the limit  /  when a reviewer approves with it
    error = assert_refused(
        errors.InvalidInput,
        submitted.pk,
        "approve",
        entry_points=[via_request_act],
        actor=approver,
        comment="x" * (COMMENT_MAX + 1),
    )
    # then InvalidInput on 'comment'; a comment of exactly the limit is accepted
    assert list(error.field_errors) == ["comment"]
    result = request_act(request_id=submitted.pk, action="approve", actor=approver, comment="y" * COMMENT_MAX)
    assert len(result.entry.comment) == COMMENT_MAX


@pytest.mark.django_db
def test_a_bad_idempotency_key_is_invalid(submitted: ApprovalRequest, approver: User):
    # a key over 200 characters
    error = assert_refused(
        errors.InvalidInput, submitted.pk, "approve", actor=approver, idempotency_key="k" * 201
    )
    assert list(error.field_errors) == ["idempotency_key"]
    # a key from the system, which is no person
    error = assert_refused(
        errors.InvalidInput,
        submitted.pk,
        "cancel",
        entry_points=[via_transition],
        actor=SYSTEM,
        idempotency_key="k",
    )
    assert list(error.field_errors) == ["idempotency_key"]
