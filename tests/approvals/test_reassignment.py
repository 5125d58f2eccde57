"""Reassigning one or many requests (approvals.reassignment): each item its own change,
each with its own result; bad input refused up front, naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group

from accounts.models import User
from accounts.roles import REQUESTERS
from approvals.models import ApprovalRequest, RequestType
from approvals.reassignment import REASON_MAX, requests_reassign
from approvals.services import request_act
from tests.factories import GroupFactory, UserFactory, make_approver, make_request
from tests.workflows.support import db_snapshot
from workflows import errors
from workflows.models import AuditEntry, Handoff, OutboxEvent
from workflows.services import handoff_claim

pytestmark = pytest.mark.django_db


def _open(request: ApprovalRequest) -> Handoff:
    return Handoff.objects.for_instance(request).open().get()


@pytest.fixture
def two(requester: User, request_type: RequestType) -> list[ApprovalRequest]:
    return [
        make_request(requester=requester, request_type=request_type, title=title)
        for title in ("Desk", "Chair")
    ]


@pytest.fixture
def finance() -> Group:
    return GroupFactory.create(name="finance")


@pytest.fixture
def fiona(finance: Group) -> User:
    return make_approver(finance, username="fiona", first_name="Fiona")


def test_a_manager_hands_two_items_to_a_person_with_a_reason(
    two: list[ApprovalRequest], manager: User, fiona: User, approver: User
) -> None:
    # given two requests waiting in the reviewers' queue
    handoffs = [_open(r) for r in two]
    events_before = set(OutboxEvent.objects.values_list("id", flat=True))
    # when the manager hands both to Fiona, saying why
    results = requests_reassign(
        actor=manager, handoff_ids=[h.pk for h in handoffs], to_user=fiona, reason="Reviewers are away"
    )
    # then each item has its result, both went, and each now waits for Fiona
    assert [(r.handoff_id, r.ok, r.request) for r in results] == [
        (h.pk, True, r) for h, r in zip(handoffs, two, strict=True)
    ]
    for request, handoff in zip(two, handoffs, strict=True):
        handoff.refresh_from_db()
        assert (handoff.close_reason, handoff.closed_by) == ("reassigned", manager)
        assert _open(request).assignee == fiona
        # and the audit trail says who, to whom and why
        entry = AuditEntry.objects.for_instance(request).order_by("-seq").first()
        assert entry is not None
        assert (entry.action, entry.actor, entry.comment) == ("reassign", manager, "Reviewers are away")
    # and both holders were told: the reviewers' group and Fiona
    destinations = {e.destination for e in OutboxEvent.objects.exclude(id__in=events_before)}
    assert {f"inbox.user.{fiona.pk}", f"inbox.group.{handoffs[0].candidate_group_id}"} <= destinations


def test_a_batch_reports_each_item_and_leaves_the_failed_as_they_were(
    two: list[ApprovalRequest], manager: User, approver: User, finance: Group, fiona: User
) -> None:
    # given two items, one of which Alex approved meanwhile (its handoff is closed)
    first, second = (_open(r) for r in two)
    request_act(request_id=two[1].pk, action="approve", actor=approver, comment="ok")
    # when the manager hands both to the finance group
    results = requests_reassign(
        actor=manager, handoff_ids=[first.pk, second.pk, 999999], to_group=finance, reason="Finance checks"
    )
    # then the first went, the second failed as closed, the unknown one was not found
    assert [r.ok for r in results] == [True, False, False]
    assert isinstance(results[1].error, errors.TransitionNotAllowed)
    assert "already closed" in results[1].problem
    assert results[1].request == two[1]
    assert isinstance(results[2].error, errors.NotFound)
    assert _open(two[0]).candidate_group == finance
    two[1].refresh_from_db()
    assert two[1].state == "approved"


def test_handing_an_item_to_its_requester_fails_for_that_item_only(
    requester: User, request_type: RequestType, manager: User
) -> None:
    # given two requests: one by Rita, one by Rex
    other = UserFactory.create(username="rex", roles=[REQUESTERS])
    mine = make_request(requester=requester, request_type=request_type)
    theirs = make_request(requester=other, request_type=request_type)
    # when the manager hands both to Rita
    results = requests_reassign(
        actor=manager, handoff_ids=[_open(mine).pk, _open(theirs).pk], to_user=requester, reason="Rita knows"
    )
    # then her own is refused (saying why), the other went to her
    assert [r.ok for r in results] == [False, True]
    assert results[0].problem == "A request cannot be handed to its own requester."
    assert _open(theirs).assignee == requester


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"reason": "  "}, "reason"),
        ({"reason": "x" * (REASON_MAX + 1)}, "reason"),
        ({"to_user": None}, "to_user"),
        ({"handoff_ids": []}, "handoffs"),
    ],
    ids=["no reason", "reason too long", "nobody to hand to", "no items"],
)
def test_bad_input_is_refused_up_front_naming_the_field(
    two: list[ApprovalRequest], manager: User, fiona: User, kwargs: dict, field: str
) -> None:
    # given two items, and a reassignment missing one thing
    call: dict[str, Any] = {
        "actor": manager,
        "handoff_ids": [_open(r).pk for r in two],
        "to_user": fiona,
        "reason": "Why",
    }
    call.update(kwargs)
    before = db_snapshot()
    # when it is sent  /  then InvalidInput names the field, and nothing changed
    with pytest.raises(errors.InvalidInput) as caught:
        requests_reassign(**call)
    assert field in caught.value.field_errors
    assert db_snapshot() == before


def test_someone_who_is_neither_manager_nor_holder_changes_nothing(
    two: list[ApprovalRequest], approver: User, requester: User, outsider: User, fiona: User
) -> None:
    # given two items in the reviewers' queue (Alex may claim them, holds neither)
    ids = [_open(r).pk for r in two]
    before = db_snapshot()
    # when Alex, Rita (who sees her requests) or Olaf (who sees nothing) hands them on
    alex = requests_reassign(actor=approver, handoff_ids=ids, to_user=fiona, reason="mine now")
    rita = requests_reassign(actor=requester, handoff_ids=ids, to_user=fiona, reason="faster")
    olaf = requests_reassign(actor=outsider, handoff_ids=ids, to_user=fiona, reason="why not")
    # then each item is refused: forbidden where they see it, not found where they do not
    assert {type(r.error) for r in alex + rita} == {errors.Forbidden}
    assert {type(r.error) for r in olaf} == {errors.NotFound}
    assert all(r.request is None for r in olaf)
    assert db_snapshot() == before


def test_a_holder_passes_on_their_own_item(two: list[ApprovalRequest], approver: User, fiona: User) -> None:
    # given Alex claimed an item  /  when he hands it to Fiona  /  then it is hers
    claimed = handoff_claim(handoff_id=_open(two[0]).pk, actor=approver)
    (result,) = requests_reassign(actor=approver, handoff_ids=[claimed.pk], to_user=fiona, reason="Holiday")
    assert result.ok
    assert result.successor is not None
    assert result.successor.assignee == fiona
