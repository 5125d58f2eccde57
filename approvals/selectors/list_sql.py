"""The open handoffs of the inbox and the team view in plain parameterised SQL: who may
see them, the filters, the keyset, the page with its requests, and the counts.

Through the ORM, building and compiling these conditions (a dozen Q objects, subqueries
for the delegations and the search) and building ~260 model instances per page cost more
than half of the inbox page's CPU at a million requests (bench/inbox.profile), and the
page's time was three times the hand-written SQL's. The statements here are the ORM's
own (the same conditions, subqueries, joins and order, so PostgreSQL keeps the plans
bench/inbox checked), written once; the rows are built with only the columns the lists
show (`workflows.sql.picked`), each related row once per page. Portable SQL: PostgreSQL
and SQLite (3.30+: NULLS LAST, aggregate FILTER) run the same text; tests run both.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from psycopg.types.datetime import TimestamptzLoader

from accounts.models import Delegation, User
from approvals.models import ApprovalRequest, RequestType
from workflows import sql
from workflows.models import Handoff

if TYPE_CHECKING:
    from collections.abc import Mapping

    from django.contrib.auth.models import Group

DUE_SOON = timedelta(hours=24)
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


@dataclass
class Where:
    """Conditions joined by AND, each with its parameters, in order."""

    parts: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, condition: str, *params: Any) -> Where:
        self.parts.append(condition)
        self.params.extend(params)
        return self

    def also(self, *others: Where) -> Where:
        """A new condition: this one and every one of `others`."""
        return Where(
            [*self.parts, *(p for o in others for p in o.parts)],
            [*self.params, *(p for o in others for p in o.params)],
        )

    @property
    def sql(self) -> str:
        return " AND ".join(f"({p})" for p in self.parts) or "1 = 1"


def values_in(column: str, values: Iterable[Any]) -> tuple[str, list[Any]]:
    """`column IN (%s, ...)`; a condition nothing meets when `values` is empty."""
    found = list(values)
    if not found:
        return "1 = 0", []
    return f"{column} IN ({', '.join(['%s'] * len(found))})", found


def moment(value: datetime) -> Any:
    """A datetime as this database compares it (SQLite: naive UTC text, as Django writes it)."""
    return sql.db_of().ops.adapt_datetimefield_value(value)


def read_datetime(value: Any) -> datetime | None:
    """A datetime an aggregate returned: SQLite gives Django's text (naive UTC)."""
    if value is None or isinstance(value, datetime):
        return value
    found = parse_datetime(str(value))
    if found is not None and timezone.is_naive(found):
        found = found.replace(tzinfo=UTC)
    return found


def request_content_type() -> int:
    return ContentType.objects.get_for_model(ApprovalRequest).pk


def open_request_handoffs() -> Where:
    """Every open handoff of an approval request (`h`: workflows_handoff)."""
    return Where().add("h.content_type_id = %s", request_content_type()).add("h.closed_at IS NULL")


# A request's key as a handoff stores it (text): compared as text, as the ORM's Cast did,
# so no handoff's object_id is ever read as a number.
_REQUEST_KEY = "CAST(o.id AS varchar)"


def held_for(delegator_id: int, scope: frozenset[str] | None) -> Where:
    """What waits for a delegator and their delegate may see: never a request of the
    delegator's own (nobody acts for a requester on it), only of the types the delegation
    reaches (`scope`: slugs; None: every type)."""
    found = Where().add("h.assignee_id = %s", delegator_id)
    found.add(
        f"h.object_id NOT IN (SELECT {_REQUEST_KEY} FROM approvals_approvalrequest o WHERE o.requester_id = %s)",  # nosec B608  # a fixed expression
        delegator_id,
    )
    if scope is not None:
        slugs, params = values_in("t.slug", sorted(scope))
        found.add(
            f"h.object_id IN (SELECT {_REQUEST_KEY} FROM approvals_approvalrequest o "  # nosec B608  # placeholders only
            f"JOIN approvals_requesttype t ON t.id = o.request_type_id WHERE {slugs})",
            *params,
        )
    return found


def any_of(conditions: Sequence[Where]) -> Where:
    """One condition met when any of `conditions` is (none: never)."""
    if not conditions:
        return Where().add("1 = 0")
    params = [p for c in conditions for p in c.params]
    return Where().add(" OR ".join(f"({c.sql})" for c in conditions), *params)


def awake(now: datetime) -> Where:
    """Not put aside by its holder at `now` (a snooze that ended counts as awake)."""
    return Where().add("h.snoozed_until IS NULL OR h.snoozed_until <= %s", moment(now))


