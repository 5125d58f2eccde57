"""The data set of bench/inbox, made in SQL with generate_series after `migrate` (see the
package's docstring for its shape), and the settings that point Django at it."""

from __future__ import annotations

import os
import time

MEASURED = "bench-inbox-person"
STAND_IN_FOR = "bench-inbox-colleague"
MANAGER = "bench-inbox-manager"
TEAM_SIZE = 50


def configure(*, server_url: str, database: str) -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.embedded"
    os.environ["DATABASE_URL"] = f"{server_url.rstrip('/')}/{database}"
    os.environ.pop("REDIS_URL", None)
    os.environ["DEBUG"] = "0"  # DEBUG would keep every query in memory
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ["CONN_MAX_AGE"] = "600"


def database_exists(server_url: str, database: str) -> bool:
    import psycopg

    with psycopg.connect(f"{server_url.rstrip('/')}/postgres", autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone()
    return found is not None


def recreate(server_url: str, database: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(f"{server_url.rstrip('/')}/postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def _copy_of(table: str, template_id: int, overrides: dict[str, str], rows: str) -> str:
    """INSERT ... SELECT of `rows` copies of one template row, some columns computed."""
    from django.db import connection

    with connection.cursor() as cursor:
        columns = [
            c.name for c in connection.introspection.get_table_description(cursor, table) if c.name != "id"
        ]
    values = ", ".join(overrides.get(c, f"t.{c}") for c in columns)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {values} "
        f"FROM {rows}, (SELECT * FROM {table} WHERE id = {template_id}) AS t"
    )


def build(*, requests: int, users: int, groups: int) -> dict[str, float]:
    """Migrate, then make the data set in SQL. Returns the seconds each part took."""
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.db import connection, transaction
    from guardian.shortcuts import assign_perm

    from accounts.models import Delegation, User
    from accounts.roles import APPROVERS, REQUESTERS, roles_sync
    from approvals.models import RequestType
    from approvals.publishing import policy_draft_create, policy_publish
    from approvals.services import request_create
    from workflows.models import Handoff

    took: dict[str, float] = {}
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    took["migrate"] = time.perf_counter() - started

    started = time.perf_counter()
    roles = roles_sync()
    group_rows = Group.objects.bulk_create([Group(name=f"bench-g{i:03d}") for i in range(groups)])
    template_user = User.objects.create_user(username=MEASURED, first_name="Bench", last_name="Person")
    colleague = User.objects.create_user(username=STAND_IN_FOR, first_name="Bench", last_name="Colleague")
    # The person and the colleague are approvers in the groups the policies name.
    template_user.groups.add(roles[APPROVERS], roles[REQUESTERS], *group_rows[:5])
    colleague.groups.add(roles[APPROVERS], roles[REQUESTERS], group_rows[0])
    types = []
    for i in range(10):
        request_type = RequestType.objects.create(slug=f"bench-type-{i}", name=f"Bench type {i}")
        document = {"stages": [{"name": "review", "approvers": {"groups": [group_rows[i % 5].name]}}]}
        policy_publish(
            version=policy_draft_create(request_type=request_type, document=document, actor=None), actor=None
        )
        assign_perm("approvals.submit_requesttype", roles[REQUESTERS], request_type)
        types.append(RequestType.objects.get(pk=request_type.pk))
    template = request_create(requester=colleague, request_type=types[0], title="template")
    handoff_template = Handoff.objects.for_instance(template).get()
    took["people, groups, types"] = time.perf_counter() - started

    first_group, type_ids = group_rows[0].pk, [t.pk for t in types]
    version_ids = [t.current_policy_id for t in types]
    with transaction.atomic(), connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(
            _copy_of(
                "accounts_user",
                template_user.pk,
                {
                    "username": "'bench-u' || g",
                    "first_name": "(ARRAY['Ann','Ben','Cleo','Dev','Eva','Finn','Gus','Hana'])[1 + g % 8]",
                    "last_name": "'Person' || g",
                    "email": "'u' || g || '@example.com'",
                },
                f"generate_series(1, {users - 2}) AS g",
            )
        )
        cursor.execute("SELECT min(id), max(id) FROM accounts_user WHERE username LIKE 'bench-u%%'")
        low, high = cursor.fetchone()
        # Each generated user in 0-4 of the groups (none of the measured person's five,
        # except for one user in forty, so those queues have several members).
        cursor.execute(
            "INSERT INTO accounts_user_groups (user_id, group_id) "
            "SELECT DISTINCT u.id, %s + ((u.id * 7 + k * 53) %% %s) FROM accounts_user u, generate_series(1, 4) AS k "
            "WHERE u.id BETWEEN %s AND %s AND k <= u.id %% 5 "
            "AND (u.id %% 40 = 0 OR (u.id * 7 + k * 53) %% %s >= 5) ON CONFLICT DO NOTHING",
            [first_group, groups, low, high, groups],
        )
        took["users and memberships"] = time.perf_counter() - started

        started = time.perf_counter()
        state = (
            "CASE WHEN g % 100 < 30 THEN 'in_review' WHEN g % 100 < 35 THEN 'changes_requested' "
            "WHEN g % 100 < 38 THEN 'draft' "
            "ELSE (ARRAY['approved','rejected','withdrawn','cancelled'])[1 + g % 4] END"
        )
        cursor.execute(
            _copy_of(
                "approvals_approvalrequest",
                template.pk,
                {
                    "request_type_id": f"(ARRAY{type_ids})[1 + g % 10]",
                    "policy_version_id": f"(ARRAY{version_ids})[1 + g % 10]",
                    "requester_id": f"{low} + (g::bigint * 7919) % {high - low + 1}",
                    "title": "'Request ' || g || ': ' || (ARRAY['desk','laptop','travel','training','software'])[1 + g % 5]",
                    "state": state,
                    "stage_index": "CASE WHEN g % 100 < 30 THEN 0 END",
                    "created_at": "now() - (g % 400000) * interval '1 minute'",
                    "updated_at": "now() - (g % 400000) * interval '1 minute'",
                    "submitted_at": "now() - (g % 400000) * interval '1 minute'",
                },
                f"generate_series(1, {requests - 1}) AS g",
            )
        )
        took["requests"] = time.perf_counter() - started

        started = time.perf_counter()
        # Two closed handoffs per request (its history), then the third: open for those
        # in review (a group's, one in five claimed) and for those sent back (the
        # requester's), closed for the rest.
        closed = {
            "object_id": "r.id::text",
            "candidate_group_id": f"{first_group} + (r.id * 31) % {groups}",
            "assignee_id": "NULL",
            "opened_at": "r.created_at",
            "closed_at": "r.created_at + interval '1 hour'",
            "close_reason": "'done'",
            "due_at": "NULL",
            "stage": "'review'",
        }
        rows = "approvals_approvalrequest AS r, generate_series(1, 2) AS k"
        cursor.execute(
            _copy_of("workflows_handoff", handoff_template.pk, closed, rows) + f" WHERE r.id <> {template.pk}"
        )
        third = {
            **closed,
            "assignee_id": (
                "CASE WHEN r.state = 'changes_requested' THEN r.requester_id "
                f"WHEN r.id % 5 = 0 THEN {low} + (r.id * 13) % {high - low + 1} END"
            ),
            "candidate_group_id": f"CASE WHEN r.state = 'changes_requested' THEN NULL ELSE {first_group} + (r.id * 31) % {groups} END",
            "stage": "CASE WHEN r.state = 'changes_requested' THEN 'changes' ELSE 'review' END",
            "closed_at": "CASE WHEN r.state IN ('in_review', 'changes_requested') THEN NULL ELSE r.created_at + interval '2 hours' END",
            "close_reason": "CASE WHEN r.state IN ('in_review', 'changes_requested') THEN '' ELSE 'done' END",
            "due_at": "CASE WHEN r.state = 'in_review' THEN now() + ((r.id % 240) - 48) * interval '1 hour' END",
        }
        rows = "approvals_approvalrequest AS r"
        cursor.execute(
            _copy_of("workflows_handoff", handoff_template.pk, third, rows) + f" WHERE r.id <> {template.pk}"
        )
        took["handoffs"] = time.perf_counter() - started

        started = time.perf_counter()
        # The measured person holds some items of their own, and so does the colleague
        # they stand in for.
        cursor.execute(
            "UPDATE workflows_handoff SET assignee_id = %s, claimed_at = now() "
            "WHERE closed_at IS NULL AND stage = 'review' AND id %% 1500 = 1",
            [template_user.pk],
        )
        cursor.execute(
            "UPDATE workflows_handoff SET assignee_id = %s, claimed_at = now() "
            "WHERE closed_at IS NULL AND stage = 'review' AND id %% 1500 = 2",
            [colleague.pk],
        )
        took["assignments"] = time.perf_counter() - started
    Delegation.objects.create(delegator=colleague, delegate=template_user, reason="bench")
    started = time.perf_counter()
    team_build(low=low)
    took["team"] = time.perf_counter() - started
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    took["vacuum analyze"] = time.perf_counter() - started
    return took


def team_build(*, low: int | None = None) -> None:
    """The measured manager (the managers role) and their 50 direct reports: generated
    users, who hold open items of their own (claimed ones, and requests sent back to them)
    and sit in their generated groups, whose queues the team view also shows. Idempotent,
    so a data set made before the team view was measured gains it."""
    from django.db import connection

    from accounts.models import User
    from accounts.roles import MANAGERS, roles_sync

    if User.objects.filter(username=MANAGER).exists():
        return
    roles = roles_sync()
    manager = User.objects.create_user(username=MANAGER, first_name="Bench", last_name="Manager")
    manager.groups.add(roles[MANAGERS])
    if low is None:
        low = (
            User.objects.filter(username__startswith="bench-u").order_by("pk").values_list("pk", flat=True)[0]
        )
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE accounts_user SET manager_id = %s WHERE id BETWEEN %s AND %s",
            [manager.pk, low, low + TEAM_SIZE - 1],
        )


def sizes() -> dict[str, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        found = {}
        for label, table in [
            ("users", "accounts_user"),
            ("groups", "auth_group"),
            ("requests", "approvals_approvalrequest"),
            ("handoffs", "workflows_handoff"),
        ]:
            cursor.execute(f"SELECT count(*) FROM {table}")
            found[label] = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM workflows_handoff WHERE closed_at IS NULL")
        found["open handoffs"] = cursor.fetchone()[0]
    return found
