"""The engine is generic: a workflow keyed by a UUID (tests.testapp.Ticket) transitions,
hands off, and keeps a verifiable audit chain like the integer-keyed approval request."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command

from accounts.models import User
from tests.factories import make_request
from tests.testapp.models import Ticket
from tests.testapp.workflow import TICKET_CHANGED_TASK
from tests.workflows.support import audit_column_set, audit_entry_remove, db_snapshot
from workflows import errors
from workflows.audit import GENESIS, audit_verify
from workflows.models import AuditEntry, Handoff, OutboxEvent
from workflows.selectors import audit_entries_for_instance, handoffs_for_instance, handoffs_open_for_user
from workflows.services import (
    SYSTEM,
    handoff_claim,
    handoff_reassign,
    handoff_unclaim,
    instance_channel_group,
    instance_create,
    transition,
)


def act(ticket_id: Any, name: str, **kwargs: Any) -> Any:
    return transition(model=Ticket, instance_id=ticket_id, name=name, **kwargs)


def refused(error: type[errors.WorkflowError], call: Any, **kwargs: Any) -> errors.WorkflowError:
    before = db_snapshot()
    with pytest.raises(error) as caught:
        call(**kwargs)
    assert db_snapshot() == before
    return caught.value


@pytest.fixture
def started(ticket: Ticket, worker: User) -> Ticket:
    return act(ticket.pk, "start", actor=worker).instance


def work_handoff(ticket: Ticket) -> Handoff:
    return Handoff.objects.for_instance(ticket).open().get()


@pytest.mark.django_db
def test_a_uuid_keyed_instance_is_created_with_its_chain(ticket: Ticket, reporter: User):
    # given a ticket made through the service  /  then its key is a UUID and its chain starts
    assert isinstance(ticket.pk, uuid.UUID)
    (entry,) = AuditEntry.objects.for_instance(ticket)
    assert (entry.object_id, entry.seq, entry.prev_hash, entry.action) == (
        str(ticket.pk),
        1,
        GENESIS,
        "create",
    )
    assert entry.actor_id == reporter.pk
    assert ticket.workflow_ref() == f"testapp.ticket:{ticket.pk}"


@pytest.mark.django_db
def test_instance_create_takes_only_a_new_instance_and_may_be_the_systems(
    ticket: Ticket, reporter: User, team: Group
):
    # given a saved ticket  /  when it is "created" again  /  then InvalidInput, nothing written
    refused(errors.InvalidInput, instance_create, instance=ticket, actor=reporter)
    # and the system may create one: the first entry has no actor
    made = instance_create(instance=Ticket(title="from a timer", reporter=reporter, team=team), actor=SYSTEM)
    (entry,) = AuditEntry.objects.for_instance(made)
    assert (entry.actor_id, entry.seq, entry.target) == (None, 1, "open")


@pytest.mark.django_db
@pytest.mark.parametrize("as_text", [False, True], ids=["uuid", "text"])
def test_a_uuid_keyed_instance_transitions_and_opens_a_handoff(
    ticket: Ticket, worker: User, team: Group, reporter: User, as_text: bool
):
    # given an open ticket  /  when a team member starts it (by UUID or by its text form)
    result = act(str(ticket.pk) if as_text else ticket.pk, "start", actor=worker)
    # then it is in progress, one version on, with a handoff to the team
    assert (result.source, result.target, result.instance.version) == ("open", "in_progress", 2)
    handoff = work_handoff(ticket)
    assert (handoff.object_id, handoff.candidate_group_id, handoff.stage) == (str(ticket.pk), team.pk, "work")
    # and the entry, the outbox events and the task event name the ticket by its UUID
    assert result.entry.object_id == str(ticket.pk)
    destinations = set(OutboxEvent.objects.values_list("destination", flat=True))
    assert {
        instance_channel_group(ticket),
        f"inbox.group.{team.pk}",
        f"inbox.user.{reporter.pk}",
    } <= destinations
    task = OutboxEvent.objects.get(kind=OutboxEvent.Kind.TASK)
    assert (task.destination, task.payload["kwargs"]) == (
        TICKET_CHANGED_TASK,
        {"ticket": str(ticket.pk), "audit_seq": 2},
    )


@pytest.mark.django_db
def test_uuid_keyed_errors_leave_nothing_written(
    ticket: Ticket, worker: User, started: Ticket, outsider: User
):
    ticket_id = ticket.pk
    for missing in [uuid.uuid4(), str(uuid.uuid4()), "not-a-uuid", 12345, "", None]:
        refused(errors.NotFound, act, ticket_id=missing, name="start", actor=worker)
    refused(errors.TransitionNotAllowed, act, ticket_id=ticket_id, name="start", actor=worker)
    refused(errors.TransitionNotAllowed, act, ticket_id=ticket_id, name="reopen", actor=outsider)
    refused(
        errors.Forbidden, act, ticket_id=ticket_id, name="finish", actor=outsider, data={"resolution": "x"}
    )
    error = refused(errors.InvalidInput, act, ticket_id=ticket_id, name="finish", actor=worker, data={})
    assert list(error.field_errors) == ["resolution"]
    refused(errors.InvalidInput, act, ticket_id=ticket_id, name="nope", actor=worker)
    refused(errors.StaleVersion, act, ticket_id=ticket_id, name="finish", actor=worker, expected_version=1)


@pytest.mark.django_db
def test_a_uuid_keyed_transition_replays_by_key(started: Ticket, worker: User):
    first = act(started.pk, "finish", actor=worker, data={"resolution": "fixed"}, idempotency_key="f")
    again = act(str(started.pk), "finish", actor=worker, data={"resolution": "fixed"}, idempotency_key="f")
    assert (again.replayed, again.entry.pk, again.instance.pk) == (True, first.entry.pk, started.pk)
    assert again.instance.state == "done"


@pytest.mark.django_db
def test_uuid_keyed_handoffs_claim_unclaim_reassign(
    started: Ticket, worker: User, second_worker: User, reporter: User, manager: User, team: Group
):
    handoff = work_handoff(started)
    # the team offers it: a member sees it in their inbox of tickets
    assert [h.pk for h in handoffs_open_for_user(user=worker, model=Ticket)] == [handoff.pk]
    # the reporter, though a team member, may not hold their own ticket
    refused(errors.Forbidden, handoff_claim, handoff_id=handoff.pk, actor=reporter)
    # a worker claims and releases it; the colleague claims it then
    assert handoff_claim(handoff_id=handoff.pk, actor=worker).assignee_id == worker.pk
    refused(errors.Forbidden, handoff_unclaim, handoff_id=handoff.pk, actor=second_worker)
    assert handoff_unclaim(handoff_id=handoff.pk, actor=worker).assignee_id is None
    handoff_claim(handoff_id=handoff.pk, actor=second_worker)
    # a manager hands it back to the first worker; never to the reporter
    refused(
        errors.InvalidInput,
        handoff_reassign,
        handoff_id=handoff.pk,
        actor=manager,
        to_user=reporter,
        reason="x",
    )
    successor = handoff_reassign(
        handoff_id=handoff.pk, actor=manager, to_user=worker, to_group=team, reason="back"
    )
    assert successor.object_id == str(started.pk)
    # the holder finishes it: the handoff closes as done
    with pytest.raises(errors.Forbidden):
        act(started.pk, "finish", actor=second_worker, data={"resolution": "x"})
    result = act(started.pk, "finish", actor=worker, data={"resolution": "rebooted"})
    assert (result.target, result.instance.resolution) == ("done", "rebooted")
    reasons = [(h.pk, h.close_reason) for h in handoffs_for_instance(started)]
    assert reasons == [(handoff.pk, "reassigned"), (successor.pk, "done")]
    actions = [e.action for e in audit_entries_for_instance(started)]
    assert actions == ["create", "start", "claim", "unclaim", "claim", "reassign", "finish"]
    assert audit_verify().ok


@pytest.mark.django_db
def test_uuid_keyed_chains_are_verified_and_breaks_named(
    started: Ticket, worker: User, requester: User, request_type: Any
):
    # given a finished ticket (create, start, finish) beside an approval request
    make_request(requester=requester, request_type=request_type)
    act(started.pk, "finish", actor=worker, data={"resolution": "done"})
    entries = list(AuditEntry.objects.for_instance(started).order_by("seq"))
    assert [e.seq for e in entries] == [1, 2, 3]
    report = audit_verify(batch_size=1)
    assert (report.ok, report.chains, report.entries) == (True, 2, 5)
    # when its middle entry is altered  /  then verify names it, with the UUID in the reference
    audit_column_set(entries[1].pk, "comment", "forged")
    first = audit_verify().first_break
    assert first is not None
    assert (first.entry_id, first.ref) == (entries[1].pk, f"testapp.ticket:{started.pk}")
    with pytest.raises(CommandError, match=f"entry {entries[1].pk} \\(testapp.ticket:{started.pk} #2\\)"):
        call_command("audit_verify")


@pytest.mark.django_db
def test_a_uuid_keyed_chain_missing_its_last_entry_is_caught(started: Ticket):
    last = AuditEntry.objects.for_instance(started).order_by("-seq").first()
    assert last is not None
    audit_entry_remove(last.pk)
    first = audit_verify().first_break
    assert first is not None
    assert (first.ref, first.entry_id) == (f"testapp.ticket:{started.pk}", None)
    assert "head is #2" in first.reason
