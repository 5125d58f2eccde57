"""What a workflow tells the engine: its actions, each with its checks and its effects.

A workflow model holds fields and its django-fsm graph (which state each transition
leaves from and may reach); a `Workflow` says what each transition means: who may take it
(`allowed`, `refusal`), what input it needs and what it changes (`prepare`), and what
follows (`effects`: handoffs closed and opened, side rows, tasks, audit data). The app
registers it in its AppConfig.ready() (`workflow_register`), so models never import the
code that acts on them and the engine finds it from the model alone.

The engine calls an action with a `Step`: the locked instance, who acts for whom, the
input, and the `Facts` the workflow read once under the row lock (open handoffs, and
whatever else the workflow's checks need), passed as an argument to every check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.db import models

from workflows import errors
from workflows.models import Handoff, Recipient, TaskSpec, WorkflowEffects, WorkflowModel

if TYPE_CHECKING:
    from accounts.models import User

W = TypeVar("W", bound=WorkflowModel)


@dataclass
class Facts:
    """What the checks and plans of one step read, loaded once: the open handoffs (under
    the row lock when the service runs), and a workflow's own facts on subclasses."""

    open_handoffs: list[Handoff] = field(default_factory=list)


F = TypeVar("F", bound=Facts)


@dataclass
class Step(Generic[W, F]):
    """One action about to be taken: passed to every hook of the action.

    `actor` is who acts (None: the system); `principal` whose decision it is (the actor,
    or the person who delegated to them); `prepared` is what `prepare` returned (the
    transition method's keyword arguments), set before `effects` runs; `source` the
    state before the transition.
    """

    instance: W
    name: str
    actor: User | None
    principal: User | None
    facts: F
    comment: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    prepared: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    # What `prepare` worked out beyond the method's arguments, for `effects` to hand over.
    plan: Any = None


class Action(Generic[W, F]):
    """One lifecycle action of a workflow. Subclasses override what they need.

    The engine calls, with the row locked: `allowed` (after the state check: a refusal is
    Forbidden with `refusal`'s sentence), `prepare` (validates input, may read, must not
    write; returns the transition method's keyword arguments), the transition method,
    then `effects` (may read, must not write: the engine writes what it returns).
    """

    name: str = ""

    def allowed(self, step: Step[W, F]) -> bool:
        return True

    def refusal(self, step: Step[W, F]) -> str:
        return f"You may not {self.name.replace('_', ' ')} this item."

    def prepare(self, step: Step[W, F]) -> dict[str, Any]:
        return {}

    def effects(self, step: Step[W, F]) -> WorkflowEffects:
        return WorkflowEffects(close=list(step.facts.open_handoffs))


class Workflow(Generic[W, F]):
    """A workflow model's actions and its answers to the engine's questions."""

    model: type[W]
    actions: Mapping[str, Action[W, F]] = {}
    # Foreign keys its actions read on every step: loaded with the row lock in one
    # statement (only the instance's own row is locked).
    lock_related: tuple[str, ...] = ()

    def action(self, name: str) -> Action[W, F]:
        found = self.actions.get(name)
        if found is None:
            raise errors.InvalidInput(
                f"'{name}' is not an action of {self.model._meta.verbose_name}.",
                field_errors={"action": [f"Unknown action '{name}'."]},
            )
        return found

    def facts(self, instance: W, *, open_handoffs: list[Handoff]) -> F:
        """The facts of `instance` its actions read; the open handoffs are given."""
        return Facts(open_handoffs=open_handoffs)  # type: ignore[return-value]

    def created(self, instance: W, *, actor: User | None) -> list[models.Model]:
        """Side rows to insert with a new instance (e.g. its first revision)."""
        return []

    def holder_problem(self, instance: W, *, user: User) -> str | None:
        """Why `user` may not hold this item (e.g. it is their own request), or None."""
        return None

    def handoff_tasks(self, instance: W, *, action: str) -> list[TaskSpec]:
        """The Celery tasks a change of holders ('claim', 'unclaim', 'reassign') starts
        after commit (e.g. telling the new holder); none by default. Each is told the
        audit entry's sequence number."""
        return []

    def delegation_scope(self, instance: W) -> str | None:
        """The scope key a delegation must list to reach this item (approvals: the request
        type's slug); None: only delegations of everything reach it."""
        return None

    def owner_id(self, instance: W) -> Any | None:
        """Whose own item this is (approvals: the requester): nobody acts for them on it,
        whatever they delegated. None: nobody's in particular."""
        return None

    def audience(self, instance: W) -> list[Recipient]:
        """Who follows this instance beyond its handoff holders (e.g. its requester)."""
        return []


_REGISTRY: dict[type[WorkflowModel], Workflow[Any, Any]] = {}


def workflow_register(workflow: Workflow[Any, Any]) -> None:
    """Make `workflow` the meaning of its model's actions (call from AppConfig.ready)."""
    _REGISTRY[workflow.model] = workflow


def workflow_of(model: type[W]) -> Workflow[W, Any]:
    try:
        return _REGISTRY[model]
    except KeyError:
        raise errors.NotFound(f"{model._meta.label} has no registered workflow.") from None


def action_allowed(*, instance: W, name: str, user: User, facts: Facts | None = None) -> bool:
    """Whether `user` may take action `name` on `instance` as things are (state aside)."""
    workflow = workflow_of(type(instance))
    action = workflow.action(name)
    if facts is None:
        facts = workflow.facts(instance, open_handoffs=list(Handoff.objects.for_instance(instance).open()))
    step: Step[Any, Any] = Step(instance=instance, name=name, actor=user, principal=user, facts=facts)
    return user.is_active and action.allowed(step)


def fsm_permission(name: str) -> Callable[[Any, Any], bool]:
    """The django-fsm `permission=` of transition `name`: the action's own check, with
    facts read for the occasion (the service passes the facts it read under the lock)."""

    def permitted(instance: Any, user: Any) -> bool:
        return action_allowed(instance=instance, name=name, user=user)

    return permitted
