"""What each action of a Ticket means (see models.py for the graph)."""

from __future__ import annotations

from typing import Any

from tests.testapp.models import Ticket, TicketState
from workflows import errors
from workflows.definition import Action, Facts, Step, Workflow
from workflows.models import HandoffSpec, Recipient, TaskSpec, WorkflowEffects
from workflows.permissions import holds_handoff, user_group_ids

TICKET_CHANGED_TASK = "testapp.ticket_changed"
# A data key that makes the effects hook fail, to prove a failing hook rolls everything back.
EXPLODE = "explode"

TicketStep = Step[Ticket, Facts]


class TicketAction(Action[Ticket, Facts]):
    def effects(self, step: TicketStep) -> WorkflowEffects:
        if step.data.get(EXPLODE):
            raise RuntimeError("the effects hook failed")
        effects = WorkflowEffects(close=list(step.facts.open_handoffs))
        if step.instance.state == TicketState.IN_PROGRESS:
            effects.open.append(HandoffSpec(group=step.instance.team, stage="work"))
        effects.tasks.append(TaskSpec(name=TICKET_CHANGED_TASK, kwargs={"ticket": str(step.instance.pk)}))
        return effects


class Start(TicketAction):
    name = "start"

    def allowed(self, step: TicketStep) -> bool:
        user = step.principal
        return user is not None and step.instance.team_id in user_group_ids(user)


class Finish(TicketAction):
    name = "finish"

    def allowed(self, step: TicketStep) -> bool:
        user = step.principal
        return user is not None and any(holds_handoff(user=user, handoff=h) for h in step.facts.open_handoffs)

    def prepare(self, step: TicketStep) -> dict[str, Any]:
        resolution = str(step.data.get("resolution") or "").strip()
        if not resolution:
            raise errors.InvalidInput(
                "Say how it was resolved.", field_errors={"resolution": ["A resolution is required."]}
            )
        return {"resolution": resolution}


class Reopen(TicketAction):
    name = "reopen"

    def allowed(self, step: TicketStep) -> bool:
        return step.principal is not None and step.instance.reporter_id == step.principal.pk


class TicketWorkflow(Workflow[Ticket, Facts]):
    model = Ticket
    actions = {a.name: a for a in (Start(), Finish(), Reopen())}

    def holder_problem(self, instance: Ticket, *, user: Any) -> str | None:
        if user.pk == instance.reporter_id:
            return "A ticket cannot be handed to its own reporter."
        return None

    def audience(self, instance: Ticket) -> list[Recipient]:
        return [Recipient(user_id=instance.reporter_id)]
