"""Approval requests: the fixed lifecycle, their revisions and the decisions on them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_fsm import RETURN_VALUE, FSMField, transition

from approvals import policies
from approvals.models.types import PolicyVersion, RequestType
from approvals.routing import Policy, Stage
from workflows.models import Handoff, Recipient, TaskSpec, TransitionStep, WorkflowEffects, WorkflowModel

if TYPE_CHECKING:
    from accounts.models import User
    from approvals.stages import RoutePlan


def _permission(check: Callable[[ApprovalRequest, User], bool]) -> Callable[[Any, Any], bool]:
    """django-fsm types permission callables loosely; ours take a request and a User."""
    return cast(Callable[[Any, Any], bool], check)


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
STATES = {s.value: s.value for s in State}


class ApprovalRequest(WorkflowModel):
    """A request that moves draft → in_review → approved | rejected | changes_requested.

    The graph is fixed here; the route through review is data: the policy version the
    request was submitted under (`policy_version`), the stage it waits in
    (`stage_index`), and who fills that stage (`stage_slots`). Transition methods only
    apply a `RoutePlan` worked out beforehand (approvals.stages) with the row locked; the
    service does the locking, checks and recording.
    """

    request_type = models.ForeignKey(RequestType, on_delete=models.PROTECT, related_name="requests")
    requester = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="approval_requests"
    )
    title = models.CharField(max_length=TITLE_MAX)
    description = models.TextField(blank=True)
    payload = models.JSONField(default=dict, blank=True)
    state = FSMField(default=State.DRAFT, choices=State.choices, protected=True)
    revision = models.PositiveIntegerField(default=1)
    policy_version = models.ForeignKey(
        PolicyVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="requests"
    )
    stage_index = models.PositiveSmallIntegerField(null=True, blank=True)
    stage_slots = models.JSONField(default=list, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    workflow_lock_related = ("request_type", "requester", "policy_version")

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
        ]

    def __str__(self) -> str:
        return f"REQ-{self.pk}: {self.title}"

    @property
    def reference(self) -> str:
        return f"REQ-{self.pk}"

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

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

    def _apply(self, plan: RoutePlan) -> str:
        self.policy_version_id = plan.policy_version_id
        self.stage_index = plan.stage_index
        self.stage_slots = plan.stage_slots
        if plan.revision is not None:
            self.revision = plan.revision.number
            self.title = plan.revision.title
            self.description = plan.revision.description
            self.payload = plan.revision.payload
        if plan.target in {State.APPROVED, State.REJECTED}:
            self.decided_at = timezone.now()
        return plan.target

    @transition(
        field=state,
        source=State.DRAFT,
        target=RETURN_VALUE(State.IN_REVIEW, State.APPROVED),
        permission=_permission(policies.may_submit),
    )
    def submit(self, *, plan: RoutePlan) -> str:
        self.submitted_at = timezone.now()
        return self._apply(plan)

    @transition(
        field=state,
        source=State.IN_REVIEW,
        target=RETURN_VALUE(State.IN_REVIEW, State.APPROVED),
        permission=_permission(policies.may_decide),
    )
    def approve(self, *, plan: RoutePlan) -> str:
        return self._apply(plan)

    @transition(
        field=state,
        source=State.IN_REVIEW,
        target=RETURN_VALUE(State.IN_REVIEW, State.REJECTED),
        permission=_permission(policies.may_decide),
    )
    def reject(self, *, plan: RoutePlan) -> str:
        return self._apply(plan)

    @transition(
        field=state,
        source=State.IN_REVIEW,
        target=RETURN_VALUE(State.CHANGES_REQUESTED),
        permission=_permission(policies.may_decide),
    )
    def request_changes(self, *, plan: RoutePlan) -> str:
        return self._apply(plan)

    @transition(
        field=state,
        source=State.CHANGES_REQUESTED,
        target=RETURN_VALUE(State.IN_REVIEW, State.APPROVED),
        permission=_permission(policies.is_requester),
    )
    def resubmit(self, *, plan: RoutePlan) -> str:
        self.submitted_at = timezone.now()
        return self._apply(plan)

    @transition(
        field=state,
        source=OPEN_STATES,
        target=RETURN_VALUE(State.WITHDRAWN),
        permission=_permission(policies.is_requester),
    )
    def withdraw(self, *, plan: RoutePlan) -> str:
        return self._apply(plan)

    @transition(
        field=state,
        source=OPEN_STATES,
        target=RETURN_VALUE(State.CANCELLED),
        permission=_permission(policies.may_cancel),
    )
    def cancel(self, *, plan: RoutePlan) -> str:
        return self._apply(plan)

    @transition(
        field=state,
        source=[State.IN_REVIEW, State.CHANGES_REQUESTED],
        target=RETURN_VALUE(State.IN_REVIEW, State.CHANGES_REQUESTED, State.APPROVED, State.REJECTED),
        permission=_permission(policies.may_move_policy),
    )
    def move_policy(self, *, plan: RoutePlan) -> str:
        return self._apply(plan)

    # --- what the transition service asks of this workflow ----------------------------

    def workflow_prepare(
        self,
        *,
        name: str,
        actor: User | None,
        principal: User | None,
        comment: str,
        data: dict[str, Any],
        open_handoffs: list[Handoff],
    ) -> dict[str, Any]:
        """Check the input and work out the route change; reads only (see approvals.lifecycle)."""
        from approvals import lifecycle

        plan = lifecycle.plan_for(
            self,
            name=name,
            actor=actor,
            principal=principal,
            comment=comment,
            data=data,
            open_handoffs=open_handoffs,
        )
        return {"plan": plan}

    def workflow_effects(self, *, step: TransitionStep) -> WorkflowEffects:
        """Record the decision or revision the plan carries; hand over what it says."""
        from approvals import lifecycle

        return lifecycle.effects_for(self, step=step)

    def workflow_forbidden_reason(self, *, name: str, principal: User | None) -> str:
        return policies.forbidden_reason(self, name=name, user=principal)

    def workflow_holder_problem(self, *, user: User) -> str | None:
        if user.pk == self.requester_id:
            return "A request cannot be handed to its own requester."
        return None

    def workflow_audience(self) -> list[Recipient]:
        return [Recipient(user_id=self.requester_id)]

    def notify_task(self, *, action: str) -> TaskSpec:
        return TaskSpec(name="approvals.notify_transition", kwargs={"request_id": self.pk, "action": action})


class RequestRevision(models.Model):
    """What a request said at one revision: the first submission, then each resubmission.

    `diff` lists what changed from the revision before: [{field, before, after}].
    """

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="revisions")
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

    request = models.ForeignKey(ApprovalRequest, on_delete=models.CASCADE, related_name="decisions")
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
        indexes = [models.Index(fields=["request", "revision"], name="decision_by_request_revision")]
        constraints = [
            # Whatever the policy allows across stages, nobody speaks twice in one stage.
            models.UniqueConstraint(
                fields=["request", "revision", "stage_name", "principal"], name="decision_once_per_stage"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.principal} {self.outcome} ({self.stage_name})"
