"""The abstract workflow model and the plain values a workflow hands to the engine."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from django.contrib.auth.models import Group
from django.db import models
from django.utils import timezone
from django_fsm import FSMModelMixin

if TYPE_CHECKING:
    from accounts.models import User
    from workflows.models.handoffs import Handoff


class DueRule(Protocol):
    """When work opened at `start` is due (e.g. so many working hours later), and when a
    `fraction` of that time has passed (where its reminders fall)."""

    def due_from(self, start: datetime) -> datetime: ...

    def part_from(self, start: datetime, fraction: float) -> datetime: ...


@dataclass(frozen=True)
class TimerState:
    """Where a handoff's timers stand: carried to its successor when it is handed on."""

    next_timer_at: datetime | None = None
    reminders_sent: int = 0
    escalated_at: datetime | None = None
    reminders_at: tuple[str, ...] = ()


@dataclass(frozen=True)
class HandoffSpec:
    """A handoff to open: to a user, to a candidate group, or to a group with a preset holder.

    Due at `due_at`, or `due_in` after the moment it opens, or when `due_rule` says from
    that moment (one clock reading for the opening and the due time). `remind_at` are
    fractions of the time between opening and due (e.g. 0.5, 0.9) at which its holder is
    reminded; `timers` (a successor's) carries its predecessor's timers on instead.
    """

    user: User | None = None
    group: Group | None = None
    stage: str = ""
    slot: str = ""
    due_at: datetime | None = None
    due_in: timedelta | None = None
    due_rule: DueRule | None = None
    remind_at: tuple[float, ...] = ()
    timers: TimerState | None = None

    def due_from(self, now: datetime) -> datetime | None:
        if self.due_rule is not None:
            return self.due_rule.due_from(now)
        return self.due_at if self.due_in is None else now + self.due_in

    def reminders_from(self, now: datetime, due: datetime | None) -> list[datetime]:
        """When its reminders fall if it opens at `now`, due at `due`: on the due rule's
        clock (working time) where it has one, else in wall-clock time."""
        if due is None or due <= now:
            return []
        fractions = sorted(f for f in self.remind_at if 0 < f < 1)
        if self.due_rule is not None:
            return [self.due_rule.part_from(now, f) for f in fractions]
        return [now + (due - now) * f for f in fractions]


@dataclass(frozen=True)
class Recipient:
    """Someone to tell about a change: a user or every member of a group."""

    user_id: int | None = None
    group_id: int | None = None

    @property
    def channel_group(self) -> str:
        if self.user_id is not None:
            return f"inbox.user.{self.user_id}"
        return f"inbox.group.{self.group_id}"


@dataclass(frozen=True)
class TaskSpec:
    """A Celery task to run after commit, delivered through the outbox.

    The service adds `audit_seq` (the entry that caused it) to `kwargs`.
    """

    name: str
    kwargs: dict[str, Any]


@dataclass
class WorkflowEffects:
    """What a transition does beyond the state change, decided by the workflow's action.

    `close` lists open handoffs to close; `open` lists new handoffs; `rows` are the
    workflow's own side rows (decisions, revisions) to insert; `updated` are side rows to
    save, each with the fields that changed (a draft's first revision, edited); `tasks` are Celery tasks to
    run after commit; `notify` are extra people to tell live; `audit_data` joins the
    audit entry (built by the workflow's record builders).
    """

    close: list[Handoff] = field(default_factory=list)
    open: list[HandoffSpec] = field(default_factory=list)
    rows: list[models.Model] = field(default_factory=list)
    updated: list[tuple[models.Model, list[str]]] = field(default_factory=list)
    tasks: list[TaskSpec] = field(default_factory=list)
    notify: list[Recipient] = field(default_factory=list)
    audit_data: dict[str, Any] = field(default_factory=dict)


class WorkflowModel(FSMModelMixin, models.Model):
    """Base of every workflow instance.

    A concrete model declares `state = FSMField(default=..., protected=True)` and its
    django-fsm transitions; the transition methods only change fields (no I/O). What each
    action means (its checks, its route change, its effects) is the model's `Workflow`
    (workflows.definition), registered in its app's ready(). The service bumps `version`
    on every transition (optimistic locking) and keeps the head of the instance's audit
    chain here (`audit_seq`, `audit_head`), so appending an entry needs no extra read:
    whoever holds the row lock owns the chain's head.
    """

    version = models.PositiveIntegerField(default=1)
    audit_seq = models.PositiveIntegerField(default=0, editable=False)
    audit_head = models.CharField(max_length=64, default="", editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    state: Any

    class Meta:
        abstract = True

    def workflow_ref(self) -> str:
        """A stable reference used in events and the audit trail: 'app.model:pk'."""
        return f"{self._meta.label_lower}:{self.pk}"

    def workflow_label(self) -> str:
        """What people call this instance in a sentence ("Alex approved REQ-12")."""
        return self.workflow_ref()
