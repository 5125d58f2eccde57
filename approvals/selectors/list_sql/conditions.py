"""The conditions on open handoffs (`h`: workflows_handoff) the inbox and the team view
share: who may see them, the filters, the keyset, as `Where` (plain SQL and its
parameters). Portable: PostgreSQL and SQLite run the same text."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from approvals.models import ApprovalRequest
from workflows import sql
from workflows.models import Handoff

DUE_SOON = timedelta(hours=24)


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
