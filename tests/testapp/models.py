"""Ticket: a small workflow with a UUID primary key, to prove the engine is generic.

open → in_progress (start, by a member of the ticket's team; opens a handoff to the team)
in_progress → done (finish, by whoever holds that handoff; needs a resolution)
done → open (reopen, by the reporter)

The meaning of each action is in tests/testapp/workflow.py, registered in apps.py.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import models
from django_fsm import FSMField, transition

from workflows.definition import fsm_permission
from workflows.models import WorkflowModel


class TicketState(models.TextChoices):
    OPEN = "open", "Open"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"


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
        permission=fsm_permission("start"),
    )
    def start(self) -> None:
        pass

    @transition(
        field=state,
        source=TicketState.IN_PROGRESS,
        target=TicketState.DONE,
        permission=fsm_permission("finish"),
    )
    def finish(self, *, resolution: str) -> None:
        self.resolution = resolution

    @transition(
        field=state, source=TicketState.DONE, target=TicketState.OPEN, permission=fsm_permission("reopen")
    )
    def reopen(self) -> None:
        self.resolution = ""
