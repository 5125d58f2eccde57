"""Approval requests: the fixed lifecycle, their revisions and the decisions on them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_fsm import RETURN_VALUE, FSMField, transition

from approvals.actions import Action
from approvals.models.types import PolicyVersion, RequestType
from approvals.routing import Policy, Stage
from workflows.definition import fsm_permission
from workflows.models import WorkflowModel


class State(models.TextChoices):
    DRAFT = "draft", "Draft"
    IN_REVIEW = "in_review", "In review"
    CHANGES_REQUESTED = "changes_requested", "Changes requested"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    WITHDRAWN = "withdrawn", "Withdrawn"
    CANCELLED = "cancelled", "Cancelled"
    FULFILLED = "fulfilled", "Fulfilled"
    NOT_FULFILLED = "not_fulfilled", "Not fulfilled"
    # Nobody decided before its expiry: its own end, never reported as a rejection.
    EXPIRED = "expired", "Expired"


class OnExpiry(models.TextChoices):
    """What becomes of a request nobody decided by its `expires_at`."""

    EXPIRE = "expire", "End as expired"
    ESCALATE = "escalate", "Hand it to the escalation person or group"


OPEN_STATES = [State.DRAFT, State.IN_REVIEW, State.CHANGES_REQUESTED]
# Approved, with task stages still to do: the request is being fulfilled.
FULFILMENT_STATES = [State.APPROVED]
TITLE_MAX = 200


@dataclass(frozen=True)
class RevisionContent:
    """What a request says in one revision."""

    number: int
    title: str
    description: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class RouteChange:
    """Where a lifecycle action leaves a request: its state, policy version, the stage (or
    first stage of the parallel group) it waits in and the slots filling it, the task
    outputs so far, and (on resubmission) its new content. Worked out by the action (approvals.lifecycle) with the row locked; the
    transition methods only apply it. `outputs` None: unchanged."""

    target: str
    policy_version: PolicyVersion | None
    stage_index: int | None
    stage_slots: list[str] = field(default_factory=list)
    revision: RevisionContent | None = None
    outputs: dict[str, Any] | None = None


# django-fsm conditions (can_proceed answers with them; a request that fails one gets a 409).


def _in_fulfilment(request: models.Model) -> bool:
    """Approved requests move on only while task stages are still open."""
    assert isinstance(request, ApprovalRequest)
    return request.state != State.APPROVED or request.stage_index is not None


def _waits_for_decision(request: models.Model) -> bool:
    assert isinstance(request, ApprovalRequest)
    stage = request.current_stage
    return stage is not None and not stage.is_task


def _waits_for_task(request: models.Model) -> bool:
    assert isinstance(request, ApprovalRequest)
    stage = request.current_stage
    return stage is not None and stage.is_task


class ApprovalRequest(WorkflowModel):
    """A request that moves draft → in_review → approved | rejected | changes_requested.

    The graph is fixed here; the route through review is data: the policy version the
    request was submitted under (`policy_version`), the stage it waits in
    (`stage_index`), and who fills that stage (`stage_slots`). What each action means —
    who may take it, what it changes, what follows — is in approvals/lifecycle/ (one
    module per action, registered for this model in approvals/apps.py); the transition
    methods here only apply the `RouteChange` it worked out.
    """

    request_type = models.ForeignKey(RequestType, on_delete=models.PROTECT, related_name="requests")
    # No single-column index on requester / policy_version: request_by_requester and
    # request_by_policy_version lead with them; every write of a request (insert, submit,
    # decide: none can be a HOT update, state and updated_at are indexed) paid for both.
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_requests", db_index=False
    )
    title = models.CharField(max_length=TITLE_MAX)
    description = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    state = FSMField(default=State.DRAFT, choices=State.choices, protected=True)
    revision = models.PositiveIntegerField(default=1)
    policy_version = models.ForeignKey(
        PolicyVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="requests",
        db_index=False,
    )
    stage_index = models.PositiveSmallIntegerField(null=True, blank=True)
    stage_slots = models.JSONField(default=list, blank=True)
    # What the task stages handed on, by stage name (the latest completion of each).
    outputs = models.JSONField(default=dict, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)
    fulfilled_at = models.DateTimeField(null=True, blank=True)
    # Set at creation by clients that must not wait forever (the API); the timer calls
    # approvals.expiry.request_expire once it passes.
    expires_at = models.DateTimeField(null=True, blank=True)
    on_expiry = models.CharField(max_length=10, choices=OnExpiry.choices, default=OnExpiry.EXPIRE)
    # Indexed only where set (request_expiry_escalate_*, below): nearly every request
    # leaves them empty, and a plain index took a NULL entry on each of its writes.
    expiry_escalate_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
    )
    expiry_escalate_group = models.ForeignKey(
        "auth.Group", null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    # When an escalation on expiry handed it on: it escalates once, then waits as usual.
    expiry_escalated_at = models.DateTimeField(null=True, blank=True)
    # Where its decision is POSTed (a signed webhook), on a host the administrator allowed
    # (WEBHOOK_CALLBACK_HOSTS); checked by workflows.webhooks.services.callback_url_clean.
    callback_url = models.URLField(max_length=500, blank=True)

    class Meta:
        permissions = [
            ("decide_approvalrequest", "Can approve, reject or ask for changes"),
            ("cancel_approvalrequest", "Can cancel any open request"),
            ("view_all_approvalrequest", "Can see every request and its history"),
        ]
        indexes = [
            models.Index(fields=["requester", "-id"], name="request_by_requester"),
            models.Index(fields=["state", "-id"], name="request_by_state"),
            models.Index(fields=["policy_version", "state"], name="request_by_policy_version"),
            # The expiry timer's scan: open requests whose expiry has passed.
            models.Index(
                fields=["expires_at"], name="request_by_expiry", condition=models.Q(expires_at__isnull=False)
            ),
            # The API's list pages by (updated_at, id).
            models.Index(fields=["-updated_at", "-id"], name="request_by_updated"),
            # For the PROTECT checks when a user or group is deleted.
            models.Index(
                fields=["expiry_escalate_user"],
                name="request_expiry_escalate_user",
                condition=models.Q(expiry_escalate_user__isnull=False),
            ),
            models.Index(
                fields=["expiry_escalate_group"],
                name="request_expiry_escalate_group",
                condition=models.Q(expiry_escalate_group__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"REQ-{self.pk}: {self.title}"

    @property
    def reference(self) -> str:
        return f"REQ-{self.pk}"

    def workflow_label(self) -> str:
        return self.reference

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES or self.in_fulfilment

    @property
    def in_fulfilment(self) -> bool:
        """Approved, with task stages still open."""
        return self.state in FULFILMENT_STATES and self.stage_index is not None

    @property
    def policy(self) -> Policy | None:
        return self.policy_version.policy if self.policy_version_id is not None else None  # type: ignore[union-attr]

    @property
    def current_stage(self) -> Stage | None:
        policy = self.policy
        if policy is None or self.stage_index is None:
            return None
        return policy.stages[self.stage_index]

    # --- the lifecycle (fields only; no I/O) -------------------------------------------

    def _apply(self, change: RouteChange) -> str:
        self.policy_version = change.policy_version
        self.stage_index = change.stage_index
        self.stage_slots = change.stage_slots
        if change.outputs is not None:
            self.outputs = change.outputs
        if change.revision is not None:
            self.revision = change.revision.number
            self.title = change.revision.title
            self.description = change.revision.description
            self.payload = change.revision.payload
        if change.target in {State.APPROVED, State.REJECTED} and self.state != State.APPROVED:
            self.decided_at = timezone.now()
        if change.target in {State.FULFILLED, State.NOT_FULFILLED}:
            self.fulfilled_at = timezone.now()
        return change.target

    @transition(
        field=state,
        source=State.DRAFT,
        target=RETURN_VALUE(State.IN_REVIEW, State.APPROVED),
        permission=fsm_permission(Action.SUBMIT),
    )
    def submit(self, *, change: RouteChange) -> str:
        self.submitted_at = timezone.now()
        return self._apply(change)

    @transition(
        field=state,
        source=State.DRAFT,
        target=State.DRAFT,
        permission=fsm_permission(Action.EDIT),
    )
    def edit(self, *, change: RouteChange) -> str:
        return self._apply(change)

    @transition(
        field=state,
        source=State.IN_REVIEW,
        target=RETURN_VALUE(State.IN_REVIEW, State.APPROVED),
        permission=fsm_permission(Action.APPROVE),
        conditions=[_waits_for_decision],
    )
    def approve(self, *, change: RouteChange) -> str:
        return self._apply(change)

    @transition(
        field=state,
        source=State.IN_REVIEW,
        target=RETURN_VALUE(State.IN_REVIEW, State.REJECTED),
        permission=fsm_permission(Action.REJECT),
        conditions=[_waits_for_decision],
    )
    def reject(self, *, change: RouteChange) -> str:
        return self._apply(change)

    @transition(
        field=state,
        source=State.IN_REVIEW,
        target=RETURN_VALUE(State.CHANGES_REQUESTED),
        permission=fsm_permission(Action.REQUEST_CHANGES),
        conditions=[_waits_for_decision],
    )
    def request_changes(self, *, change: RouteChange) -> str:
        return self._apply(change)

    @transition(
        field=state,
        source=State.CHANGES_REQUESTED,
        target=RETURN_VALUE(State.IN_REVIEW, State.APPROVED),
        permission=fsm_permission(Action.RESUBMIT),
    )
    def resubmit(self, *, change: RouteChange) -> str:
        self.submitted_at = timezone.now()
        return self._apply(change)

    @transition(
        field=state,
        source=OPEN_STATES,
        target=RETURN_VALUE(State.WITHDRAWN),
        permission=fsm_permission(Action.WITHDRAW),
    )
    def withdraw(self, *, change: RouteChange) -> str:
        return self._apply(change)

    @transition(
        field=state,
        source=[*OPEN_STATES, *FULFILMENT_STATES],
        target=RETURN_VALUE(State.CANCELLED),
        permission=fsm_permission(Action.CANCEL),
        conditions=[_in_fulfilment],
    )
    def cancel(self, *, change: RouteChange) -> str:
        return self._apply(change)

    @transition(
        field=state,
        source=[State.IN_REVIEW, State.CHANGES_REQUESTED],
        target=RETURN_VALUE(State.EXPIRED),
        permission=fsm_permission(Action.EXPIRE),
    )
    def expire(self, *, change: RouteChange) -> str:
        return self._apply(change)

    @transition(
        field=state,
        source=[State.IN_REVIEW, State.CHANGES_REQUESTED, *FULFILMENT_STATES],
        target=RETURN_VALUE(
            State.IN_REVIEW, State.CHANGES_REQUESTED, State.APPROVED, State.REJECTED, State.FULFILLED
        ),
        permission=fsm_permission(Action.MOVE_POLICY),
        conditions=[_in_fulfilment],
    )
    def move_policy(self, *, change: RouteChange) -> str:
        return self._apply(change)

    @transition(
        field=state,
        source=[State.IN_REVIEW, *FULFILMENT_STATES],
        target=RETURN_VALUE(State.IN_REVIEW, State.APPROVED, State.FULFILLED),
        permission=fsm_permission(Action.COMPLETE),
        conditions=[_waits_for_task],
    )
    def complete(self, *, change: RouteChange) -> str:
        return self._apply(change)

    @transition(
        field=state,
        source=[State.IN_REVIEW, *FULFILMENT_STATES],
        target=RETURN_VALUE(State.IN_REVIEW, State.APPROVED, State.CHANGES_REQUESTED, State.NOT_FULFILLED),
        permission=fsm_permission(Action.HAND_BACK),
        conditions=[_waits_for_task],
    )
    def hand_back(self, *, change: RouteChange) -> str:
        return self._apply(change)

    @transition(
        field=state,
        source=State.IN_REVIEW,
        target=RETURN_VALUE(State.IN_REVIEW, State.APPROVED, State.REJECTED),
        permission=fsm_permission(Action.TIME_OUT),
        conditions=[_waits_for_decision],
    )
    def time_out(self, *, change: RouteChange) -> str:
        return self._apply(change)


class RequestRevision(models.Model):
    """What a request said at one revision: the first submission, then each resubmission.

    `diff` lists what changed from the revision before: [{field, before, after}].
    """

    # The unique request_revision_number (request, number) serves lookups by request.
    request = models.ForeignKey(
        ApprovalRequest, on_delete=models.CASCADE, related_name="revisions", db_index=False
    )
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=TITLE_MAX)
    description = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    diff = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")

    class Meta:
        ordering = ["request", "number"]
        constraints = [models.UniqueConstraint(fields=["request", "number"], name="request_revision_number")]

    def __str__(self) -> str:
        return f"{self.request.reference} revision {self.number}"


class Decision(models.Model):
    """One person's say in one stage of one revision of a request.

    `principal` is whose decision it is; `actor` who took it (the same person, or a
    delegate acting on the principal's behalf). `slot` is the place in the stage it fills.
    """

    class Outcome(models.TextChoices):
        APPROVE = "approve", "Approved"
        REJECT = "reject", "Rejected"
        REQUEST_CHANGES = "request_changes", "Asked for changes"

    # The unique decision_once_per_stage (request, revision, stage_name, principal) serves
    # lookups by request and by (request, revision): no index of their own.
    request = models.ForeignKey(
        ApprovalRequest, on_delete=models.CASCADE, related_name="decisions", db_index=False
    )
    revision = models.PositiveIntegerField()
    stage_index = models.PositiveSmallIntegerField()
    stage_name = models.CharField(max_length=50)
    outcome = models.CharField(max_length=20, choices=Outcome.choices)
    principal = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    slot = models.CharField(max_length=100, blank=True)
    comment = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["request", "id"]
        constraints = [
            # Whatever the policy allows across stages, nobody speaks twice in one stage.
            models.UniqueConstraint(
                fields=["request", "revision", "stage_name", "principal"], name="decision_once_per_stage"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.principal} {self.outcome} ({self.stage_name})"
