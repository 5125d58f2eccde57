"""The inbox of the measured person (5 groups, 1 delegator): the page, the selector, and
the same rows and counts by hand."""

from __future__ import annotations

import os
from typing import Any

from bench.inbox.data import MEASURED
from bench.inbox.timing import Figures, alternating, statements_at, statements_of

PAGE = 50

RAW_REACH = """
SELECT (SELECT coalesce(array_agg(group_id), '{}') FROM accounts_user_groups WHERE user_id = %(user)s),
       (SELECT coalesce(array_agg(d.delegator_id), '{}') FROM accounts_delegation d
        JOIN accounts_user u ON u.id = d.delegator_id AND u.is_active
        WHERE d.delegate_id = %(user)s AND d.revoked_at IS NULL AND d.starts_at <= now()
          AND (d.ends_at IS NULL OR d.ends_at > now()))
"""
# What the person may see: theirs, their groups' unclaimed, and what waits for those who
# delegated to them, except the delegators' own requests (nobody acts for a requester).
RAW_HOLDERS = """
h.content_type_id = %(ct)s AND h.closed_at IS NULL
AND (h.assignee_id = %(user)s OR (h.assignee_id IS NULL AND h.candidate_group_id = ANY(%(groups)s))
     OR (h.assignee_id = ANY(%(delegators)s) AND NOT EXISTS (
         SELECT 1 FROM approvals_approvalrequest o WHERE o.id = h.object_id::bigint AND o.requester_id = h.assignee_id)))
"""
AWAKE = "(h.snoozed_until IS NULL OR h.snoozed_until <= now())"
# The page is chosen first, then only its rows are joined (as the selector does).
RAW_PAGE = f"""
WITH page AS (
    SELECT h.* FROM workflows_handoff h WHERE {RAW_HOLDERS} AND {AWAKE}
    ORDER BY h.due_at ASC NULLS LAST, h.id ASC LIMIT %(limit)s
)
SELECT h.id, h.stage, h.due_at, h.opened_at, h.assignee_id, h.candidate_group_id,
       r.id, r.title, r.state, t.name, u.username, u.first_name, u.last_name, a.username, g.name
FROM page h
JOIN approvals_approvalrequest r ON r.id = h.object_id::bigint
JOIN approvals_requesttype t ON t.id = r.request_type_id
JOIN accounts_user u ON u.id = r.requester_id
LEFT JOIN accounts_user a ON a.id = h.assignee_id
LEFT JOIN auth_group g ON g.id = h.candidate_group_id
ORDER BY h.due_at ASC NULLS LAST, h.id ASC
"""
RAW_COUNTS = f"""
SELECT count(*) FILTER (WHERE h.assignee_id = %(user)s AND {AWAKE}),
       count(*) FILTER (WHERE h.assignee_id IS NULL AND h.candidate_group_id = ANY(%(groups)s) AND {AWAKE}),
       count(*) FILTER (WHERE h.assignee_id = ANY(%(delegators)s) AND {AWAKE}),
       count(*) FILTER (WHERE h.due_at < now() AND {AWAKE}),
       count(*) FILTER (WHERE h.assignee_id = %(user)s AND NOT {AWAKE})
FROM workflows_handoff h WHERE {RAW_HOLDERS}
"""


def measure(*, repeat: int) -> Figures:
    import psycopg
    from django.contrib.contenttypes.models import ContentType
    from django.test import Client

    from accounts.models import User
    from approvals.models import ApprovalRequest
    from approvals.selectors import inbox_page
    from approvals.views import inbox as inbox_views

    person = User.objects.get(username=MEASURED)
    client = Client()
    client.force_login(person)
    content_type = ContentType.objects.get_for_model(ApprovalRequest).pk

    def page() -> None:
        assert client.get("/inbox/").status_code == 200

    def selector() -> Any:
        return inbox_page(user=User.objects.get(pk=person.pk), limit=PAGE)

    shown = selector()
    statements = {
        "page of 50": len(statements_of(client, "/inbox/")),
        "page of 10": statements_at(client, "/inbox/", module=inbox_views, size=10),
    }
    with psycopg.connect(os.environ["DATABASE_URL"]) as raw:

        def hand_written() -> tuple[list[Any], Any]:
            reach = raw.execute(RAW_REACH, {"user": person.pk}).fetchone()
            assert reach is not None
            groups, delegators = reach
            params = {"user": person.pk, "groups": groups, "delegators": delegators, "ct": content_type}
            rows = raw.execute(RAW_PAGE, {**params, "limit": PAGE + 1}).fetchall()
            counts = raw.execute(RAW_COUNTS, params).fetchone()
            return rows, counts

        raw_rows, raw_counts = hand_written()
        c = shown.counts
        same = [r[0] for r in raw_rows[:PAGE]] == [row.handoff.pk for row in shown.rows] and tuple(
            raw_counts
        ) == (c.mine, c.queue, c.delegated, c.overdue, c.snoozed)
        times = alternating(repeat, {"page": page, "selector": selector, "raw": hand_written})
    note = (
        f"the measured person: 5 groups, 1 delegator; inbox {c.total:,} items ({c.mine} mine, "
        f"{c.queue:,} in their queues, {c.delegated} delegated, {c.overdue:,} overdue)"
    )
    return Figures(
        title="inbox (GET /inbox/)",
        rows=len(shown.rows),
        same_rows=same,
        statements=statements,
        times=times,
        notes=[note],
    )
