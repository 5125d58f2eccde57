"""Idempotency keys: a retried call replays the first result instead of acting twice."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connections

from accounts.models import User
from approvals.models import ApprovalRequest, RequestType
from approvals.services import request_act
from tests.factories import make_request
from tests.workflows.support import db_snapshot
from workflows import errors
from workflows.models import AuditEntry, IdempotencyKey, OutboxEvent


@pytest.mark.django_db
def test_the_same_key_and_action_replays_the_first_result(submitted: ApprovalRequest, approver: User):
    # given a reviewer who approved a request with a key
    first = request_act(
        request_id=submitted.pk, action="approve", actor=approver, comment="ok", idempotency_key="retry-1"
    )
    after_first = db_snapshot()
    # when the same call comes again (a client retry), twice
    replays = [
        request_act(
            request_id=submitted.pk, action="approve", actor=approver, comment="ok", idempotency_key="retry-1"
        )
        for _ in range(2)
    ]
    # then each replays the first result: same entry, same states, nothing new written
    assert first.replayed is False
    for replay in replays:
        assert replay.replayed is True
        assert replay.entry.pk == first.entry.pk
        assert (replay.source, replay.target) == ("in_review", "approved")
        assert replay.instance.state == "approved"
        assert replay.instance.version == first.instance.version
    assert db_snapshot() == after_first
    assert AuditEntry.objects.for_instance(submitted).filter(action="approve").count() == 1
    key = IdempotencyKey.objects.get(actor=approver, key="retry-1")
    assert key.audit_entry_id == first.entry.pk


@pytest.mark.django_db
def test_a_replay_writes_no_second_set_of_outbox_events(submitted: ApprovalRequest, approver: User):
    # given the events of one keyed approval
    before = OutboxEvent.objects.count()
    request_act(request_id=submitted.pk, action="approve", actor=approver, idempotency_key="k")
    one_set = OutboxEvent.objects.count() - before
    # when the call is retried  /  then no event is added
    request_act(request_id=submitted.pk, action="approve", actor=approver, idempotency_key="k")
    assert one_set > 0
    assert OutboxEvent.objects.count() - before == one_set


@pytest.mark.django_db
def test_a_retry_with_the_version_it_first_expected_replays_instead_of_going_stale(
    submitted: ApprovalRequest, approver: User
):
    # given an approval that expected version v and moved the request to v+1
    version = submitted.version
    request_act(
        request_id=submitted.pk,
        action="approve",
        actor=approver,
        expected_version=version,
        idempotency_key="v",
    )
    # when the client retries exactly the same call  /  then it replays rather than StaleVersion
    replay = request_act(
        request_id=submitted.pk,
        action="approve",
        actor=approver,
        expected_version=version,
        idempotency_key="v",
    )
    assert replay.replayed is True
    # and without the key the same call is stale
    with pytest.raises(errors.StaleVersion):
        request_act(request_id=submitted.pk, action="approve", actor=approver, expected_version=version)


@pytest.mark.django_db
def test_the_key_belongs_to_one_actor(
    requester: User, request_type: RequestType, approver: User, second_approver: User
):
    # given two requests and two reviewers who happen to use the same key
    first = make_request(requester=requester, request_type=request_type, title="first")
    second = make_request(requester=requester, request_type=request_type, title="second")
    # when each approves a different request with that key
    one = request_act(request_id=first.pk, action="approve", actor=approver, idempotency_key="shared")
    two = request_act(request_id=second.pk, action="approve", actor=second_approver, idempotency_key="shared")
    # then both acted: neither replays nor collides with the other's key
    assert (one.replayed, two.replayed) == (False, False)
    assert one.entry.pk != two.entry.pk
    assert {(k.actor_id, k.audit_entry_id) for k in IdempotencyKey.objects.filter(key="shared")} == {
        (approver.pk, one.entry.pk),
        (second_approver.pk, two.entry.pk),
    }


@pytest.mark.django_db
def test_another_actor_reusing_a_key_does_not_replay_someone_elses_result(
    submitted: ApprovalRequest, approver: User, second_approver: User
):
    # given a request approved by one reviewer with key 'k'
    request_act(request_id=submitted.pk, action="approve", actor=approver, idempotency_key="k")
    # when another reviewer sends the same call with the same key
    # then they get the real answer for them (the request is already approved), not a replay
    with pytest.raises(errors.TransitionNotAllowed):
        request_act(request_id=submitted.pk, action="approve", actor=second_approver, idempotency_key="k")
    assert not IdempotencyKey.objects.filter(actor=second_approver).exists()


@pytest.mark.django_db
def test_a_refused_call_does_not_use_up_its_key(submitted: ApprovalRequest, approver: User):
    # given a rejection refused for lack of a comment, sent with a key
    with pytest.raises(errors.InvalidInput):
        request_act(request_id=submitted.pk, action="reject", actor=approver, idempotency_key="r")
    assert not IdempotencyKey.objects.exists()
    # when the corrected call comes with the same key
    result = request_act(
        request_id=submitted.pk, action="reject", actor=approver, comment="too dear", idempotency_key="r"
    )
    # then it acts (the key was rolled back with the refused call)
    assert (result.replayed, result.target) == (False, "rejected")


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_simultaneous_retries_with_one_key_act_once(submitted: ApprovalRequest, approver: User):
    # given five copies of the same keyed approval, sent at the same moment on their own connections
    copies = 5
    barrier = threading.Barrier(copies)
    results: list[Any] = []
    failures: list[BaseException] = []

    def send() -> None:
        try:
            actor = User.objects.get(pk=approver.pk)
            barrier.wait(timeout=10)
            results.append(
                request_act(request_id=submitted.pk, action="approve", actor=actor, idempotency_key="burst")
            )
        except BaseException as exc:
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(copies)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    # then one acted and the others waited for it and replayed its result: no error, no conflict
    assert failures == []
    assert sorted(r.replayed for r in results) == [False] + [True] * (copies - 1)
    assert len({r.entry.pk for r in results}) == 1
    assert AuditEntry.objects.for_instance(submitted).filter(action="approve").count() == 1
    assert ApprovalRequest.objects.get(pk=submitted.pk).version == submitted.version + 1
