"""The figures a manager steers by, over a chosen period: how often the SLA was broken,
how long requests take from submission to verdict, and how long work waits in each stage,
per request type and per team.

Four queries whatever the period's size: the period's handoffs, their requests' types,
the holders' teams, and the requests decided in the period. A handoff counts in the period
it was opened in; one handed on by reassignment counts through its successor (which keeps
the due time), so a reassignment neither hides a breach nor counts twice.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.contenttypes.models import ContentType

from accounts.models import TeamMembership
from approvals.lifecycle import CHANGES_STAGE
from approvals.models import ApprovalRequest
from workflows.models import Handoff

NO_TEAM = "(no team)"


@dataclass
class Group:
    """The figures of one type or one team."""

    name: str
    handoffs: int = 0
    with_sla: int = 0
    breached: int = 0
    lead_times: list[float] = field(default_factory=list)  # hours, submission to verdict
    stage_hours: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    @property
    def breach_rate(self) -> float | None:
        """The share of handoffs with an SLA that were (or are still) past due, 0..1."""
        return self.breached / self.with_sla if self.with_sla else None

    @property
    def median_lead_hours(self) -> float | None:
        return statistics.median(self.lead_times) if self.lead_times else None

    def stage_means(self) -> list[tuple[str, float]]:
        return sorted((stage, statistics.fmean(hours)) for stage, hours in self.stage_hours.items())


@dataclass
class Figures:
    start: datetime
    end: datetime
    by_type: list[Group]
    by_team: list[Group]

    @property
    def empty(self) -> bool:
        return not any(g.handoffs or g.lead_times for g in self.by_type)


def _hours(delta: timedelta) -> float:
    return delta.total_seconds() / 3600


def manager_figures(*, start: datetime, end: datetime, now: datetime) -> Figures:
    """The figures of handoffs opened and requests decided in [start, end), at `now`
    (open work past its due time counts as breached)."""
    content_type = ContentType.objects.get_for_model(ApprovalRequest)
    handoffs = list(
        Handoff.objects.filter(content_type=content_type, opened_at__gte=start, opened_at__lt=end)
        .exclude(stage=CHANGES_STAGE)
        .exclude(close_reason=Handoff.CloseReason.REASSIGNED)
        .values_list("object_id", "stage", "opened_at", "closed_at", "due_at", "assignee_id")
    )
    request_ids = {int(h[0]) for h in handoffs}
    decided = list(
        ApprovalRequest.objects.filter(
            decided_at__gte=start, decided_at__lt=end, submitted_at__isnull=False
        ).values_list("pk", "request_type__name", "requester_id", "submitted_at", "decided_at")
    )
    type_of = dict(ApprovalRequest.objects.filter(pk__in=request_ids).values_list("pk", "request_type__name"))
    people = {h[5] for h in handoffs if h[5] is not None} | {d[2] for d in decided}
    team_of: dict[int, str] = {}
    for user_id, team in (
        TeamMembership.objects.filter(user_id__in=people)
        .order_by("team__name")
        .values_list("user_id", "team__name")
    ):
        team_of.setdefault(user_id, team)

    types: dict[str, Group] = {}
    teams: dict[str, Group] = {}

    def groups_for(type_name: str, person: int | None) -> tuple[Group, Group]:
        team = team_of.get(person, NO_TEAM) if person is not None else NO_TEAM
        return types.setdefault(type_name, Group(type_name)), teams.setdefault(team, Group(team))

    for object_id, stage, opened_at, closed_at, due_at, assignee_id in handoffs:
        type_name = type_of.get(int(object_id))
        if type_name is None:
            continue
        for group in groups_for(type_name, assignee_id):
            group.handoffs += 1
            if due_at is not None:
                group.with_sla += 1
                if (closed_at or now) > due_at:
                    group.breached += 1
            if closed_at is not None:
                group.stage_hours[stage or "(none)"].append(_hours(closed_at - opened_at))
    for _, type_name, requester_id, submitted_at, decided_at in decided:
        if decided_at is None or submitted_at is None:  # filtered out above; for the type checker
            continue
        for group in groups_for(type_name, requester_id):
            group.lead_times.append(_hours(decided_at - submitted_at))
    return Figures(
        start=start,
        end=end,
        by_type=sorted(types.values(), key=lambda g: g.name),
        by_team=sorted(teams.values(), key=lambda g: g.name),
    )
