"""The separation-of-duties report, per period and request type, read from the audit trail.

    self-approvals   decisions taken by the request's own requester (as actor or as the
                     person acted for). The service forbids them: the report proves none
                     were recorded, and lists any that were.
    on behalf        actions taken by one person for another (delegation)
    overrides        a person cancelling, reassigning or moving a request to another
                     policy version: the managers' and administrators' interventions
    system           actions no person took (timers, policy moves run by the system)

Counted by one aggregate query over the entries of requests (each entry's request type
and requester read by correlated subqueries), plus one for the listed cases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import BigIntegerField, Count, F, OuterRef, Q, Subquery
from django.db.models.functions import Cast, Trunc
from django.utils import timezone

from approvals.actions import DECISIONS, Action
from approvals.models import ApprovalRequest
from workflows.models import AuditEntry

PERIODS = ("month", "week", "day")
OVERRIDES = [Action.CANCEL.value, Action.REASSIGN.value, Action.MOVE_POLICY.value]
CASES_SHOWN = 100


@dataclass(frozen=True)
class SodRow:
    period: date
    request_type: str
    self_approvals: int
    on_behalf: int
    overrides: int
    system: int
    entries: int


@dataclass
class SodReport:
    period: str
    since: date | None
    until: date | None
    rows: list[SodRow] = field(default_factory=list)
    cases: list[AuditEntry] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(getattr(row, name) for row in self.rows)

    @property
    def totals(self) -> dict[str, int]:
        names = ("self_approvals", "on_behalf", "overrides", "system", "entries")
        return {name: self.total(name) for name in names}


def _entries(since: date | None, until: date | None) -> Any:
    request = ApprovalRequest.objects.filter(pk=Cast(OuterRef("object_id"), BigIntegerField()))
    query = AuditEntry.objects.filter(content_type=ContentType.objects.get_for_model(ApprovalRequest))
    if since is not None:
        query = query.filter(created_at__gte=timezone.make_aware(datetime.combine(since, time.min)))
    if until is not None:
        query = query.filter(
            created_at__lt=timezone.make_aware(datetime.combine(until + timedelta(days=1), time.min))
        )
    return query.annotate(
        request_type_name=Subquery(request.values("request_type__name")[:1]),
        requester_id=Subquery(request.values("requester_id")[:1]),
    )


SELF_DECISION = Q(action__in=[a.value for a in DECISIONS]) & (
    Q(actor_id=F("requester_id")) | Q(on_behalf_of_id=F("requester_id"))
)


def sod_report(*, since: date | None = None, until: date | None = None, period: str = "month") -> SodReport:
    if period not in PERIODS:
        raise ValueError(f"period must be one of {', '.join(PERIODS)}")
    entries = _entries(since, until)
    grouped = (
        entries.annotate(period=Trunc("created_at", period))
        .values("period", "request_type_name")
        .annotate(
            self_approvals=Count("id", filter=SELF_DECISION),
            on_behalf=Count("id", filter=Q(on_behalf_of__isnull=False)),
            overrides=Count("id", filter=Q(action__in=OVERRIDES, actor__isnull=False)),
            system=Count("id", filter=Q(actor__isnull=True)),
            entries=Count("id"),
        )
        .order_by("period", "request_type_name")
    )
    report = SodReport(period=period, since=since, until=until)
    for row in grouped:
        moment = row["period"]
        report.rows.append(
            SodRow(
                period=moment.date() if isinstance(moment, datetime) else moment,
                request_type=row["request_type_name"] or "—",
                self_approvals=row["self_approvals"],
                on_behalf=row["on_behalf"],
                overrides=row["overrides"],
                system=row["system"],
                entries=row["entries"],
            )
        )
    report.cases = list(
        entries.filter(SELF_DECISION)
        .select_related("actor", "on_behalf_of")
        .order_by("created_at", "id")[:CASES_SHOWN]
    )
    return report
