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

from approvals.selectors.list_sql.conditions import (
    DUE_SOON,
    Where,
    after,
    any_of,
    asleep,
    awake,
    cursor_of,
    filtered,
    held_for,
    moment,
    open_request_handoffs,
    order_by,
    read_datetime,
    request_content_type,
    values_in,
)
from approvals.selectors.list_sql.reads import (
    Row,
    counts,
    delegations_to,
    page_rows,
    unread_notifications,
    view_names,
    workloads,
)

__all__ = [
    "DUE_SOON",
    "Row",
    "Where",
    "after",
    "any_of",
    "asleep",
    "awake",
    "counts",
    "cursor_of",
    "delegations_to",
    "filtered",
    "held_for",
    "moment",
    "open_request_handoffs",
    "order_by",
    "page_rows",
    "read_datetime",
    "request_content_type",
    "unread_notifications",
    "values_in",
    "view_names",
    "workloads",
]
