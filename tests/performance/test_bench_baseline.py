"""bench/transitions compares the service with raw SQL "doing the same writes": this checks
that the raw side writes the same rows as the service for the same two transitions."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection

from approvals.models import ApprovalRequest, Decision, RequestRevision
from approvals.services import request_act
from bench.transitions import CHANGE_COMMENT, WorkerPlan, _raw_transition
from tests.factories import make_request
from workflows.audit import audit_verify
from workflows.models import AuditEntry, Handoff, OutboxEvent

# Raw psycopg SQL with SELECT ... FOR UPDATE and jsonb, as the bench runs it on PostgreSQL.
pytestmark = [pytest.mark.integration, pytest.mark.django_db]


def masked(value: Any, key: str = "") -> Any:
    """Audit data as written, but for what differs between two requests by nature: row
    ids (of handoffs) and moments (submitted_at's before and after)."""
    if isinstance(value, dict):
        return {k: masked(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v, key) for v in value]
    if key == "id":
        return f"<id {type(value).__name__}>"
    if key == "submitted_at":
        return f"<moment {type(value).__name__}>"
    return value


def written(request: ApprovalRequest) -> dict[str, Any]:
    """What the two transitions wrote for `request`, without ids and times."""
    pk = str(request.pk)
    row = ApprovalRequest.objects.get(pk=request.pk)
    entries = AuditEntry.objects.for_instance(request).filter(seq__gt=2).order_by("seq")
    first = entries.first()
    assert first is not None
    since = first.created_at
    watchers = f"instance.approvals.approvalrequest.{pk}"
    events = OutboxEvent.objects.filter(created_at__gte=since)
    mine = [
        e
        for e in events
        if e.payload.get("ref", "").endswith(f":{pk}")
        or e.payload.get("kwargs", {}).get("request_id") == request.pk
    ]
    return {
        "row": (
            row.state,
            row.version,
            row.audit_seq,
            row.revision,
            row.policy_version_id,
            row.stage_index,
            row.stage_slots,
            row.title,
            row.payload,
        ),
        "entries": [
            (e.kind, e.action, e.source, e.target, e.actor_id, e.on_behalf_of_id, e.comment, masked(e.data))
            for e in entries
        ],
        "handoffs": [
            (h.stage, h.slot, h.assignee_id, h.candidate_group_id, h.closed_at is None, h.close_reason)
            for h in Handoff.objects.for_instance(request).order_by("id")
        ],
        "decisions": [
            (
                d.revision,
                d.stage_index,
                d.stage_name,
                d.outcome,
                d.principal_id,
                d.actor_id,
                d.slot,
                d.comment,
            )
            for d in Decision.objects.filter(request=request).order_by("id")
        ],
        "revisions": [
            (r.number, r.title, r.description, r.payload, r.diff, r.created_by_id)
            for r in RequestRevision.objects.filter(request=request).order_by("number")
        ],
        "outbox": Counter(
            (
                e.kind,
                "<its watchers>" if e.destination == watchers else e.destination,
                str(sorted(e.payload)),
                # due when the push lease ends (whole seconds after the row was made)
                round((e.available_at - e.created_at).total_seconds()),
            )
            for e in mine
        ),
    }


def test_the_raw_baseline_writes_the_rows_the_service_writes(
    requester, approver, approver_group, request_type
):
    # given two requests in review of the same requester and type
    by_service = make_request(requester=requester, request_type=request_type)
    by_raw = make_request(requester=requester, request_type=request_type)
    plan = WorkerPlan(
        side="raw",
        index=0,
        approver_id=approver.pk,
        requester_id=requester.pk,
        group_id=approver_group.pk,
        content_type_id=ContentType.objects.get_for_model(ApprovalRequest).pk,
        request_type_id=request_type.pk,
        requests=1,
    )

    # when one goes through request_changes and resubmit by the service, the other by raw SQL
    request_act(request_id=by_service.pk, action="request_changes", actor=approver, comment=CHANGE_COMMENT)
    request_act(request_id=by_service.pk, action="resubmit", actor=requester)
    with connection.cursor() as cursor:
        first = _raw_transition(cursor, plan, by_raw.pk)
        state_between = ApprovalRequest.objects.get(pk=by_raw.pk).state
        second = _raw_transition(cursor, plan, by_raw.pk)

    # then both wrote the same rows: request, audit entries, handoffs, decisions, revisions
    # and outbox events (4 per transition, which the raw side hands back to publish)
    assert [state_between, ApprovalRequest.objects.get(pk=by_raw.pk).state] == [
        "changes_requested",
        "in_review",
    ]
    assert [len(first), len(second)] == [4, 4]
    assert [kind for _, kind, _, _ in first] == ["channel", "channel", "channel", "task"]
    assert written(by_raw) == written(by_service)
    # and the raw chain verifies like the service's (same hash over the same fields)
    report = audit_verify()
    assert report.ok, report.breaks
    assert report.chains == 2
