"""The team view of the measured manager (50 direct reports, their groups' queues): the
page, the selector, and the same rows and counts by hand."""

from __future__ import annotations

import os
from typing import Any

from bench.inbox.data import MANAGER
from bench.inbox.timing import Figures, alternating, statements_at, statements_of

PAGE = 50

# Whom the manager looks after: direct reports and the members of the teams they manage.
RAW_TEAM = """
SELECT u.id, u.username, u.first_name, u.last_name, u.is_active FROM accounts_user u
WHERE u.id <> %(m)s AND (u.manager_id = %(m)s OR u.id IN (
    SELECT tm.user_id FROM accounts_teammembership tm
    JOIN accounts_teammembership mine ON mine.team_id = tm.team_id
    WHERE mine.user_id = %(m)s AND mine.is_manager))
ORDER BY u.first_name, u.last_name, u.username
"""
OPEN = "h.content_type_id = %(ct)s AND h.closed_at IS NULL"
# Their groups, and those the team's open items were claimed from.
RAW_GROUPS = f"""
SELECT g.id, g.name FROM auth_group g
WHERE g.id IN (SELECT group_id FROM accounts_user_groups WHERE user_id = ANY(%(team)s))
   OR g.id IN (SELECT h.candidate_group_id FROM workflows_handoff h
               WHERE {OPEN} AND h.assignee_id = ANY(%(team)s) AND h.candidate_group_id IS NOT NULL)
ORDER BY g.name
"""
HELD = "h.assignee_id = ANY(%(team)s)"
QUEUED = "h.assignee_id IS NULL AND h.candidate_group_id = ANY(%(groups)s)"
RAW_COUNTS = f"""
SELECT 'member', h.assignee_id, count(*), count(*) FILTER (WHERE h.due_at < now()), min(h.opened_at)
FROM workflows_handoff h WHERE {OPEN} AND {HELD} GROUP BY h.assignee_id
UNION ALL
SELECT 'group', h.candidate_group_id, count(*), count(*) FILTER (WHERE h.due_at < now()), min(h.opened_at)
FROM workflows_handoff h WHERE {OPEN} AND {QUEUED} GROUP BY h.candidate_group_id
"""
# The page is chosen first, then only its rows are joined (as the selector does).
RAW_PAGE = f"""
WITH page AS (
    SELECT h.* FROM workflows_handoff h WHERE {OPEN} AND ({HELD} OR ({QUEUED}))
    ORDER BY h.opened_at ASC, h.id ASC LIMIT %(limit)s
)
SELECT h.id, h.stage, h.due_at, h.opened_at, h.assignee_id, h.candidate_group_id,
       a.username, a.first_name, a.last_name, g.name,
       r.id, r.title, r.state, t.name, u.username, u.first_name, u.last_name
FROM page h
JOIN approvals_approvalrequest r ON r.id = h.object_id::bigint
JOIN approvals_requesttype t ON t.id = r.request_type_id
JOIN accounts_user u ON u.id = r.requester_id
LEFT JOIN accounts_user a ON a.id = h.assignee_id
LEFT JOIN auth_group g ON g.id = h.candidate_group_id
ORDER BY h.opened_at ASC, h.id ASC
"""


def measure(*, repeat: int) -> Figures:
    import psycopg
    from django.contrib.contenttypes.models import ContentType
    from django.test import Client

    from accounts.models import User
    from approvals.models import ApprovalRequest
    from approvals.selectors.team import team_page
    from approvals.views import team as team_views

    manager = User.objects.get(username=MANAGER)
    client = Client()
    client.force_login(manager)
    content_type = ContentType.objects.get_for_model(ApprovalRequest).pk

    def page() -> None:
        assert client.get("/team/").status_code == 200

    def selector() -> Any:
        return team_page(user=User.objects.get(pk=manager.pk), limit=PAGE)

    shown = selector()
    statements = {
        "page of 50": len(statements_of(client, "/team/")),
        "page of 10": statements_at(client, "/team/", module=team_views, size=10),
    }
    with psycopg.connect(os.environ["DATABASE_URL"]) as raw:

        def hand_written() -> tuple[list[Any], list[Any], list[Any], list[Any]]:
            params: dict[str, Any] = {"m": manager.pk, "ct": content_type}
            members = raw.execute(RAW_TEAM, params).fetchall()
            params["team"] = [m[0] for m in members]
            groups = raw.execute(RAW_GROUPS, params).fetchall()
            params["groups"] = [g[0] for g in groups]
            counts = raw.execute(RAW_COUNTS, params).fetchall()
            rows = raw.execute(RAW_PAGE, {**params, "limit": PAGE + 1}).fetchall()
            return members, groups, counts, rows

        members, groups, counts, rows = hand_written()
        names = {"member": {m[0]: m[1] for m in members}, "group": {g[0]: g[1] for g in groups}}
        raw_counts = {(kind, names[kind][key], n, late) for kind, key, n, late, _ in counts}
        shown_counts = {("member", w.key, w.open, w.overdue) for w in shown.members if w.open} | {
            ("group", w.key, w.open, w.overdue) for w in shown.groups if w.open
        }
        same = (
            [r[0] for r in rows[:PAGE]] == [row.handoff.pk for row in shown.rows]
            and raw_counts == shown_counts
            and len(members) == len(shown.members)
        )
        times = alternating(repeat, {"page": page, "selector": selector, "raw": hand_written})
    note = (
        f"the measured manager: {len(shown.members)} reports in {len(shown.groups)} groups; "
        f"{shown.total_open:,} open items ({sum(w.open for w in shown.members):,} held by the reports, "
        f"the rest in their groups' queues), {shown.total_overdue:,} overdue"
    )
    return Figures(
        title="team view (GET /team/)",
        rows=len(shown.rows),
        same_rows=same,
        statements=statements,
        times=times,
        notes=[note],
    )
