"""How many SQL statements one REST action costs, from the token to the answer (the new
representation), on both databases: the figure bench/api's REST side pays per action."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.approvals.api.conftest import API, ApiWorld
from tests.performance.conftest import memory_broker  # noqa: F401  (a fixture used below)

pytestmark = pytest.mark.django_db(transaction=True)

# token (1), the request with its visibility (the request, the caller's permissions, its
# handoffs: 3), the transition service with its commit and after-commit push (workflows'
# own budget: 10), the representation (handoffs, decisions, revisions, history: 4).
ACTION_MAX = 18
TRANSACTION_CONTROL = {"BEGIN", "BEGIN IMMEDIATE", "COMMIT"}


def _statements(captured: CaptureQueriesContext) -> list[str]:
    # SQLite's BEGIN and COMMIT go through a cursor and are captured; PostgreSQL's may not be.
    return [
        q["sql"] for q in captured.captured_queries if q["sql"].strip().upper() not in TRANSACTION_CONTROL
    ]


@pytest.mark.usefixtures("memory_broker")
def test_an_action_through_the_api_answers_its_representation_within_a_fixed_statement_budget(
    api: ApiWorld,
) -> None:
    # given an approver and the requester with their tokens, and two requests in review
    approver, requester = api.client("approver"), api.client("requester")
    warm, request = api.new_request(title="warm-up"), api.new_request(title="Buy a desk")
    # (a first round warms per-process caches and the tokens' last-used mark)
    approver.post(f"{API}/requests/{warm.pk}/actions/request_changes/", {"comment": "?"}, format="json")
    requester.post(f"{API}/requests/{warm.pk}/actions/resubmit/", {}, format="json")

    # when the approver asks for changes and the requester resubmits, through the API
    with CaptureQueriesContext(connection) as asked:
        changes = approver.post(
            f"{API}/requests/{request.pk}/actions/request_changes/", {"comment": "Which desk?"}, format="json"
        )
    with CaptureQueriesContext(connection) as answered:
        resubmitted = requester.post(f"{API}/requests/{request.pk}/actions/resubmit/", {}, format="json")

    # then each answered the new representation, with its history and actions
    assert changes.status_code == 200, changes.content
    assert resubmitted.status_code == 200, resubmitted.content
    assert changes.json()["state"] == "changes_requested"
    body = resubmitted.json()
    assert body["state"] == "in_review"
    assert resubmitted["ETag"] == f'"{request.pk}-v{body["version"]}"'
    assert [e["action"] for e in body["history"]][-2:] == ["request_changes", "resubmit"]
    assert {a["name"] for a in body["actions"]} >= {"withdraw", "approve"}
    # and each stayed within the budget, whatever the database
    asked_sql, answered_sql = _statements(asked), _statements(answered)
    print(f"\nrequest_changes: {len(asked_sql)} statements, resubmit: {len(answered_sql)}")
    assert len(asked_sql) <= ACTION_MAX, "\n".join(asked_sql)
    assert len(answered_sql) <= ACTION_MAX, "\n".join(answered_sql)
