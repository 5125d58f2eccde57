"""Handoffs: who holds a workflow item now."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.utils import timezone


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

    # handoff_by_instance (content_type, object_id) serves every lookup by content type.
    content_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, db_index=False)
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
    # The timers: when the scan next has something to do for this handoff (a reminder, or
    # the escalation at `due_at`), how many reminders went out, and when it escalated.
    # The scan advances them in the transaction that acts, so nothing fires twice.
    next_timer_at = models.DateTimeField(null=True, blank=True)
    reminders_sent = models.PositiveSmallIntegerField(default=0)
    # When its reminders fall (ISO 8601), worked out when it opened from its SLA's clock
    # (in working time where the SLA counts working hours).
    reminders_at = models.JSONField(default=list, blank=True)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # Put aside by its holder until then: left out of active lists, woken by the timers scan.
    snoozed_until = models.DateTimeField(null=True, blank=True)
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
            # The team view (oldest first by default): walked in order, it stops after a
            # page; without it the team's tens of thousands of open items were sorted
            # for every page (250 ms at 350,000 open of 3,000,000, bench/inbox). No such
            # index for the due order: the inbox's reach is a small share of all open
            # items, so the planner's walk in due order read too far (80 ms against 30).
            models.Index(
                fields=["opened_at", "id"],
                condition=Q(closed_at__isnull=True),
                name="handoff_open_by_opened",
            ),
            models.Index(fields=["content_type", "object_id"], name="handoff_by_instance"),
            # The timers scan: open handoffs whose next timer is due, earliest first.
            models.Index(
                fields=["snoozed_until", "id"],
                condition=Q(closed_at__isnull=True, snoozed_until__isnull=False),
                name="handoff_snoozed",
            ),
            models.Index(
                fields=["next_timer_at", "id"],
                condition=Q(closed_at__isnull=True, next_timer_at__isnull=False),
                name="handoff_timer_due",
            ),
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

    def is_snoozed(self, at: datetime) -> bool:
        return self.snoozed_until is not None and self.snoozed_until > at

    def reminder_moments(self, fractions: tuple[float, ...]) -> list[datetime]:
        """When its reminders fall: as worked out when it opened (`reminders_at`), else at
        `fractions` of the wall-clock time from opening to due."""
        if self.reminders_at:
            return sorted(datetime.fromisoformat(moment) for moment in self.reminders_at)
        if self.due_at is None or self.due_at <= self.opened_at:
            return []
        span = self.due_at - self.opened_at
        return [self.opened_at + span * f for f in sorted(fractions) if 0 < f < 1]

    def next_timer(self, fractions: tuple[float, ...]) -> datetime | None:
        """The next reminder not yet sent, else the due time while not escalated."""
        pending = self.reminder_moments(fractions)[self.reminders_sent :]
        if pending:
            return pending[0]
        return self.due_at if self.escalated_at is None else None

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def holder_label(self) -> str:
        if self.assignee_id and self.candidate_group_id:
            return f"{self.assignee} (from {self.candidate_group})"
        return str(self.assignee or self.candidate_group)
