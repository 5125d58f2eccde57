"""bench/peer measures Baton beside Viewflow; this runs its Baton side once, on the test
database: the seeding and one flow, counted as the benchmark counts it.

Skipped where django-viewflow is not installed (it comes from requirements/bench.txt, which
only `make bench-peer` installs): the product and its test suite never need it.
"""

from __future__ import annotations

import pytest

pytest.importorskip(
    "viewflow",
    reason="bench/peer needs django-viewflow (requirements/bench.txt; `make bench-peer` installs it)",
)

from approvals.models import ApprovalRequest, Decision
from bench.peer import BatonFlow, count_statements, seed_baton
from workflows.audit import audit_verify
from workflows.models import OutboxEvent

# The push runs after commit: the transactions must really commit.
pytestmark = pytest.mark.django_db(transaction=True)


def test_one_baton_flow_of_the_peer_bench_approves_a_request_and_counts_its_push(memory_broker):
    # given Baton's data as the benchmark seeds it, for one worker
    seed = seed_baton(people=1)

    # when that worker's requester and approver run one flow, its statements counted
    steps = count_statements(BatonFlow(seed.request_type_id, seed.people[0]))

    # then the flow took its two steps, and each step's after-commit push was counted
    assert [step.step for step in steps] == ["request_create (create + submit)", "request_act approve"]
    for step in steps:
        assert step.pushed, step.sql
    # and the request is approved, once, its audit chain intact and every event delivered
    request = ApprovalRequest.objects.get(request_type_id=seed.request_type_id)
    assert request.state == "approved"
    assert Decision.objects.filter(request=request, outcome="approve").count() == 1
    report = audit_verify()
    assert report.ok, report.breaks
    assert report.entries == 3  # create, submit, approve
    assert set(OutboxEvent.objects.values_list("status", flat=True)) == {OutboxEvent.Status.DELIVERED}
