"""The hot tables carry no index another index already serves (issue 6: every index of
these tables is written on each transition)."""

import pytest
from django.apps import apps
from django.db import connection


def _partial() -> set[str]:
    """Names of the partial indexes (WHERE ...): they serve only some rows, so cover nothing."""
    return {i.name for model in apps.get_models() for i in model._meta.indexes if i.condition is not None}


HOT_TABLES = [
    "approvals_approvalrequest",
    "approvals_requestrevision",
    "approvals_decision",
    "workflows_auditentry",
    "workflows_handoff",
]


def _covered(table: str) -> list[str]:
    """Plain (non-unique, non-partial) indexes whose columns lead another index of `table`."""
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
    indexes = {name: c for name, c in found.items() if c["index"] and c["columns"]}
    partial = _partial()
    redundant = []
    for name, index in indexes.items():
        if index["unique"] or index["primary_key"]:
            continue
        columns = index["columns"]
        for other_name, other in indexes.items():
            if (
                other_name != name
                and other_name not in partial
                and other["columns"][: len(columns)] == columns
                and len(other["columns"]) > len(columns)
            ):
                redundant.append(f"{name} {columns} is served by {other_name} {other['columns']}")
    return redundant


@pytest.mark.django_db
@pytest.mark.parametrize("table", HOT_TABLES)
def test_no_index_is_a_prefix_of_another(table: str) -> None:
    # given the migrated schema
    # when the indexes of a table written on every transition are compared
    redundant = _covered(table)
    # then none is a leading part of another one (it would only cost writes)
    assert redundant == []


@pytest.mark.django_db
def test_expiry_escalation_targets_are_indexed_only_where_set() -> None:
    # given the migrated schema
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, "approvals_approvalrequest")
    # when the indexes on the expiry escalation targets are listed
    on = {
        column: sorted(name for name, c in found.items() if c["index"] and c["columns"] == [column])
        for column in ("expiry_escalate_user_id", "expiry_escalate_group_id")
    }
    # then each has exactly the partial one (PROTECT checks stay indexed; NULLs cost nothing)
    assert on == {
        "expiry_escalate_user_id": ["request_expiry_escalate_user"],
        "expiry_escalate_group_id": ["request_expiry_escalate_group"],
    }
    assert {"request_expiry_escalate_user", "request_expiry_escalate_group"} <= _partial()
