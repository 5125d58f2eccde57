"""The managers' figures page: SLA breach rate, lead time and time in each stage, per
request type and per team, over a chosen period, with charts drawn by the server."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from approvals.charts import bar_chart
from approvals.selectors.figures import Figures, Group, manager_figures
from approvals.selectors.team import may_see_team
from approvals.views.common import me

DEFAULT_DAYS = 30
MAX_DAYS = 366


class PeriodForm(forms.Form):
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), help_text="inclusive"
    )

    def period(self, *, today: date) -> tuple[date, date]:
        end = self.cleaned_data.get("end") or today
        start = self.cleaned_data.get("start") or end - timedelta(days=DEFAULT_DAYS - 1)
        return start, end

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            self.add_error("end", "The period must end on or after its start.")
        elif start and end and (end - start).days >= MAX_DAYS:
            self.add_error("end", f"Choose at most {MAX_DAYS} days.")
        return data


def _charts(figures: Figures) -> dict[str, Any]:
    def rate(groups: list[Group]) -> list[tuple[str, float]]:
        return [(g.name, g.breach_rate * 100) for g in groups if g.breach_rate is not None]

    def lead(groups: list[Group]) -> list[tuple[str, float]]:
        return [(g.name, g.median_lead_hours) for g in groups if g.median_lead_hours is not None]

    stages = [(f"{g.name} · {stage}", hours) for g in figures.by_type for stage, hours in g.stage_means()]
    return {
        "breach_by_type": bar_chart(
            title="SLA breach rate per type", rows=rate(figures.by_type), unit="%", scale_max=100
        ),
        "breach_by_team": bar_chart(
            title="SLA breach rate per team", rows=rate(figures.by_team), unit="%", scale_max=100
        ),
        "lead_by_type": bar_chart(title="Median lead time per type", rows=lead(figures.by_type), unit="h"),
        "lead_by_team": bar_chart(title="Median lead time per team", rows=lead(figures.by_team), unit="h"),
        "stage_time": bar_chart(title="Mean time in each stage per type", rows=stages, unit="h"),
    }


@login_required
@require_safe
def figures(request: HttpRequest) -> HttpResponse:
    if not may_see_team(me(request)):
        raise PermissionDenied("Only managers see the figures.")
    form = PeriodForm(request.GET)
    if not form.is_valid():
        return render(request, "approvals/figures.html", {"form": form}, status=400)
    today = timezone.localdate()
    first, last = form.period(today=today)
    start = timezone.make_aware(datetime.combine(first, time.min))
    end = timezone.make_aware(datetime.combine(last + timedelta(days=1), time.min))
    found = manager_figures(start=start, end=end, now=timezone.now())
    context = {"form": form, "figures": found, "first": first, "last": last, **_charts(found)}
    return render(request, "approvals/figures.html", context)
