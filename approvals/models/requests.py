"""Approval requests: the product built on the workflow engine."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone
from django_fsm import FSMField, transition

from approvals import policies
from workflows import errors
from workflows.models import (
    HandoffSpec,
    Recipient,
    TaskSpec,
    TransitionStep,
    WorkflowEffects,
    WorkflowModel,
)

if TYPE_CHECKING:
    from accounts.models import User


def _permission(check: Callable[[ApprovalRequest, User], bool]) -> Callable[[Any, Any], bool]:
    """django-fsm types permission callables loosely; ours take a request and a User."""
    return cast(Callable[[Any, Any], bool], check)


class RequestType(models.Model):
    """A kind of request people can submit, and who reviews it.

    Who may submit a type is an object permission (`submit_requesttype`, via
    django-guardian) given to users or groups.
    """

    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True)
    approver_group = models.ForeignKey(
        Group,
        on_delete=models.PROTECT,
        related_name="reviewed_request_types",
        help_text="The group whose members review requests of this type.",
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        permissions = [("submit_requesttype", "Can submit requests of this type")]

    def __str__(self) -> str:
        return self.name


class State(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    CANCELLED = "cancelled", "Cancelled"


OPEN_STATES = [State.DRAFT, State.IN_REVIEW, State.CHANGES_REQUESTED]
DECISIONS = ("approve", "reject", "request_changes")
COMMENT_REQUIRED = {"reject": "Say why you reject it.", "request_changes": "Say what should change."}
TITLE_MAX = 200


class ApprovalRequest(WorkflowModel):
    """A request that moves draft → in_review → approved | rejected | changes_requested.

    The graph is fixed here; who reviews is decided by the request type. Transition
    methods only change fields: the service does the locking, checks and recording.
    """

    request_type = models.ForeignKey(RequestType, on_delete=models.PROTECT, related_name="requests")
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_requests"
    )
    title = models.CharField(max_length=TITLE_MAX)
    description = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    state = FSMField(default=State.DRAFT, choices=State.choices, protected=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        permissions = [
            ("decide_approvalrequest", "Can approve, reject or ask for changes"),
            ("cancel_approvalrequest", "Can cancel any open request"),
            ("view_all_approvalrequest", "Can see every request and its history"),
        ]
        indexes = [
            models.Index(fields=["requester", "-id"], name="request_by_requester"),
            models.Index(fields=["state", "-id"], name="request_by_state"),
        ]

    def __str__(self) -> str:
        return f"REQ-{self.pk}: {self.title}"

    @property
    def reference(self) -> str:
        return f"REQ-{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    # --- the lifecycle (fields only; no I/O) -------------------------------------------

    @transition(
        field=state, source=State.DRAFT, target=State.IN_REVIEW, permission=_permission(policies.may_submit)
    )
    def submit(self) -> None:
        self.submitted_at = timezone.now()

    @transition(
        field=state,
        source=State.IN_REVIEW,
        target=State.APPROVED,
        permission=_permission(policies.may_decide),
    )
    def approve(self) -> None:
        self.decided_at = timezone.now()

    @transition(
        field=state,
        source=State.IN_REVIEW,
        target=State.REJECTED,
        permission=_permission(policies.may_decide),
    )
    def reject(self) -> None:
        self.decided_at = timezone.now()

    @transition(
        field=state,
        source=State.IN_REVIEW,
        target=State.CHANGES_REQUESTED,
        permission=_permission(policies.may_decide),
    )
    def request_changes(self) -> None:
        pass

    @transition(
        field=state,
        source=State.CHANGES_REQUESTED,
        target=State.IN_REVIEW,
        permission=_permission(policies.is_requester),
    )
    def resubmit(self, *, title: str | None = None, description: str | None = None) -> None:
        if title is not None:
            self.title = title
        if description is not None:
            self.description = description
        self.submitted_at = timezone.now()

    @transition(
        field=state, source=OPEN_STATES, target=State.WITHDRAWN, permission=_permission(policies.is_requester)
    )
    def withdraw(self) -> None:
        pass

    @transition(
        field=state, source=OPEN_STATES, target=State.CANCELLED, permission=_permission(policies.may_cancel)
    )
    def cancel(self) -> None:
        pass

    # --- what the transition service asks of this workflow ----------------------------

    def workflow_prepare(
        self,
        *,
        name: str,
        actor: User | None,
        principal: User | None,
        comment: str,
        data: dict[str, Any],
    ) -> dict[str, Any]:
        if name in DECISIONS and actor is not None and actor.pk == self.requester_id:
            # The principal was checked by the permission; this closes the delegation loophole.
            raise errors.Forbidden("You cannot decide on your own request, not even on someone's behalf.")
        if name in COMMENT_REQUIRED and not comment.strip():
            raise errors.InvalidInput(
                COMMENT_REQUIRED[name], field_errors={"comment": [COMMENT_REQUIRED[name]]}
            )
        if name == "resubmit":
            return _resubmit_fields(data)
        return {}

    def workflow_effects(self, *, step: TransitionStep) -> WorkflowEffects:
        effects = WorkflowEffects(close=list(step.open_handoffs))
        if step.target == State.IN_REVIEW:
            effects.open.append(HandoffSpec(group=self._approver_group(), stage="review"))
        effects.tasks.append(
            TaskSpec(
                name="approvals.notify_transition",
                kwargs={"request_id": self.pk, "action": step.name},
            )
        )
        return effects

    def _approver_group(self) -> Group:
        if ApprovalRequest.request_type.is_cached(self):
            return self.request_type.approver_group
        # One query for the group instead of one for the type and one for its group.
        return Group.objects.get(reviewed_request_types=self.request_type_id)

    def workflow_forbidden_reason(self, *, name: str, principal: User | None) -> str:
        return policies.forbidden_reason(self, name=name, user=principal)

    def workflow_holder_problem(self, *, user: User) -> str | None:
        if user.pk == self.requester_id:
            return "A request cannot be handed to its own requester."
        return None

    def workflow_audience(self) -> list[Recipient]:
        return [Recipient(user_id=self.requester_id)]


def _resubmit_fields(data: dict[str, Any]) -> dict[str, Any]:
    prepared: dict[str, Any] = {}
    field_errors: dict[str, list[str]] = {}
    if "title" in data:
        title = str(data["title"] or "").strip()
        if not title:
            field_errors["title"] = ["A title is required."]
        elif len(title) > TITLE_MAX:
            field_errors["title"] = [f"At most {TITLE_MAX} characters."]
        prepared["title"] = title
    if "description" in data:
        prepared["description"] = str(data["description"] or "")
    unknown = set(data) - {"title", "description"}
    for name in sorted(unknown):
        field_errors[name] = ["This field cannot be changed on resubmission."]
    if field_errors:
        raise errors.InvalidInput("The resubmission is invalid.", field_errors=field_errors)
    return prepared


class Notification(models.Model):
    """A message sent to a person about a request (by mail, and listed in the app).

    `event_id` is the outbox event that caused it: a task delivered twice sends once.
    """

    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications"
    )
    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="notifications")
    event_id = models.CharField(max_length=64)
    subject = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["event_id", "recipient"], name="notification_once_per_event")
        ]
        indexes = [models.Index(fields=["recipient", "-id"], name="notification_by_recipient")]

    def __str__(self) -> str:
        return self.subject
