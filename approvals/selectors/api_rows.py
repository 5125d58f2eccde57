"""The rows of one request's representation, read in plain parameterised SQL.

The API answers every action with the request's full representation: its open handoffs,
decisions, revisions and history, with the people and groups they name. Through the ORM
each of those four reads cost about 1 ms of Python to build its SQL (select_related over
the wide user table), more than the database spends on it (profiled: bench/api, one action
end to end). Here the statement of each is written once per model from its `_meta`
(workflows.sql's tables, cached per connection) and its rows come back through Django's
own converters and `Model.from_db`, so they equal the ORM's rows. Tested on SQLite and
PostgreSQL (tests/approvals/api/test_representation_rows.py).
"""

from __future__ import annotations

from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.db import models

from accounts.models import ApiToken
from approvals.models import ApprovalRequest, Decision, RequestRevision
from workflows.models import AuditEntry, Handoff
from workflows.sql import pk_value, rows_related, table_of
from workflows.sql.tables import db_of


def column(model: type[models.Model], name: str) -> str:
    """The quoted, table-qualified column of `model`'s field `name`, for a WHERE or ORDER BY."""
    table = table_of(model, db_of())
    field = model._meta.get_field(name)
    assert isinstance(field, models.Field)
    assert field.column is not None
    return f"{table.name}.{table.quote(field.column)}"


def _of_instance(model: type[models.Model], request: ApprovalRequest) -> tuple[str, list[Any]]:
    content_type = ContentType.objects.get_for_model(ApprovalRequest)  # cached per process
    where = f"{column(model, 'content_type')} = %s AND {column(model, 'object_id')} = %s"
    return where, [content_type.pk, str(request.pk)]


def open_handoffs_rows(request: ApprovalRequest) -> list[Handoff]:
    """Who holds `request` now (its open handoffs, with assignee and group), oldest first."""
    where, params = _of_instance(Handoff, request)
    return rows_related(
        Handoff,
        related=("assignee", "candidate_group"),
        where=f"{where} AND {column(Handoff, 'closed_at')} IS NULL",
        params=params,
        order_by=column(Handoff, "id"),
    )


def handoffs_rows(request: ApprovalRequest) -> list[Handoff]:
    """All of `request`'s handoffs, open and closed (who may see it), oldest first."""
    where, params = _of_instance(Handoff, request)
    return rows_related(Handoff, related=(), where=where, params=params, order_by=column(Handoff, "id"))


def decisions_rows(request: ApprovalRequest) -> list[Decision]:
    """`request`'s decisions, with principal and actor, by revision then as taken."""
    return rows_related(
        Decision,
        related=("principal", "actor"),
        where=f"{column(Decision, 'request')} = %s",
        params=[request.pk],
        order_by=f"{column(Decision, 'revision')}, {column(Decision, 'id')}",
    )


def revisions_rows(request: ApprovalRequest) -> list[RequestRevision]:
    """`request`'s revisions, by number."""
    return rows_related(
        RequestRevision,
        related=(),
        where=f"{column(RequestRevision, 'request')} = %s",
        params=[request.pk],
        order_by=column(RequestRevision, "number"),
    )


def history_rows(request: ApprovalRequest) -> list[AuditEntry]:
    """`request`'s audit chain in order, with the people named in it."""
    where, params = _of_instance(AuditEntry, request)
    return rows_related(
        AuditEntry,
        related=("actor", "on_behalf_of"),
        where=where,
        params=params,
        order_by=column(AuditEntry, "seq"),
    )


def request_row(request_id: int) -> ApprovalRequest | None:
    """The request with its requester, type and policy version (what its representation
    and actions read), or None when there is no such request (or the key cannot be one)."""
    try:
        key = pk_value(ApprovalRequest, request_id)
    except (ValueError, ValidationError):
        return None
    found = rows_related(
        ApprovalRequest,
        related=("requester", "request_type", "policy_version"),
        where=f"{column(ApprovalRequest, 'id')} = %s",
        params=[key],
        order_by=column(ApprovalRequest, "id"),
    )
    return found[0] if found else None


def token_row(prefix: str) -> ApiToken | None:
    """accounts.tokens.token_by_prefix in plain SQL: the API token of a public prefix
    (unique) with its owner, read on every API call."""
    found = rows_related(
        ApiToken,
        related=("owner",),
        where=f"{column(ApiToken, 'prefix')} = %s",
        params=[prefix],
        order_by=column(ApiToken, "id"),
    )
    return found[0] if found else None
