"""The engine's tables: the abstract workflow model, handoffs, the audit trail, the outbox.

Nothing here changes state on its own: `workflows.services` is the one writer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django_fsm import FSMModelMixin

if TYPE_CHECKING:
    from accounts.models import User


# --- what a workflow model tells the service -------------------------------------------


@dataclass(frozen=True)
class HandoffSpec:
    """A handoff to open: to a user, to a candidate group, or to a group with a preset holder."""

    user: User | None = None
    group: Group | None = None
    stage: str = ""
    slot: str = ""
    due_at: datetime | None = None


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
class TransitionStep:
    """What the service knows about a transition while it runs (passed to model hooks)."""

    name: str
    source: str
    target: str
    actor: User | None
    principal: User | None
    comment: str
    data: dict[str, Any]
    prepared: dict[str, Any]
    open_handoffs: list[Handoff]


@dataclass
class WorkflowEffects:
    """What a transition does beyond the state change, decided by the workflow model.

    `close` lists open handoffs to close (by default every open one when the state
    changes); `open` lists new handoffs; `tasks` are Celery tasks to run after commit;
    `notify` are extra people to tell live; `audit_data` joins the audit entry.
    """

    close: list[Handoff] = field(default_factory=list)
    open: list[HandoffSpec] = field(default_factory=list)
    tasks: list[TaskSpec] = field(default_factory=list)
    notify: list[Recipient] = field(default_factory=list)
    audit_data: dict[str, Any] = field(default_factory=dict)


class WorkflowModel(FSMModelMixin, models.Model):
    """Base of every workflow instance.

    A concrete model declares `state = FSMField(default=..., protected=True)` and its
    django-fsm transitions; the transition methods only change fields (no I/O). The
    service bumps `version` on every transition (optimistic locking) and keeps the head
    of the instance's audit chain here (`audit_seq`, `audit_head`), so appending an
    entry needs no extra read: whoever holds the row lock owns the chain's head.
    """

    version = models.PositiveIntegerField(default=1)
    audit_seq = models.PositiveIntegerField(default=0, editable=False)
    audit_head = models.CharField(max_length=64, default="", editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    state: Any
    # Foreign keys read by the workflow's hooks on every transition: loaded with the row
    # lock in one query (only the instance's own row is locked).
    workflow_lock_related: tuple[str, ...] = ()

    class Meta:
        abstract = True

    # Hooks called by workflows.services.transition, in this order. Override them.

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
        """Validate the input of `name` and return keyword arguments for its method.

        Runs with the row locked, after the state and permission checks, with the
        instance's open handoffs as loaded under the lock. May read the database, must
        not write it. Raises InvalidInput naming each bad field.
        """
        return {}

    def workflow_effects(self, *, step: TransitionStep) -> WorkflowEffects:
        """Say which handoffs close and open, and what else happens, after `step`.

        Runs after the transition method changed the fields and before anything is
        saved. May write the model's own side tables (e.g. decisions); everything it
        returns is applied by the service in the same transaction.
        """
        if step.source == step.target:
            return WorkflowEffects()
        return WorkflowEffects(close=list(step.open_handoffs))

    def workflow_forbidden_reason(self, *, name: str, principal: User | None) -> str:
        """A sentence telling `principal` why they may not take `name` here."""
        return f"You may not {name.replace('_', ' ')} this item."

    def workflow_holder_problem(self, *, user: User) -> str | None:
        """Why `user` may not hold this item (e.g. it is their own request), or None."""
        return None

    def workflow_audience(self) -> list[Recipient]:
        """Who follows this instance beyond its handoff holders (e.g. its requester)."""
        return []

    def workflow_ref(self) -> str:
        """A stable reference used in events and the audit trail: 'app.model:pk'."""
        return f"{self._meta.label_lower}:{self.pk}"


# --- handoffs ----------------------------------------------------------------------------


class HandoffQuerySet(models.QuerySet["Handoff"]):
    def open(self) -> HandoffQuerySet:
        return self.filter(closed_at__isnull=True)

    def for_instance(self, instance: models.Model) -> HandoffQuerySet:
        return self.filter(
            content_type=ContentType.objects.get_for_model(instance), object_id=str(instance.pk)
        )


class Handoff(models.Model):
    """Who holds a workflow item now: a user, and/or a candidate group whose members may claim it.

    A handoff is opened and closed, never re-pointed: reassigning closes this one (reason
    'reassigned', `replaced_by` set) and opens another, so the table is its own history.
    """

    class CloseReason(models.TextChoices):
        DONE = "done", "Done"
        REASSIGNED = "reassigned", "Reassigned"
        SUPERSEDED = "superseded", "No longer needed"

    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT)
    object_id = models.CharField(max_length=64)
    stage = models.CharField(max_length=100, blank=True)
    # The place in the workflow this handoff fills (e.g. one approver of a stage); a
    # successor made by reassignment fills the same place.
    slot = models.CharField(max_length=100, blank=True)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="handoffs_held",
    )
    candidate_group = models.ForeignKey(
        Group, null=True, blank=True, on_delete=models.PROTECT, related_name="handoffs"
    )
    due_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(default=timezone.now)
    opened_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    close_reason = models.CharField(max_length=20, choices=CloseReason.choices, blank=True)
    replaced_by = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="replaces"
    )

    objects = HandoffQuerySet.as_manager()

    class Meta:
        permissions = [("reassign_handoff", "Can reassign handoffs of other people")]
        indexes = [
            # The inbox: open handoffs held by a user / offered unclaimed to a group, in order.
            models.Index(
                fields=["assignee", "id"],
                condition=Q(closed_at__isnull=True),
                name="handoff_open_by_assignee",
            ),
            models.Index(
                fields=["candidate_group", "id"],
                condition=Q(closed_at__isnull=True, assignee__isnull=True),
                name="handoff_open_by_group",
            ),
            models.Index(fields=["content_type", "object_id"], name="handoff_by_instance"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(assignee__isnull=False) | Q(candidate_group__isnull=False),
                name="handoff_has_holder",
            ),
        ]

    def __str__(self) -> str:
        holder = self.assignee or self.candidate_group
        return f"{self.content_type.app_label}.{self.content_type.model}:{self.object_id} → {holder}"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def holder_label(self) -> str:
        if self.assignee_id and self.candidate_group_id:
            return f"{self.assignee} (from {self.candidate_group})"
        return str(self.assignee or self.candidate_group)


# --- the audit trail ---------------------------------------------------------------------


class AppendOnlyError(Exception):
    """Raised when code tries to change or remove an audit entry."""


class AuditEntryQuerySet(models.QuerySet["AuditEntry"]):
    def update(self, **kwargs: Any) -> int:
        raise AppendOnlyError("The audit trail is append-only: entries cannot be updated.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("The audit trail is append-only: entries cannot be deleted.")

    def for_instance(self, instance: models.Model) -> AuditEntryQuerySet:
        return self.filter(
            content_type=ContentType.objects.get_for_model(instance), object_id=str(instance.pk)
        )


class AuditEntry(models.Model):
    """One recorded change to a workflow instance: a transition or a handoff change.

    `hash` covers every field and `prev_hash`, the hash of the instance's previous entry,
    so a changed, removed or re-ordered entry breaks the chain (see workflows.audit).
    Append-only here in the ORM and, on PostgreSQL, by a trigger (migration 0002).
    """

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        TRANSITION = "transition", "Transition"
        HANDOFF = "handoff", "Handoff"
        NOTE = "note", "Note"

    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, related_name="+")
    object_id = models.CharField(max_length=64)
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=20, choices=Kind.choices)
    action = models.CharField(max_length=100)
    source = models.CharField(max_length=50, blank=True)
    target = models.CharField(max_length=50, blank=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    on_behalf_of = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+"
    )
    comment = models.TextField(blank=True)
    data = models.JSONField(default=dict)
    trace_id = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "audit entries"
        # Related-object access and internal deletes go through the base manager: it must
        # refuse updates and deletes as `objects` does.
        base_manager_name = "objects"
        constraints = [
            models.UniqueConstraint(
                fields=["content_type", "object_id", "seq"], name="audit_entry_chain_position"
            ),
        ]
        indexes = [
            models.Index(fields=["created_at", "id"], name="audit_by_time"),
            models.Index(fields=["actor", "created_at"], name="audit_by_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.content_type_id}:{self.object_id} #{self.seq} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding or kwargs.get("force_update") or kwargs.get("update_fields") is not None:
            raise AppendOnlyError("The audit trail is append-only: entries cannot be updated.")
        # Always an INSERT: a new object carrying an existing id would otherwise UPDATE that
        # row (Django tries an UPDATE first when the primary key is set) and rewrite history.
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise AppendOnlyError("The audit trail is append-only: entries cannot be deleted.")


# --- the outbox --------------------------------------------------------------------------


class OutboxEvent(models.Model):
    """An event written in the same transaction as the change that caused it.

    Delivered after commit to a Channels group (`kind=channel`) or as a Celery task
    (`kind=task`), at least once: consumers de-duplicate by `id`.
    """

    class Kind(models.TextChoices):
        CHANNEL = "channel", "Channel group"
        TASK = "task", "Celery task"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        DEAD = "dead", "Dead letter"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    destination = models.CharField(max_length=200)
    payload = models.JSONField(default=dict)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveSmallIntegerField(default=0)
    available_at = models.DateTimeField(default=timezone.now)
    created_at = models.DateTimeField(default=timezone.now)
    delivered_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["available_at", "created_at"],
                condition=Q(status="pending"),
                name="outbox_pending",
            ),
            models.Index(fields=["delivered_at"], condition=Q(status="delivered"), name="outbox_delivered"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.destination} ({self.status})"


class IdempotencyKey(models.Model):
    """Remembers the outcome of a keyed transition so that a retry replays it."""

    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    fingerprint = models.CharField(max_length=64)
    audit_entry = models.ForeignKey(AuditEntry, null=True, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["actor", "key"], name="idempotency_key_per_actor"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_id}:{self.key}"
