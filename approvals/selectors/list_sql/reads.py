"""The lists' statements: the page with its requests, the counts, the team's workloads,
the inbox's views, the delegation reach and the unread count; rows built with only the
columns the lists show (`workflows.sql.picked`), each related row once per page."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg.types.datetime import TimestamptzLoader

from accounts.models import Delegation, User
from approvals.models import ApprovalRequest, RequestType
from approvals.selectors.list_sql.conditions import Where, moment, order_by, read_datetime, values_in
from workflows import sql
from workflows.models import Handoff

# What the lists (pages and the API's inbox) show of each row: read as `.only()` would, the
# rest deferred. Fewer columns, fewer values decoded (a dozen dates a row) and set per
# instance; JSON documents (payloads, schemas) and long texts are never read here.
_SHOWN: dict[type[models.Model], tuple[str, ...]] = {
    Handoff: (
        "content_type",
        "object_id",
        "stage",
        "slot",
        "assignee",
        "candidate_group",
        "due_at",
        "snoozed_until",
        "opened_at",
        "claimed_at",
        "closed_at",
        "close_reason",
    ),
    ApprovalRequest: (
        "version",
        "created_at",
        "updated_at",
        "request_type",
        "requester",
        "title",
        "state",
        "expires_at",
    ),
    RequestType: ("slug", "name", "is_active"),
    User: ("username", "first_name", "last_name", "is_active"),
}


@dataclass(frozen=True)
class Row:
    """A handoff of the page with its request (requester and type attached; None when
    the request is gone)."""

    handoff: Handoff
    request: ApprovalRequest | None


def page_rows(where: Where, *, sort: str, limit: int) -> list[Row]:
    """The first `limit` open handoffs meeting `where` in `sort`'s order, each with its
    holders and its request (with requester and type): one statement. The page is chosen
    first and only its rows are joined (joined before the sort, every matching row was:
    half the page's time at a million requests, bench/inbox)."""
    db = sql.db_of()
    parts = [
        (sql.picked(Handoff, db, only=_SHOWN[Handoff]), "h", None),
        (sql.picked(User, db, only=_SHOWN[User]), "a", "assignee"),
        (sql.picked(Group, db), "g", "candidate_group"),
        (sql.picked(ApprovalRequest, db, only=_SHOWN[ApprovalRequest]), "r", None),
        (sql.picked(User, db, only=_SHOWN[User]), "u", "requester"),
        (sql.picked(RequestType, db, only=_SHOWN[RequestType]), "t", "request_type"),
    ]
    order = order_by(sort)
    statement = (
        f"WITH page AS (SELECT h.id FROM workflows_handoff h WHERE {where.sql} ORDER BY {order} LIMIT %s) "  # nosec B608  # conditions written in this module, values are parameters
        f"SELECT {', '.join(p.columns(alias) for p, alias, _ in parts)} FROM page "
        "JOIN workflows_handoff h ON h.id = page.id "
        "LEFT JOIN accounts_user a ON a.id = h.assignee_id "
        "LEFT JOIN auth_group g ON g.id = h.candidate_group_id "
        # Only the page's handoffs, all of requests, are read as request keys here.
        "LEFT JOIN approvals_approvalrequest r ON r.id = CAST(h.object_id AS BIGINT) "
        "LEFT JOIN accounts_user u ON u.id = r.requester_id "
        "LEFT JOIN approvals_requesttype t ON t.id = r.request_type_id "
        f"ORDER BY {order}"
    )
    with db.cursor() as cursor:
        _dates_decoded_by_psycopg(cursor, db)
        cursor.execute(statement, [*where.params, limit])
        fetched = cursor.fetchall()
    shared: dict[tuple[str, Any], models.Model] = {}
    rows = []
    for row in fetched:
        built: list[models.Model | None] = []
        offset = 0
        for picked, _, name in parts:
            key = row[offset]  # every table's first column is its key
            if key is None:
                built.append(None)
            elif name is None:
                built.append(picked.build(row, db, offset))
            else:
                found = shared.get((name, key))
                if found is None:
                    found = shared[(name, key)] = picked.build(row, db, offset)
                built.append(found)
            offset += picked.width
        handoff, assignee, group, request, requester, request_type = built
        assert isinstance(handoff, Handoff)
        handoff.assignee = assignee  # type: ignore[assignment]
        handoff.candidate_group = group  # type: ignore[assignment]
        if isinstance(request, ApprovalRequest):
            request.requester = requester  # type: ignore[assignment]
            request.request_type = request_type  # type: ignore[assignment]
        rows.append(Row(handoff=handoff, request=request if isinstance(request, ApprovalRequest) else None))
    return rows


def _dates_decoded_by_psycopg(cursor: Any, db: BaseDatabaseWrapper) -> None:
    """On PostgreSQL, this cursor's timestamps decoded by psycopg's own loader (its C
    implementation) rather than Django's: Django's subclasses psycopg's pure-Python one,
    to attach Django's time zone to each value, so every date of a page was parsed in
    Python (a page's 200 dates: three quarters of the statement's CPU, 4.7 -> 1.4 ms,
    timed on bench/inbox's data). With USE_TZ the session's time zone is UTC (Django
    sets it), so psycopg's values are the same aware UTC datetimes (tested)."""
    if db.vendor == "postgresql" and settings.USE_TZ and db.timezone_name == "UTC":
        cursor.cursor.adapters.register_loader("timestamptz", TimestamptzLoader)


def counts(where: Where, measures: Mapping[str, Where]) -> dict[str, int]:
    """How many open handoffs meeting `where` meet each of `measures` (one statement)."""
    db = sql.db_of()
    names = list(measures)
    columns = ", ".join(f"COUNT(*) FILTER (WHERE {measures[n].sql})" for n in names)
    params = [p for n in names for p in measures[n].params]
    with db.cursor() as cursor:
        statement = f"SELECT {columns} FROM workflows_handoff h WHERE {where.sql}"  # nosec B608  # written here
        cursor.execute(statement, [*params, *where.params])
        found = cursor.fetchone()
    return {n: int(v or 0) for n, v in zip(names, found or [0] * len(names), strict=True)}


def workloads(
    base: Where, *, held: Where, queued: Where, now: datetime
) -> tuple[list[dict[str, Any]], dict[int, dict[str, Any]]]:
    """Open, overdue and oldest of the handoffs meeting `base`: per holder meeting `held`
    (with their names) and per group for those meeting `queued`, in one statement (the
    two groupings in a UNION ALL). Each row a dict: kind, key, username, first_name,
    last_name, is_active, open, overdue, oldest."""
    measures = "COUNT(*), COUNT(*) FILTER (WHERE h.due_at < %s), MIN(h.opened_at)"
    per_member = base.also(held)
    per_group = base.also(queued)
    statement = (
        f"SELECT 'member', h.assignee_id, u.username, u.first_name, u.last_name, u.is_active, {measures} "  # nosec B608  # conditions written in this module, values are parameters
        f"FROM workflows_handoff h JOIN accounts_user u ON u.id = h.assignee_id WHERE {per_member.sql} "
        "GROUP BY h.assignee_id, u.username, u.first_name, u.last_name, u.is_active "
        f"UNION ALL SELECT 'group', h.candidate_group_id, NULL, NULL, NULL, NULL, {measures} "
        f"FROM workflows_handoff h WHERE {per_group.sql} GROUP BY h.candidate_group_id"
    )
    at = moment(now)
    with sql.db_of().cursor() as cursor:
        cursor.execute(statement, [at, *per_member.params, at, *per_group.params])
        fetched = cursor.fetchall()
    names = ("kind", "key", "username", "first_name", "last_name", "is_active", "open", "overdue", "oldest")
    rows = [dict(zip(names, row, strict=True)) for row in fetched]
    for row in rows:
        row["oldest"] = read_datetime(row["oldest"])
        row["is_active"] = None if row["is_active"] is None else bool(row["is_active"])
    return [r for r in rows if r["kind"] == "member"], {r["key"]: r for r in rows if r["kind"] == "group"}


def view_names(
    *, owner_id: int, group_ids: Iterable[int], leave_out: Iterable[str]
) -> list[tuple[str, str, int | None]]:
    """For the inbox's views, in one statement: the names of the groups `group_ids` but
    those named in `leave_out`, by name, as (name, "", None); then the views `owner_id`
    saved, by name, as (name, query, id)."""
    groups, group_params = values_in("g.id", sorted(group_ids))
    names = list(leave_out)
    kept = f"g.name NOT IN ({', '.join(['%s'] * len(names))})" if names else "1 = 1"
    statement = (
        "SELECT v.name, v.query, v.id FROM ("  # nosec B608  # conditions written in this module, values are parameters
        f"SELECT 0 AS part, g.name AS name, '' AS query, NULL AS id FROM auth_group g WHERE {groups} AND {kept} "
        "UNION ALL SELECT 1, s.name, s.query, s.id FROM approvals_savedview s WHERE s.owner_id = %s"
        ") v ORDER BY v.part, v.name"
    )
    with sql.db_of().cursor() as cursor:
        cursor.execute(statement, [*group_params, *names, owner_id])
        return [(name, query, key) for name, query, key in cursor.fetchall()]


def delegations_to(user_id: int, *, now: datetime) -> list[tuple[User, list[str]]]:
    """Who delegated their work to `user_id` now, each with the delegation's scope (request
    type slugs; empty: all), in one statement; only active delegators. Active as
    `accounts.models.DelegationQuerySet.active` rules it (begun, not ended, not revoked;
    tests hold the two to the same rows). The delegators' rows carry the lists' columns."""
    db = sql.db_of()
    scope = sql.picked(Delegation, db, only=("scope",))
    person = sql.picked(User, db, only=_SHOWN[User])
    at = moment(now)
    statement = (
        f"SELECT {scope.columns('d')}, {person.columns('u')} FROM accounts_delegation d "  # nosec B608  # conditions written in this module, values are parameters
        "JOIN accounts_user u ON u.id = d.delegator_id "
        "WHERE d.delegate_id = %s AND d.revoked_at IS NULL AND d.starts_at <= %s "
        "AND (d.ends_at IS NULL OR d.ends_at > %s) AND u.is_active ORDER BY d.id"
    )
    with db.cursor() as cursor:
        cursor.execute(statement, [user_id, at, at])
        fetched = cursor.fetchall()
    found = []
    for row in fetched:
        delegation = scope.build(row, db)
        delegator = person.build(row, db, scope.width)
        assert isinstance(delegation, Delegation)
        assert isinstance(delegator, User)
        found.append((delegator, list(delegation.scope or [])))
    return found


def unread_notifications(user_id: int) -> int:
    """How many notifications `user_id` has not read (the bell's number, on every page)."""
    with sql.db_of().cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM approvals_notification n WHERE n.recipient_id = %s AND n.read_at IS NULL",
            [user_id],
        )
        (count,) = cursor.fetchone() or (0,)
    return int(count)
