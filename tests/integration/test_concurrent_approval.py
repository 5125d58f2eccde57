"""50 approvers press 'approve' on the same request at the same moment, on PostgreSQL.

The row lock (SELECT ... FOR UPDATE) must serialise them: one decision, one audit entry,
one set of outbox events; everyone else gets a clear conflict (409), never a second
approval, a deadlock or a broken chain.
"""

from __future__ import annotations

from collections import Counter

import pytest
from django.db import connection

from approvals.models import ApprovalRequest
from approvals.services import request_act
from tests.factories import make_approver, make_request
from tests.integration.conftest import run_concurrently
from workflows import errors
from workflows.audit import audit_verify
from workflows.models import AuditEntry, Handoff, OutboxEvent

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ACTORS = 50


@pytest.fixture
def fifty_approvers(approver_group):
    return [make_approver(approver_group, username=f"approver{i:02d}") for i in range(ACTORS)]


@pytest.fixture(autouse=True)
def enough_connections():
    # Each actor holds its own connection; the test process holds one more.
    with connection.cursor() as cursor:
        cursor.execute("SHOW max_connections")
        (max_connections,) = cursor.fetchone()
    assert int(max_connections) >= ACTORS + 10, (
        f"PostgreSQL max_connections={max_connections} is too low for {ACTORS} concurrent actors"
    )


def _approve_events(request: ApprovalRequest) -> tuple[list[str], int]:
    """Destinations of the channel events and the number of task events of 'approve'."""
    ref = request.workflow_ref()
    channel = list(
        OutboxEvent.objects.filter(
            kind=OutboxEvent.Kind.CHANNEL, payload__ref=ref, payload__action="approve"
        ).values_list("destination", flat=True)
    )
    tasks = OutboxEvent.objects.filter(
        kind=OutboxEvent.Kind.TASK,
        payload__kwargs__request_id=request.pk,
        payload__kwargs__action="approve",
    ).count()
    return channel, tasks


def _assert_exactly_one_approval(request: ApprovalRequest, winner) -> None:
    request.refresh_from_db()
    assert request.state == "approved"
    # one more version than the submitted request had: one transition happened
    assert request.version == 3
    approvals = list(AuditEntry.objects.for_instance(request).filter(action="approve"))
    assert len(approvals) == 1
    assert approvals[0].actor_id == winner.pk
    assert list(AuditEntry.objects.for_instance(request).order_by("seq").values_list("seq", flat=True)) == [
        1,
        2,
        3,
    ]
    destinations, tasks = _approve_events(request)
    # one event for the reviewers' group, one for the requester, one for the request's page
    assert sorted(destinations) == sorted(
        [
            f"inbox.group.{handoff_group_id(request)}",
            f"inbox.user.{request.requester_id}",
            f"instance.approvals.approvalrequest.{request.pk}",
        ]
    )
    assert tasks == 1
    assert audit_verify().ok


def handoff_group_id(request: ApprovalRequest) -> int | None:
    """The group the request's review handoff was offered to."""
    return (
        Handoff.objects.for_instance(request)
        .filter(stage="review")
        .values_list("candidate_group_id", flat=True)
        .first()
    )


def test_fifty_simultaneous_approvals_one_wins_the_rest_conflict(requester, request_type, fifty_approvers):
    # given a submitted request that all 50 approvers may decide
    request = make_request(requester=requester, request_type=request_type)

    # when they all approve it at the same moment, each on its own connection
    outcomes = run_concurrently(
        ACTORS,
        lambda i: request_act(
            request_id=request.pk, action="approve", actor=fifty_approvers[i], comment=f"ok from {i}"
        ),
    )

    # then exactly one succeeded and the 49 others were told it is no longer possible (409)
    winners = [o for o in outcomes if o.error is None]
    losers = [o for o in outcomes if o.error is not None]
    assert len(winners) == 1
    assert Counter(type(o.error) for o in losers) == {errors.TransitionNotAllowed: ACTORS - 1}
    assert all(o.error.http_status == 409 for o in losers)
    assert all("while it is approved" in str(o.error) for o in losers)
    # and the trail and the outbox hold one approval, by the winner
    _assert_exactly_one_approval(request, fifty_approvers[winners[0].index])


def test_fifty_simultaneous_approvals_with_expected_version_one_wins(
    requester, request_type, fifty_approvers
):
    # given a submitted request, read by everyone at the same version
    request = make_request(requester=requester, request_type=request_type)
    seen_version = request.version

    # when all 50 approve it at once, each saying which version they saw
    outcomes = run_concurrently(
        ACTORS,
        lambda i: request_act(
            request_id=request.pk,
            action="approve",
            actor=fifty_approvers[i],
            expected_version=seen_version,
        ),
    )

    # then one wins; every other gets a conflict (stale version, or not allowed any more)
    winners = [o for o in outcomes if o.error is None]
    losers = [o for o in outcomes if o.error is not None]
    assert len(winners) == 1
    assert all(isinstance(o.error, errors.StaleVersion | errors.TransitionNotAllowed) for o in losers), [
        repr(o.error) for o in losers
    ]
    assert all(o.error.http_status == 409 for o in losers)
    _assert_exactly_one_approval(request, fifty_approvers[winners[0].index])
