"""Which webhook deliveries a request's lifecycle writes, and for whom: each event type at
its step, only to subscribers who may see the request, in the transition's own
transaction; a request's own callback URL on an allowed host, signed with the
deployment's callback secret."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from approvals.delegations import delegation_create
from approvals.models import ApprovalRequest
from approvals.policies import may_view
from approvals.services import request_act, request_create
from approvals.webhooks import REQUEST_WEBHOOKS, may_view_among
from tests.approvals.conftest import ROLES, World
from tests.factories import UserFactory
from tests.webhook_receiver import WebhookReceiver, webhook_fanouts_run, webhook_tasks_run
from workflows import errors
from workflows.models import OutboxEvent, WebhookDelivery, WebhookEventType
from workflows.services import handoff_reassign
from workflows.webhooks.events import DELIVER_TASK, FANOUT_TASK, webhook_fanouts_resume
from workflows.webhooks.registry import StepFacts
from workflows.webhooks.sending import webhook_deliveries_resume
from workflows.webhooks.services import callback_secret, signing_secrets, webhook_subscription_create
from workflows.webhooks.tasks import webhook_fanout_task, webhook_purge_task

pytestmark = pytest.mark.django_db

ALL_TYPES = list(WebhookEventType.values)
HOOK = "https://hooks.example.com/baton"


def _subscribe_everyone(world: World, roles: tuple[str, ...]) -> None:
    for role in roles:
        webhook_subscription_create(owner=world.user(role), target_url=HOOK, event_types=ALL_TYPES)


def _types_by_owner(request: ApprovalRequest) -> dict[str, Counter[str]]:
    found: dict[str, Counter[str]] = {}
    for owner, event_type in WebhookDelivery.objects.filter(instance_ref=request.workflow_ref()).values_list(
        "subscription__owner__username", "event_type"
    ):
        found.setdefault(owner, Counter())[event_type] += 1
    return found


def test_a_submission_reaches_only_subscribers_who_may_see_the_request(world: World):
    # given everyone of every role subscribed to every event
    roles = ("requester", "approver", "other_approver", "manager", "auditor", "outsider")
    _subscribe_everyone(world, roles)

    # when the requester submits a request (reviewed by the approver's group), and its
    # fan-out task runs
    request = world.new_request()
    webhook_fanouts_run()

    # then the requester, its reviewer, and those who see every request get it; the
    # approver of another group and the outsider get nothing
    by_owner = _types_by_owner(request)
    assert set(by_owner) == {"rita", "alex", "maria", "audrey"}
    # and each of them gets the submission, the action and the handoff it opened, once
    expected = Counter(
        {
            WebhookEventType.ACTION_TAKEN.value: 1,
            WebhookEventType.REQUEST_SUBMITTED.value: 1,
            WebhookEventType.HANDOFF_OPENED.value: 1,
        }
    )
    assert all(types == expected for types in by_owner.values()), by_owner
    # and each delivery has its outbox task event
    ids = {str(pk) for pk in WebhookDelivery.objects.values_list("pk", flat=True)}
    queued = {
        e.payload["kwargs"]["delivery_id"] for e in OutboxEvent.objects.filter(destination=DELIVER_TASK)
    }
    assert queued == ids


def test_a_decision_is_sent_as_decided_and_only_for_the_chosen_types(world: World):
    # given the requester subscribed to decisions only
    webhook_subscription_create(
        owner=world.user("requester"), target_url=HOOK, event_types=[WebhookEventType.REQUEST_DECIDED.value]
    )
    request = world.new_request()
    webhook_fanouts_run()
    assert not WebhookDelivery.objects.exists()

    # when the approver approves it
    request_act(request_id=request.pk, action="approve", actor=world.user("approver"))
    webhook_fanouts_run()

    # then one delivery says it was decided, with who did it and the new state
    delivery = WebhookDelivery.objects.get()
    assert delivery.event_type == WebhookEventType.REQUEST_DECIDED.value
    data = delivery.payload["data"]
    assert (data["state"], data["action"], data["actor"], data["ref"]) == (
        "approved",
        "approve",
        "alex",
        request.reference,
    )
    assert delivery.payload["type"] == WebhookEventType.REQUEST_DECIDED.value


def test_deliveries_roll_back_with_their_transition(world: World):
    # given a subscriber, and a request in review
    webhook_subscription_create(owner=world.user("requester"), target_url=HOOK, event_types=ALL_TYPES)
    request = world.new_request()
    webhook_fanouts_run()
    before = WebhookDelivery.objects.count()

    # when the approval's transaction rolls back after the transition
    def approve_then_fail() -> None:
        with transaction.atomic():
            request_act(request_id=request.pk, action="approve", actor=world.user("approver"))
            raise RuntimeError("the caller failed after the transition")

    with pytest.raises(RuntimeError):
        approve_then_fail()

    # then no fan-out of it was left behind, so no delivery either
    assert webhook_fanouts_run() == 0
    assert WebhookDelivery.objects.count() == before


def test_a_callback_url_on_a_host_not_allowed_is_refused_naming_the_field(settings, world: World):
    settings.WEBHOOK_CALLBACK_HOSTS = ["callbacks.example.com"]
    with pytest.raises(errors.InvalidInput) as refused:
        request_create(
            requester=world.user("requester"),
            request_type=world.request_type,
            title="Deploy",
            callback_url="https://evil.example.net/hook",
        )
    assert "callback_url" in refused.value.field_errors
    assert "evil.example.net" in refused.value.field_errors["callback_url"][0]
    assert not ApprovalRequest.objects.exists()


def test_a_request_s_own_callback_hears_its_decision_signed_with_the_callback_secret(
    settings, django_capture_on_commit_callbacks, world: World
):
    settings.WEBHOOK_CALLBACK_HOSTS = ["127.0.0.1"]
    settings.WEBHOOK_RETRY_SCHEDULE = [0]
    with WebhookReceiver(secrets=[callback_secret()]) as receiver:
        # given a request that carries its own callback URL
        with django_capture_on_commit_callbacks(execute=True):
            request = request_create(
                requester=world.user("requester"),
                request_type=world.request_type,
                title="Deploy",
                callback_url=receiver.url,
            )
        # then its submission is not sent there (only its outcome is)
        assert webhook_tasks_run() == []

        # when it is rejected
        with django_capture_on_commit_callbacks(execute=True):
            request_act(request_id=request.pk, action="reject", actor=world.user("approver"), comment="No")
        assert webhook_tasks_run() == ["delivered"]

        # then the callback got the decision, verified with the deployment's callback secret
        [received] = receiver.received
        assert received.verified_by == [0]
        assert received.payload["type"] == WebhookEventType.REQUEST_DECIDED.value
        assert received.payload["data"]["state"] == "rejected"
        assert received.path == "/hooks/baton"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://hooks.example.com/x", "Use https://"),
        ("https://user:pw@hooks.example.com/x", "user name or password"),
        ("not a url", "valid http(s) URL"),
        ("", "A URL is required"),
    ],
)
def test_a_subscription_to_a_bad_url_is_refused_naming_the_field(world: World, url: str, problem: str):
    with pytest.raises(errors.InvalidInput) as refused:
        webhook_subscription_create(owner=world.user("approver"), target_url=url, event_types=ALL_TYPES)
    assert problem in refused.value.field_errors["target_url"][0]
    assert not world.user("approver").webhook_subscriptions.exists()


def test_a_subscription_needs_known_event_types(world: World):
    with pytest.raises(errors.InvalidInput) as refused:
        webhook_subscription_create(
            owner=world.user("approver"), target_url=HOOK, event_types=["request.eaten"]
        )
    assert "request.eaten" in refused.value.field_errors["event_types"][0]
    with pytest.raises(errors.InvalidInput) as empty:
        webhook_subscription_create(owner=world.user("approver"), target_url=HOOK, event_types=[])
    assert empty.value.field_errors["event_types"] == ["Choose at least one event type."]


def test_plain_http_is_allowed_only_to_the_configured_hosts(settings, world: World):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    made = webhook_subscription_create(
        owner=world.user("approver"), target_url="http://127.0.0.1:8999/hook", event_types=ALL_TYPES
    )
    assert made.subscription.target_url == "http://127.0.0.1:8999/hook"
    assert made.secret.startswith("whsec_")
    settings.WEBHOOK_ALLOWED_HOSTS = []
    with pytest.raises(errors.InvalidInput):
        webhook_subscription_create(
            owner=world.user("approver"), target_url="http://127.0.0.1:8999/hook", event_types=ALL_TYPES
        )


def test_a_reassignment_tells_the_new_holder_s_subscription_that_a_handoff_opened(world: World):
    # given the approver of another group subscribed to opened handoffs, and a request
    # they cannot see yet
    webhook_subscription_create(
        owner=world.user("other_approver"),
        target_url=HOOK,
        event_types=[WebhookEventType.HANDOFF_OPENED.value],
    )
    request = world.new_request()
    webhook_fanouts_run()
    assert not WebhookDelivery.objects.exists()

    # when a manager hands the request's review to them
    handoff_reassign(
        handoff_id=world.open_handoff(request).pk,
        actor=world.user("manager"),
        to_user=world.user("other_approver"),
        reason="Alex is away",
    )
    webhook_fanouts_run()

    # then they hear of the handoff opened for them
    delivery = WebhookDelivery.objects.get()
    assert delivery.event_type == WebhookEventType.HANDOFF_OPENED.value
    [opened] = delivery.payload["data"]["handoffs_opened"]
    assert opened["assignee"] == "fiona"
    assert delivery.payload["data"]["action"] == "reassign"


def test_a_delivery_whose_task_was_lost_is_queued_again(world: World):
    # given a pending delivery long overdue (its worker died and its task is gone)
    webhook_subscription_create(owner=world.user("requester"), target_url=HOOK, event_types=ALL_TYPES)
    world.new_request()
    webhook_fanouts_run()
    stuck = WebhookDelivery.objects.filter(event_type=WebhookEventType.REQUEST_SUBMITTED.value).get()
    WebhookDelivery.objects.exclude(pk=stuck.pk).update(status=WebhookDelivery.Status.DELIVERED)
    WebhookDelivery.objects.filter(pk=stuck.pk).update(next_attempt_at=timezone.now() - timedelta(hours=1))
    OutboxEvent.objects.all().delete()

    # when the sweep runs
    assert webhook_deliveries_resume(overdue=timedelta(minutes=10)) == 1

    # then its task is due in the outbox again, and nothing else is
    [event] = OutboxEvent.objects.all()
    assert event.destination == DELIVER_TASK
    assert event.payload["kwargs"] == {"delivery_id": str(stuck.pk)}
    assert event.status == OutboxEvent.Status.PENDING
    assert event.available_at <= timezone.now()


@pytest.mark.parametrize(
    ("action", "by_system", "source", "target", "expected"),
    [
        # an overdue stage handed on by the timers, or an expiry's escalation
        ("reassign", True, "in_review", "in_review", {"action.taken", "request.escalated"}),
        # an overdue stage decided by its policy: escalated and decided
        ("time_out", True, "in_review", "rejected", {"action.taken", "request.escalated", "request.decided"}),
        ("expire", True, "in_review", "expired", {"action.taken", "request.expired"}),
        ("reassign", False, "in_review", "in_review", {"action.taken"}),  # a manager's
        ("approve", False, "in_review", "in_review", {"action.taken"}),  # one stage of several
        ("request_changes", False, "in_review", "changes_requested", {"action.taken", "request.decided"}),
        ("resubmit", False, "changes_requested", "in_review", {"action.taken", "request.submitted"}),
        ("withdraw", False, "in_review", "withdrawn", {"action.taken"}),
    ],
)
def test_each_lifecycle_step_is_the_event_types_it_means(
    world: World, action: str, by_system: bool, source: str, target: str, expected: set[str]
):
    # The timers' and the expiry's actions are named by their audit names.
    step = StepFacts(
        instance=world.in_review,
        action=action,
        source=source,
        target=target,
        actor=None if by_system else world.user("manager"),
        audit_seq=1,
    )
    assert set(REQUEST_WEBHOOKS.event_types(step)) == expected


def test_old_finished_deliveries_are_purged_and_pending_ones_kept(world: World):
    # given a delivered, a dead and a pending delivery, all 40 days old, and a fresh one
    webhook_subscription_create(owner=world.user("requester"), target_url=HOOK, event_types=ALL_TYPES)
    world.new_request()
    world.new_request(title="Fresh")
    webhook_fanouts_run()
    old, dead, pending, fresh = WebhookDelivery.objects.order_by("created_at", "event_type")[:4]
    long_ago = timezone.now() - timedelta(days=40)
    WebhookDelivery.objects.filter(pk__in=[old.pk, dead.pk, pending.pk]).update(created_at=long_ago)
    WebhookDelivery.objects.filter(pk__in=[old.pk, fresh.pk]).update(status=WebhookDelivery.Status.DELIVERED)
    WebhookDelivery.objects.filter(pk=dead.pk).update(status=WebhookDelivery.Status.DEAD)

    # when the daily purge runs with a 30-day window
    webhook_purge_task()

    # then the old finished ones are gone; the pending and the fresh one stay
    left = set(WebhookDelivery.objects.values_list("pk", flat=True))
    assert {old.pk, dead.pk} & left == set()
    assert {pending.pk, fresh.pk} <= left


def test_who_may_see_a_request_among_many_agrees_with_the_request_page(world: World):
    # given requests in several states, one with a handoff closed by the approver, and a
    # delegate standing in for the approver
    delegate = UserFactory.create(username="dora")
    delegation_create(
        actor=world.user("approver"),
        delegator=world.user("approver"),
        delegate=delegate,
        starts_at=timezone.now() - timedelta(days=1),
        ends_at=timezone.now() + timedelta(days=1),
        scope=[],
        reason="Holiday",
    )
    people = [world.user(role) for role in ROLES if role != "anonymous"] + [delegate]
    for request in (world.in_review, world.draft, world.changes_requested):
        # then the bulk answer is exactly the page's, person by person
        expected = {p.pk for p in people if may_view(request, p)}
        assert may_view_among(request, people) == expected
    assert delegate.pk in may_view_among(world.in_review, people)


def test_many_subscribers_cost_a_fan_out_a_constant_number_of_statements(world: World):
    # given two requests in review, one subscriber who may see them and one who may not
    first, second = world.new_request(title="First"), world.new_request(title="Second")
    webhook_fanouts_run()
    webhook_subscription_create(owner=world.user("requester"), target_url=HOOK, event_types=ALL_TYPES)
    webhook_subscription_create(owner=world.user("outsider"), target_url=HOOK, event_types=ALL_TYPES)
    request_act(request_id=first.pk, action="withdraw", actor=world.user("requester"))
    with CaptureQueriesContext(connection) as one:
        webhook_fanouts_run()

    # when thirty more subscribe who may not see them either, and the second is withdrawn
    for i in range(30):
        webhook_subscription_create(
            owner=UserFactory.create(username=f"sub{i}"), target_url=HOOK, event_types=ALL_TYPES
        )
    request_act(request_id=second.pk, action="withdraw", actor=world.user("requester"))
    with CaptureQueriesContext(connection) as many:
        webhook_fanouts_run()

    # then its fan-out cost no more statements than with two subscribers, and only the
    # requester's subscription got deliveries
    assert len(many.captured_queries) <= len(one.captured_queries), [q["sql"] for q in many.captured_queries]
    owners = set(WebhookDelivery.objects.values_list("subscription__owner__username", flat=True))
    assert owners == {"rita"}


def test_secrets_are_stored_sealed_and_still_open_after_a_secret_key_rotation(settings, world: World):
    # given a subscription's secret
    made = webhook_subscription_create(owner=world.user("approver"), target_url=HOOK, event_types=ALL_TYPES)
    stored = made.subscription.secrets.get().sealed
    # then the database holds no trace of it in the clear
    assert made.secret not in stored
    assert made.secret.removeprefix("whsec_") not in stored
    # when SECRET_KEY is rotated, the old one kept as a fallback
    settings.SECRET_KEY_FALLBACKS = [settings.SECRET_KEY]
    settings.SECRET_KEY = "a-new-secret-key-for-this-deployment-0123456789"
    # then deliveries are still signed with the same secret
    assert signing_secrets(made.subscription) == [made.secret]


def _fanout_of(request: ApprovalRequest, action: str) -> OutboxEvent:
    return OutboxEvent.objects.get(
        destination=FANOUT_TASK, payload__kwargs__instance_id=request.pk, payload__kwargs__action=action
    )


def test_a_fan_out_task_run_twice_writes_its_deliveries_once(world: World):
    # given a subscriber, and a submitted request whose fan-out task has not run yet
    webhook_subscription_create(owner=world.user("requester"), target_url=HOOK, event_types=ALL_TYPES)
    request = world.new_request()
    kwargs = _fanout_of(request, "submit").payload["kwargs"]

    # when the task runs, then runs again (acknowledged late, its worker lost: redelivered)
    first = webhook_fanout_task(**kwargs)
    second = webhook_fanout_task(**kwargs)

    # then the first wrote the submission's three deliveries with their tasks, the second nothing
    assert (first, second) == (3, 0)
    assert WebhookDelivery.objects.count() == 3
    assert OutboxEvent.objects.filter(destination=DELIVER_TASK).count() == 3


def test_a_late_fan_out_tells_of_its_step_not_of_the_request_as_it_is_now(world: World):
    # given a subscriber, and a request submitted then approved before the submission's
    # fan-out task ran
    webhook_subscription_create(owner=world.user("requester"), target_url=HOOK, event_types=ALL_TYPES)
    request = world.new_request()
    request_act(request_id=request.pk, action="approve", actor=world.user("approver"))

    # when the submission's fan-out runs
    webhook_fanout_task(**_fanout_of(request, "submit").payload["kwargs"])

    # then its payload is the request as the submission left it
    submitted = WebhookDelivery.objects.get(event_type=WebhookEventType.REQUEST_SUBMITTED.value)
    data = submitted.payload["data"]
    assert (data["state"], data["action"], data["actor"]) == ("in_review", "submit", "rita")
    assert (data["request_type"], data["requester"]) == (request.request_type.slug, "rita")
    assert data["version"] < ApprovalRequest.objects.get(pk=request.pk).version


def test_a_fan_out_the_broker_lost_is_queued_again_and_still_writes_its_deliveries_once(world: World):
    # given a subscriber, and a submission whose fan-out was handed to the broker an hour
    # ago and never ran (the broker lost it)
    webhook_subscription_create(owner=world.user("requester"), target_url=HOOK, event_types=ALL_TYPES)
    request = world.new_request()
    lost = _fanout_of(request, "submit")
    OutboxEvent.objects.filter(pk=lost.pk).update(
        status=OutboxEvent.Status.DELIVERED, delivered_at=timezone.now() - timedelta(hours=1)
    )

    # when the resume sweep runs (twice: the second finds it already queued again)
    assert webhook_fanouts_resume(overdue=timedelta(minutes=10)) == 1
    assert webhook_fanouts_resume(overdue=timedelta(minutes=10)) == 0

    # then its fan-out is due in the outbox again, under the lost one's id
    [again] = OutboxEvent.objects.filter(destination=FANOUT_TASK, status=OutboxEvent.Status.PENDING)
    assert again.payload["kwargs"]["event_id"] == str(lost.pk)
    assert again.available_at <= timezone.now()
    # and run (the lost one turning up late as well), it writes the three deliveries once
    assert webhook_fanout_task(**again.payload["kwargs"]) == 3
    assert webhook_fanout_task(**lost.payload["kwargs"]) == 0
    assert WebhookDelivery.objects.count() == 3
    # and once it ran, nothing is resumed any more
    OutboxEvent.objects.filter(pk=again.pk).update(
        status=OutboxEvent.Status.DELIVERED, delivered_at=timezone.now() - timedelta(hours=1)
    )
    assert webhook_fanouts_resume(overdue=timedelta(minutes=10)) == 0