def asleep(now: datetime) -> Where:
    """Put aside by its holder until after `now`."""
    return Where().add("h.snoozed_until > %s", moment(now))


def _like(text: str) -> str:
    """`text` as a LIKE pattern for "contains", its wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def filtered(
    *, request_type: str, group: str, stage: str, requester: str, due: str, q: str, now: datetime
) -> Where:
    """The inbox's filters as conditions on `h`: the group it is offered to (by name), its
    stage, its due date (overdue, due soon, none), and about its request (a semi-join):
    type (slug), requester (user name), and the search text (title or requester's name
    contains it, user name equals it, or the reference REQ-n / n)."""
    found = Where()
    if group:
        found.add("h.candidate_group_id IN (SELECT g.id FROM auth_group g WHERE g.name = %s)", group)
    if stage:
        found.add("h.stage = %s", stage)
    if due == "overdue":
        found.add("h.due_at < %s", moment(now))
    elif due == "soon":
        found.add("h.due_at >= %s AND h.due_at < %s", moment(now), moment(now + DUE_SOON))
    elif due == "none":
        found.add("h.due_at IS NULL")
    about = Where()
    if request_type:
        about.add(
            "o.request_type_id IN (SELECT t.id FROM approvals_requesttype t WHERE t.slug = %s)", request_type
        )
    if requester:
        about.add("u.username = %s", requester)
    text = q.strip()
    if text:
        pattern = _like(text)
        matches = (
            "UPPER(o.title) LIKE UPPER(%s) ESCAPE '\\' OR UPPER(u.first_name) LIKE UPPER(%s) ESCAPE '\\' "
            "OR UPPER(u.last_name) LIKE UPPER(%s) ESCAPE '\\' OR UPPER(u.username) = UPPER(%s)"
        )
        params: list[Any] = [pattern, pattern, pattern, text]
        ref = text.upper().removeprefix("REQ-")
        if ref.isdigit():
            matches += " OR o.id = %s"
            params.append(int(ref))
        about.add(matches, *params)
    if about.parts:
        found.add(
            f"h.object_id IN (SELECT {_REQUEST_KEY} FROM approvals_approvalrequest o "  # nosec B608  # conditions written here, values are parameters
            f"JOIN accounts_user u ON u.id = o.requester_id WHERE {about.sql})",
            *about.params,
        )
    return found


# The sorts: (the column paged on, ORDER BY, the keyset comparison after a row).
_SORTS = {
    "due": ("due_at", "h.due_at ASC NULLS LAST, h.id ASC"),
    "oldest": ("opened_at", "h.opened_at ASC, h.id ASC"),
    "newest": ("opened_at", "h.opened_at DESC, h.id DESC"),
}


def order_by(sort: str) -> str:
    return _SORTS.get(sort, _SORTS["due"])[1]


def cursor_of(handoff: Handoff, sort: str) -> str:
    column = _SORTS.get(sort, _SORTS["due"])[0]
    value = getattr(handoff, column)
    return f"{value.isoformat() if value else ''}|{handoff.pk}"


def after(sort: str, cursor: str) -> Where:
    """The rows after `cursor` in `sort`'s order (a malformed cursor starts over)."""
    raw_value, _, raw_id = cursor.partition("|")
    value = parse_datetime(raw_value) if raw_value else None
    found = Where()
    if not raw_id.isdigit() or (raw_value and value is None):
        return found
    last = int(raw_id)
    if value is None:
        # Only the due sort has rows without a value: those without a due date come last.
        return found if sort in ("newest", "oldest") else found.add("h.due_at IS NULL AND h.id > %s", last)
    if sort == "newest":
        return found.add(
            "h.opened_at < %s OR (h.opened_at = %s AND h.id < %s)", moment(value), moment(value), last
        )
    if sort == "oldest":
        return found.add(
            "h.opened_at > %s OR (h.opened_at = %s AND h.id > %s)", moment(value), moment(value), last
        )
    return found.add(
        "h.due_at > %s OR (h.due_at = %s AND h.id > %s) OR h.due_at IS NULL",
        moment(value),
        moment(value),
        last,
    )


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
        (sql.picked(_group_model(), db), "g", "candidate_group"),
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


def _group_model() -> type[Group]:
    field = Handoff._meta.get_field("candidate_group")
    assert isinstance(field, models.ForeignKey)
    model = field.related_model
    assert isinstance(model, type)
    return model  # type: ignore[return-value]


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
