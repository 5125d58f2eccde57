"""The representation's rows read in plain SQL (approvals.selectors.api_rows) are the
ORM's rows, related people and groups included, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import models

from accounts.tokens import token_by_prefix
from approvals.models import ApprovalRequest, Decision, RequestRevision
from approvals.selectors.api_rows import (
    decisions_rows,
    handoffs_rows,
    history_rows,
    open_handoffs_rows,
    request_row,
    revisions_rows,
    token_row,
)
from approvals.services import request_act
from tests.approvals.api.conftest import ApiWorld
from tests.performance.conftest import memory_broker  # noqa: F401  (a fixture used below)
from workflows.models import AuditEntry, Handoff

pytestmark = pytest.mark.django_db(transaction=True)


def _values(row: models.Model | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {f.attname: getattr(row, f.attname) for f in row._meta.concrete_fields}


def _same(plain: list[Any], orm: list[Any], related: tuple[str, ...]) -> None:
    assert [r.pk for r in plain] == [r.pk for r in orm]
    for mine, theirs in zip(plain, orm, strict=True):
        assert type(mine) is type(theirs)
        assert _values(mine) == _values(theirs)
        assert not mine._state.adding
        for name in related:
            assert _values(getattr(mine, name)) == _values(getattr(theirs, name)), name


@pytest.mark.usefixtures("memory_broker")
def test_the_representation_rows_read_in_plain_sql_equal_the_orms(api: ApiWorld) -> None:
    # given a request asked for changes, resubmitted with a new title, and an untouched one
    approver, requester = api.user("approver"), api.user("requester")
    request = api.new_request(title="Buy a desk")
    other = api.new_request(title="Buy a chair")
    request_act(request_id=request.pk, action="request_changes", actor=approver, comment="Which desk?")
    request_act(request_id=request.pk, action="resubmit", actor=requester, data={"title": "Buy the oak desk"})

    # when its rows are read in plain SQL
    handoffs, decisions = open_handoffs_rows(request), decisions_rows(request)
    revisions, history = revisions_rows(request), history_rows(request)

    # then they are the ORM's rows, in the ORM's order, with the same related rows
    orm_handoffs = list(
        Handoff.objects.for_instance(request)
        .open()
        .select_related("assignee", "candidate_group")
        .order_by("id")
    )
    assert handoffs, "the resubmitted request is held again"
    _same(handoffs, orm_handoffs, ("assignee", "candidate_group"))
    every_handoff = handoffs_rows(request)
    assert any(h.closed_at is not None for h in every_handoff), "closed handoffs are among them"
    _same(every_handoff, list(Handoff.objects.for_instance(request).order_by("id")), ())
    orm_decisions = list(
        Decision.objects.filter(request=request)
        .select_related("principal", "actor")
        .order_by("revision", "id")
    )
    assert decisions, "asking for changes is a decision"
    _same(decisions, orm_decisions, ("principal", "actor"))
    orm_revisions = list(RequestRevision.objects.filter(request=request).order_by("number"))
    _same(revisions, orm_revisions, ())
    orm_history = list(
        AuditEntry.objects.for_instance(request).select_related("actor", "on_behalf_of").order_by("seq")
    )
    assert [e.action for e in history][-2:] == ["request_changes", "resubmit"]
    assert all(isinstance(e.data, dict) for e in history), "JSON comes back decoded"
    _same(history, orm_history, ("actor", "on_behalf_of"))
    assert history[-1].actor is not None
    assert history[-1].actor.pk == requester.pk
    assert history[-1].on_behalf_of is None
    # and each person named is built once per read: the requester's entries share one row
    by_requester = [e.actor for e in history if e.actor_id == requester.pk]
    assert len(by_requester) >= 2
    assert all(actor is by_requester[0] for actor in by_requester)
    # and another request's rows are not among them
    assert {e.pk for e in history}.isdisjoint({e.pk for e in history_rows(other)})


def test_the_request_row_read_in_plain_sql_equals_the_orms_and_a_missing_one_is_none(api: ApiWorld) -> None:
    # given a submitted request
    request = api.new_request(title="Buy a lamp")

    # when it is read in plain SQL, and so are keys that name no request
    row = request_row(request.pk)
    missing, out_of_range = request_row(request.pk + 1000), request_row(2**70)

    # then it is the ORM's row with its requester, type and policy version, and the others are None
    orm = ApprovalRequest.objects.select_related("requester", "request_type", "policy_version").get(
        pk=request.pk
    )
    assert row is not None
    _same([row], [orm], ("requester", "request_type", "policy_version"))
    assert row.policy_version is not None
    assert row.payload == orm.payload
    assert missing is None
    assert out_of_range is None


def test_the_token_row_read_in_plain_sql_equals_the_orms_and_an_unknown_prefix_is_none(api: ApiWorld) -> None:
    # given a token of the approver
    api.token_for("approver")
    token = api.tokens["approver"]

    # when it is read by its prefix in plain SQL, and so is a prefix nobody has
    row, unknown = token_row(token.prefix), token_row("0" * 12)

    # then it is the ORM's row with its owner, and the unknown prefix finds nothing
    assert row is not None
    _same([row], [token_by_prefix(token.prefix)], ("owner",))
    assert row.owner.pk == api.user("approver").pk
    assert unknown is None
