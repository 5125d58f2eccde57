"""The audit trail: one hash chain per instance, append-only, verified by audit_verify."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, IntegrityError, connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import User
from approvals.models import ApprovalRequest, RequestType
from approvals.services import request_act
from tests.factories import make_request
from tests.testapp.models import Ticket
from tests.workflows.support import AUDIT_TABLE, audit_column_set, audit_entry_remove, audit_sql
from workflows.audit import GENESIS, audit_verify, entry_hash, entry_rehash
from workflows.models import AppendOnlyError, AuditEntry, Handoff
from workflows.services import handoff_claim, handoff_reassign, instance_create

ON_POSTGRES = connection.vendor == "postgresql"


@pytest.fixture
def decided(
    submitted: ApprovalRequest, approver: User, second_approver: User, manager: User
) -> ApprovalRequest:
    """A request with five entries: create, submit, claim, reassign, approve."""
    handoff = handoff_claim(
        handoff_id=Handoff.objects.for_instance(submitted).open().get().pk, actor=approver
    )
    handoff_reassign(handoff_id=handoff.pk, actor=manager, to_user=second_approver, reason="Alex is away")
    request_act(request_id=submitted.pk, action="approve", actor=second_approver, comment="ok")
    return ApprovalRequest.objects.get(pk=submitted.pk)


def chain(instance: Any) -> list[AuditEntry]:
    return list(AuditEntry.objects.for_instance(instance).order_by("seq"))


def recomputed(entry: AuditEntry) -> str:
    content_type = entry.content_type
    return entry_rehash(entry, ref=f"{content_type.app_label}.{content_type.model}:{entry.object_id}")


def verify_command() -> str:
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    return out.getvalue()


def verify_command_fails() -> tuple[str, str]:
    err = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("audit_verify", stdout=io.StringIO(), stderr=err)
    return str(caught.value), err.getvalue()


# --- the chain -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_entries_chain_per_instance(decided: ApprovalRequest, requester: User, request_type: RequestType):
    # given a decided request and a second, fresh one
    other = make_request(requester=requester, request_type=request_type, title="other")
    for instance, actions in [
        (decided, ["create", "submit", "claim", "reassign", "approve"]),
        (other, ["create", "submit"]),
    ]:
        entries = chain(instance)
        # then each has its own chain: seq 1..n, the first linked to GENESIS, each to the one before
        assert [e.action for e in entries] == actions
        assert [e.seq for e in entries] == list(range(1, len(actions) + 1))
        assert [e.prev_hash for e in entries] == [GENESIS] + [e.hash for e in entries[:-1]]
        # and every stored hash is the hash of the entry's contents
        assert all(e.hash == recomputed(e) for e in entries)
        # and the instance's head is its last entry
        assert (instance.audit_seq, instance.audit_head) == (entries[-1].seq, entries[-1].hash)
    assert audit_verify().ok


@pytest.mark.django_db
def test_an_entry_records_who_what_and_why(decided: ApprovalRequest, second_approver: User, manager: User):
    by_action = {e.action: e for e in chain(decided)}
    approve = by_action["approve"]
    assert (approve.kind, approve.source, approve.target) == ("transition", "in_review", "approved")
    assert (approve.actor_id, approve.comment) == (second_approver.pk, "ok")
    assert approve.trace_id
    assert "decided_at" in approve.data["changes"]
    assert (by_action["reassign"].actor_id, by_action["reassign"].comment) == (manager.pk, "Alex is away")
    assert by_action["create"].data["fields"]["title"] == "Buy a desk"


BASE_HASH_FIELDS: dict[str, Any] = {
    "ref": "approvals.approvalrequest:1",
    "seq": 2,
    "kind": "transition",
    "action": "approve",
    "source": "in_review",
    "target": "approved",
    "actor_id": 3,
    "on_behalf_of_id": 4,
    "comment": "ok",
    "data": {"changes": {"decided_at": [None, "2026-01-01T00:00:00Z"]}},
    "trace_id": "abc",
    "created_at": __import__("datetime").datetime(2026, 1, 1, tzinfo=__import__("datetime").UTC),
    "prev_hash": GENESIS,
}


@pytest.mark.parametrize(
    ("field", "other"),
    [
        ("ref", "approvals.approvalrequest:2"),
        ("seq", 3),
        ("kind", "handoff"),
        ("action", "reject"),
        ("source", "draft"),
        ("target", "rejected"),
        ("actor_id", 5),
        ("on_behalf_of_id", None),
        ("comment", "ok "),
        ("data", {"changes": {"decided_at": [None, "2026-01-01T00:00:01Z"]}}),
        ("trace_id", "abd"),
        ("created_at", BASE_HASH_FIELDS["created_at"] + timedelta(microseconds=1)),
        ("prev_hash", "1" * 64),
    ],
)
def test_the_hash_covers_every_field(field: str, other: Any):
    # given an entry's fields  /  when any one of them changes  /  then its hash changes
    assert entry_hash(**BASE_HASH_FIELDS) != entry_hash(**{**BASE_HASH_FIELDS, field: other})


# --- audit_verify ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_intact_trail_verifies(decided: ApprovalRequest, ticket: Ticket):
    # given two chains (an integer-keyed request, a UUID-keyed ticket)
    report = audit_verify(batch_size=2)
    # then the report is OK and counts them
    assert (report.ok, report.entries, report.chains) == (True, 6, 2)
    assert "OK: 6 entries in 2 chains verified" in verify_command()


TAMPERED_COLUMNS = [
    "kind",
    "action",
    "source",
    "target",
    "actor_id",
    "on_behalf_of_id",
    "comment",
    "data",
    "trace_id",
    "created_at",
    "prev_hash",
    "hash",
]


@pytest.mark.django_db
def test_verify_names_the_first_altered_entry(decided: ApprovalRequest, manager: User):
    # given a decided request (five entries)
    victim = chain(decided)[2]
    forged: dict[str, Any] = {
        "kind": "note",
        "action": "approve",
        "source": "draft",
        "target": "approved",
        "actor_id": manager.pk,
        "on_behalf_of_id": manager.pk,
        "comment": "nothing to see",
        "data": {"handoff": 0},
        "trace_id": "forged",
        "created_at": victim.created_at - timedelta(seconds=1),
        "prev_hash": "f" * 64,
        "hash": "e" * 64,
    }
    for column in TAMPERED_COLUMNS:
        # (each alteration is rolled back before the next)
        with transaction.atomic():
            # when one column of its third entry (the claim) is altered through raw SQL
            audit_column_set(victim.pk, column, forged[column])
            # then verification names exactly that entry as the first break
            report = audit_verify()
            first = report.first_break
            assert first is not None, f"altering {column} went unnoticed"
            assert (first.entry_id, first.seq, first.ref) == (victim.pk, 3, decided.workflow_ref()), column
            # and the command fails naming it
            message, errors_out = verify_command_fails()
            assert f"entry {victim.pk} ({decided.workflow_ref()} #3)" in message, column
            assert f"BROKEN entry {victim.pk}" in errors_out, column
            transaction.set_rollback(True)
        assert audit_verify().ok, f"the alteration of {column} was not rolled back"


@pytest.mark.django_db
def test_verify_catches_an_altered_entry_whose_hash_was_recomputed(decided: ApprovalRequest):
    # given an entry altered and re-hashed consistently by someone who knows the scheme
    entries = chain(decided)
    victim = entries[1]
    victim.comment = "rewritten"
    audit_column_set(victim.pk, "comment", "rewritten")
    audit_column_set(victim.pk, "hash", recomputed(victim))
    # when verified  /  then the next entry's link to it no longer matches
    first = audit_verify().first_break
    assert first is not None
    assert (first.entry_id, first.seq) == (entries[2].pk, 3)
    assert "prev_hash" in first.reason


@pytest.mark.django_db
def test_verify_names_the_entry_after_one_removed_in_the_middle(decided: ApprovalRequest):
    entries = chain(decided)
    audit_entry_remove(entries[1].pk)
    first = audit_verify(batch_size=3).first_break
    assert first is not None
    assert (first.entry_id, first.seq) == (entries[2].pk, 3)
    assert "jumps from 1 to 3" in first.reason
    message, _ = verify_command_fails()
    assert f"entry {entries[2].pk}" in message


@pytest.mark.django_db
def test_verify_catches_the_first_entry_removed(decided: ApprovalRequest):
    entries = chain(decided)
    audit_entry_remove(entries[0].pk)
    first = audit_verify().first_break
    assert first is not None
    assert (first.entry_id, first.seq) == (entries[1].pk, 2)


@pytest.mark.django_db
def test_verify_catches_the_last_entry_removed(decided: ApprovalRequest):
    # given the last entry removed: the chain itself is consistent, but shorter than its head
    entries = chain(decided)
    audit_entry_remove(entries[-1].pk)
    # when verified  /  then the head mismatch is reported, naming the instance and both positions
    report = audit_verify()
    assert len(report.breaks) == 1
    first = report.breaks[0]
    assert (first.ref, first.seq, first.entry_id) == (decided.workflow_ref(), 4, None)
    assert "chain ends at #4 but the instance's head is #5" in first.reason
    message, errors_out = verify_command_fails()
    assert decided.workflow_ref() in message
    assert "#5" in errors_out


@pytest.mark.django_db
def test_verify_catches_every_entry_removed(decided: ApprovalRequest):
    for entry in chain(decided):
        audit_entry_remove(entry.pk)
    first = audit_verify().first_break
    assert first is not None
    assert (first.ref, first.reason) == (decided.workflow_ref(), "all entries missing")


@pytest.mark.django_db
def test_verify_catches_a_head_reset_to_nothing(decided: ApprovalRequest):
    # given an instance whose head was wiped while its entries remain
    ApprovalRequest.objects.filter(pk=decided.pk).update(audit_seq=0, audit_head="")
    # when verified  /  then the mismatch is reported
    first = audit_verify().first_break
    assert first is not None
    assert first.ref == decided.workflow_ref()


@pytest.mark.django_db
def test_verify_catches_an_altered_head(decided: ApprovalRequest):
    ApprovalRequest.objects.filter(pk=decided.pk).update(audit_head="0" * 64)
    first = audit_verify().first_break
    assert first is not None
    assert (first.ref, first.entry_id) == (decided.workflow_ref(), None)


@pytest.mark.django_db
def test_one_broken_chain_leaves_the_others_verified(
    decided: ApprovalRequest, requester: User, request_type: RequestType
):
    # given three chains, the middle one altered
    before = make_request(requester=requester, request_type=request_type, title="before")
    after = make_request(requester=requester, request_type=request_type, title="after")
    audit_column_set(chain(before)[0].pk, "comment", "forged")
    # when verified in small batches  /  then exactly one break, in that chain
    report = audit_verify(batch_size=2)
    assert [b.ref for b in report.breaks] == [before.workflow_ref()]
    assert (report.chains, report.entries) == (3, 9)
    assert after.audit_seq == 2


# --- stored values hash the same after the database round trip -------------------------------


@pytest.mark.django_db
def test_numbers_that_the_database_rewrites_still_verify(ticket: Ticket, reporter: User, team: Any):
    # given entry data with numbers PostgreSQL's jsonb writes back differently (1e16 → an
    # integer, -0.0 → 0.0, huge integral floats)
    numbers = {"big": 1e16, "huger": 1.5e300, "negzero": -0.0, "small": 1e-7, "int": 2**70, "plain": 2.5}
    instance_create(
        instance=Ticket(title="numbers", reporter=reporter, team=team, details=numbers),
        actor=reporter,
        data={"numbers": numbers},
    )
    # when verified  /  then the chain is intact
    assert audit_verify().ok, audit_verify().breaks


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8),
            children,
            max_size=4,
        )
    ),
    max_leaves=12,
)


@pytest.mark.django_db
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    details=st.dictionaries(st.text(max_size=5).filter(lambda k: "\x00" not in k), json_values, max_size=5)
)
def test_any_json_data_verifies_after_the_round_trip(
    ticket: Ticket, reporter: User, team: Any, details: dict[str, Any]
):
    # given a ticket created with arbitrary JSON details (recorded in its 'created' entry)
    created = instance_create(
        instance=Ticket(title="any", reporter=reporter, team=team, details=details), actor=reporter
    )
    # when its chain is read back from the database  /  then every entry still hashes the same
    assert all(e.hash == recomputed(e) for e in chain(created))


# --- append-only -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_orm_never_changes_or_removes_an_entry(decided: ApprovalRequest):
    entries = chain(decided)
    entry = entries[1]
    original = list(AuditEntry.objects.order_by("pk").values())
    attempts: list[Callable[[], Any]] = [
        entry.save,
        lambda: entry.save(update_fields=["comment"]),
        lambda: entry.save(force_update=True),
        entry.delete,
        lambda: AuditEntry.objects.filter(pk=entry.pk).update(comment="x"),
        lambda: AuditEntry.objects.filter(pk=entry.pk).delete(),
        lambda: AuditEntry.objects.all().delete(),
        lambda: AuditEntry.objects.bulk_update(entries, ["comment"]),
        lambda: AuditEntry.objects.update_or_create(pk=entry.pk, defaults={"comment": "x"}),
    ]
    for attempt in attempts:
        # when the ORM is asked to change or remove entries  /  then AppendOnlyError
        with pytest.raises(AppendOnlyError), transaction.atomic():
            attempt()
    # and nothing changed
    assert list(AuditEntry.objects.order_by("pk").values()) == original


@pytest.mark.django_db
def test_a_new_entry_object_cannot_overwrite_an_existing_row(decided: ApprovalRequest):
    # given an existing entry  /  when a forged object with its primary key is saved as new
    entry = chain(decided)[1]
    original = list(AuditEntry.objects.order_by("pk").values())
    forged = AuditEntry(**{**AuditEntry.objects.filter(pk=entry.pk).values().get(), "comment": "forged"})
    with pytest.raises((AppendOnlyError, IntegrityError)), transaction.atomic():
        forged.save()
    # then the stored entry is untouched
    assert list(AuditEntry.objects.order_by("pk").values()) == original


@pytest.mark.integration
@pytest.mark.django_db
@pytest.mark.parametrize(
    "statement",
    [
        f"UPDATE {AUDIT_TABLE} SET comment = 'x'",
        f"DELETE FROM {AUDIT_TABLE}",
        f"TRUNCATE {AUDIT_TABLE} CASCADE",
    ],
    ids=["update", "delete", "truncate"],
)
def test_postgresql_refuses_raw_sql_that_changes_the_trail(decided: ApprovalRequest, statement: str):
    # given the append-only trigger  /  when raw SQL updates, deletes or truncates entries
    before = list(AuditEntry.objects.order_by("pk").values())
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # TRUNCATE refuses pending FK checks
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            cursor.execute(statement)
    # then the database refuses, and the trail is as it was
    assert list(AuditEntry.objects.order_by("pk").values()) == before
    # while a superuser who switches the trigger off can (which is what audit_verify is for)
    audit_sql(f"UPDATE {AUDIT_TABLE} SET comment = 'x' WHERE id = %s", [before[0]["id"]])
    assert not audit_verify().ok
