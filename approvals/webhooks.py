"""What webhooks know of approval requests: which events each lifecycle step is, what a
payload says about a request, who may see it (the request page's own rule), and its
callback URL. Registered for ApprovalRequest in approvals.apps (the engine cannot
import approvals)."""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from accounts.models import Delegation, User
from approvals.actions import Action
from approvals.models import ApprovalRequest, RequestType, State
from approvals.policies import may_view
from workflows.models import Handoff, WebhookEventType, WorkflowModel
from workflows.webhooks.registry import StepFacts, WebhookSource

SUBMISSIONS = frozenset({Action.SUBMIT.value, Action.RESUBMIT.value})
# The decisions a request's review ends a round with (a request for changes included:
# it is the answer to the revision that was submitted).
DECIDED_STATES = frozenset({State.APPROVED.value, State.REJECTED.value, State.CHANGES_REQUESTED.value})
# What the timers and the expiry really do, by audit name. Escalations: an overdue stage
# decided by its policy (`time_out`, approvals.timers.escalation), and a handoff handed on
# by the system actor (an overdue stage's reassignment, or an expiry's `on_expiry:
# escalate`, approvals.expiry); a manager's reassignment is not one. Expiry: the `expire`
# transition to the `expired` state (approvals.expiry.request_expire).
TIME_OUT = Action.TIME_OUT.value
SYSTEM_ESCALATIONS = frozenset({TIME_OUT, "reassign"})
EXPIRE, EXPIRED_STATE = Action.EXPIRE.value, State.EXPIRED.value
VIEW_ALL = "approvals.view_all_approvalrequest"


def may_view_among(request: ApprovalRequest, users: list[User]) -> set[int]:
    """The ids of those `users` who may see `request`: `may_view`'s rules for many people
    in a constant number of statements (every transition asks this of all subscribers).

    The requester; people who see every request (superusers, the global permission of
    their own or of a group); whoever holds, may claim or closed one of its handoffs; and,
    for the few with a delegation active now, `may_view` itself (its delegate rule).
    """
    active = {u.pk: u for u in users if u.is_active}
    if not active:
        return set()
    allowed = {request.requester_id} & set(active)
    app_label, codename = VIEW_ALL.split(".")
    allowed |= set(
        User.objects.filter(pk__in=active)
        .filter(
            Q(is_superuser=True)
            | Q(user_permissions__codename=codename, user_permissions__content_type__app_label=app_label)
            | Q(
                groups__permissions__codename=codename, groups__permissions__content_type__app_label=app_label
            )
        )
        .values_list("pk", flat=True)
    )
    handoffs = list(Handoff.objects.for_instance(request))
    for handoff in handoffs:
        allowed |= {pk for pk in (handoff.assignee_id, handoff.closed_by_id) if pk in active}
    groups = {h.candidate_group_id for h in handoffs if h.candidate_group_id is not None}
    rest = set(active) - allowed
    if groups and rest:
        allowed |= set(
            User.groups.through.objects.filter(user_id__in=rest, group_id__in=groups).values_list(
                "user_id", flat=True
            )
        )
    rest = set(active) - allowed
    if rest:
        delegates = set(
            Delegation.objects.active().filter(delegate_id__in=rest).values_list("delegate_id", flat=True)
        )
        allowed |= {pk for pk in delegates if may_view(request, active[pk])}
    return allowed


class RequestWebhooks(WebhookSource):
    def event_types(self, step: StepFacts) -> list[str]:
        types = [WebhookEventType.ACTION_TAKEN.value]
        if step.action in SUBMISSIONS:
            types.append(WebhookEventType.REQUEST_SUBMITTED.value)
        if step.opened:
            types.append(WebhookEventType.HANDOFF_OPENED.value)
        if step.action in SYSTEM_ESCALATIONS and step.actor is None:
            types.append(WebhookEventType.REQUEST_ESCALATED.value)
        if step.action == EXPIRE or (step.target == EXPIRED_STATE and step.source != EXPIRED_STATE):
            types.append(WebhookEventType.REQUEST_EXPIRED.value)
        elif step.target in DECIDED_STATES and step.source != step.target:
            types.append(WebhookEventType.REQUEST_DECIDED.value)
        return types

    def snapshot(self, instance: WorkflowModel) -> dict[str, Any]:
        assert isinstance(instance, ApprovalRequest)
        return {
            "id": instance.pk,
            "ref": instance.reference,
            "title": instance.title,
            "state": instance.state,
            "version": instance.version,
            "revision": instance.revision,
            "request_type_id": instance.request_type_id,
            "requester_id": instance.requester_id,
            "submitted_at": instance.submitted_at,
            "decided_at": instance.decided_at,
        }

    def data(self, snapshot: dict[str, Any]) -> dict[str, Any]:
        data = {k: v for k, v in snapshot.items() if k not in ("request_type_id", "requester_id")}
        data["request_type"] = (
            RequestType.objects.filter(pk=snapshot["request_type_id"]).values_list("slug", flat=True).first()
        )
        data["requester"] = (
            User.objects.filter(pk=snapshot["requester_id"]).values_list("username", flat=True).first()
        )
        return data

    def visible_to(self, instance: WorkflowModel, users: list[User]) -> set[int]:
        assert isinstance(instance, ApprovalRequest)
        return may_view_among(instance, users)

    def callback_url(self, instance: WorkflowModel) -> str:
        assert isinstance(instance, ApprovalRequest)
        return instance.callback_url

    def callback_event_types(self) -> frozenset[str]:
        return frozenset({WebhookEventType.REQUEST_DECIDED.value, WebhookEventType.REQUEST_EXPIRED.value})


REQUEST_WEBHOOKS = RequestWebhooks()
