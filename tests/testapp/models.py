"""Ticket: a small workflow with a UUID primary key, to prove the engine is generic.

open → in_progress (start, by a member of the ticket's team; opens a handoff to the team)
in_progress → done (finish, by whoever holds that handoff; needs a resolution)
done → open (reopen, by the reporter)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django_fsm import FSMField, transition

from workflows import errors
from workflows.models import (
    Handoff,
    HandoffSpec,
    Recipient,
    TaskSpec,
    TransitionStep,
    WorkflowEffects,
    WorkflowModel,
)
from workflows.permissions import holds_handoff, user_group_ids

if TYPE_CHECKING:
    from accounts.models import User

TICKET_CHANGED_TASK = "testapp.ticket_changed"
# A data key that makes the effects hook fail, to prove a failing hook rolls everything back.
EXPLODE = "explode"


class TicketState(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"


def _permission(check: Callable[[Ticket, User], bool]) -> Callable[[Any, Any], bool]:
    return cast(Callable[[Any, Any], bool], check)


def is_team_member(ticket: Ticket, user: User) -> bool:
    return user.is_active and ticket.team_id in user_group_ids(user)


def holds_ticket(ticket: Ticket, user: User) -> bool:
    return any(holds_handoff(user=user, handoff=h) for h in Handoff.objects.for_instance(ticket).open())


def is_reporter(ticket: Ticket, user: User) -> bool:
    return user.is_active and ticket.reporter_id == user.pk


class Ticket(WorkflowModel):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    title = models.CharField(max_length=200)
    reporter = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    team = models.ForeignKey(Group, on_delete=models.PROTECT, related_name="+")
    resolution = models.TextField(blank=True)
    details = models.JSONField(default=dict, blank=True)
    state = FSMField(default=TicketState.OPEN, choices=TicketState.choices, protected=True)

    def __str__(self) -> str:
        return self.title

    @transition(
        field=state,
        source=TicketState.OPEN,
        target=TicketState.IN_PROGRESS,
        permission=_permission(is_team_member),
    )
    def start(self) -> None:
        pass

    @transition(
        field=state,
        source=TicketState.IN_PROGRESS,
        target=TicketState.DONE,
        permission=_permission(holds_ticket),
    )
    def finish(self, *, resolution: str) -> None:
        self.resolution = resolution

    @transition(
        field=state, source=TicketState.DONE, target=TicketState.OPEN, permission=_permission(is_reporter)
    )
    def reopen(self) -> None:
        self.resolution = ""

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
        if name == "finish":
            resolution = str(data.get("resolution") or "").strip()
            if not resolution:
                raise errors.InvalidInput(
                    "Say how it was resolved.", field_errors={"resolution": ["A resolution is required."]}
                )
            return {"resolution": resolution}
        return {}

    def workflow_effects(self, *, step: TransitionStep) -> WorkflowEffects:
        if step.data.get(EXPLODE):
            raise RuntimeError("the effects hook failed")
        effects = WorkflowEffects(close=list(step.open_handoffs))
        if step.target == TicketState.IN_PROGRESS:
            effects.open.append(HandoffSpec(group=self.team, stage="work"))
        effects.tasks.append(TaskSpec(name=TICKET_CHANGED_TASK, kwargs={"ticket": str(self.pk)}))
        return effects

    def workflow_holder_problem(self, *, user: User) -> str | None:
        if user.pk == self.reporter_id:
            return "A ticket cannot be handed to its own reporter."
        return None

    def workflow_audience(self) -> list[Recipient]:
        return [Recipient(user_id=self.reporter_id)]
