"""What webhooks know of approval requests: which events each lifecycle step is, what a
payload says about a request, who may see it (the request page's own rule), and its
callback URL. Registered for ApprovalRequest in approvals.apps (the engine cannot
import approvals)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from approvals.actions import Action
from approvals.models import ApprovalRequest, State
from approvals.policies import may_view
from workflows.models import WebhookEventType, WorkflowModel
from workflows.webhooks.registry import StepFacts, WebhookSource

if TYPE_CHECKING:
    from accounts.models import User

SUBMISSIONS = frozenset({Action.SUBMIT.value, Action.RESUBMIT.value})
# The decisions a request's review ends a round with (a request for changes included:
# it is the answer to the revision that was submitted).
DECIDED_STATES = frozenset({State.APPROVED.value, State.REJECTED.value, State.CHANGES_REQUESTED.value})
# Actions the SLA timers take (approvals' timers); named here by their audit names.
ESCALATE, EXPIRE, EXPIRED_STATE = "escalate", "expire", "expired"


class RequestWebhooks(WebhookSource):
    def event_types(self, step: StepFacts) -> list[str]:
        types = [WebhookEventType.ACTION_TAKEN.value]
        if step.action in SUBMISSIONS:
            types.append(WebhookEventType.REQUEST_SUBMITTED.value)
        if step.opened:
            types.append(WebhookEventType.HANDOFF_OPENED.value)
        if step.action == ESCALATE:
            types.append(WebhookEventType.REQUEST_ESCALATED.value)
        if step.action == EXPIRE or (step.target == EXPIRED_STATE and step.source != EXPIRED_STATE):
            types.append(WebhookEventType.REQUEST_EXPIRED.value)
        elif step.target in DECIDED_STATES and step.source != step.target:
            types.append(WebhookEventType.REQUEST_DECIDED.value)
        return types

    def data(self, instance: WorkflowModel) -> dict[str, Any]:
        assert isinstance(instance, ApprovalRequest)
        return {
            "id": instance.pk,
            "ref": instance.reference,
            "title": instance.title,
            "state": instance.state,
            "version": instance.version,
            "revision": instance.revision,
            "request_type": instance.request_type.slug,
            "requester": instance.requester.get_username(),
            "submitted_at": instance.submitted_at,
            "decided_at": instance.decided_at,
        }

    def visible_to(self, instance: WorkflowModel, users: list[User]) -> set[int]:
        assert isinstance(instance, ApprovalRequest)
        return {user.pk for user in users if may_view(instance, user)}

    def callback_url(self, instance: WorkflowModel) -> str:
        assert isinstance(instance, ApprovalRequest)
        return instance.callback_url

    def callback_event_types(self) -> frozenset[str]:
        return frozenset({WebhookEventType.REQUEST_DECIDED.value, WebhookEventType.REQUEST_EXPIRED.value})


REQUEST_WEBHOOKS = RequestWebhooks()
