"""Due times of handoffs from the stage's SLA: wall-clock or working time, from one clock reading."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from accounts.models import Holiday, Team, TeamMembership, WorkingCalendar
from approvals.diagrams import policy_svg
from approvals.route import Slot, handoff_specs
from approvals.routing import PolicyError, policy_parse
from tests.factories import GroupFactory, RequestTypeFactory, make_approver, make_request, make_requester
from workflows.models import Handoff

pytestmark = pytest.mark.django_db


def _document(group: str, **stage: Any) -> dict[str, Any]:
    return {"stages": [{"name": "review", "approvers": {"groups": [group]}, **stage}]}


def test_a_handoffs_due_time_and_opening_come_from_one_clock_reading():
    # given a stage with a 2-day SLA in wall-clock time
    group = GroupFactory.create()
    make_approver(group)
    kind = RequestTypeFactory.create(approver_group=group, policy=_document(group.name, sla="2d"))
    # when a request is submitted
    request = make_request(requester=make_requester(), request_type=kind)
    handoff = Handoff.objects.for_instance(request).open().get()
    # then it is due exactly two days after it opened, to the microsecond
    assert handoff.due_at - handoff.opened_at == timedelta(days=2)
    assert handoff.next_timer_at == handoff.due_at


def test_a_working_time_sla_counts_the_holders_team_calendar():
    # given a Berlin team with a calendar whose Monday is a holiday, and an approver in it
    team = Team.objects.create(name="Berlin", slug="berlin")
    calendar = WorkingCalendar.objects.create(name="Berlin", team=team, time_zone="Europe/Berlin")
    Holiday.objects.create(calendar=calendar, day=date(2026, 4, 6), name="Easter Monday")
    group = GroupFactory.create()
    approver = make_approver(group)
    TeamMembership.objects.create(team=team, user=approver)
    stage = policy_parse(_document(group.name, sla="1d2h", sla_clock="working")).stages[0]
    # when handoffs open on Friday 3 April 2026 at 15:00 Berlin time (13:00 UTC)
    (spec,) = handoff_specs(stage, [Slot(key=f"user:{approver.pk}", user=approver)])
    friday = datetime(2026, 4, 3, 13, 0, tzinfo=UTC)
    # then 10 working hours (a day of 8, and 2) are 2 on Friday and 8 on Tuesday (the
    # weekend and Easter Monday do not count): due Tuesday at 17:00 Berlin (15:00 UTC)
    assert spec.due_from(friday) == datetime(2026, 4, 7, 15, 0, tzinfo=UTC)


def test_a_groups_working_time_runs_on_the_organisations_calendar():
    WorkingCalendar.objects.create(name="Org", time_zone="America/New_York")
    group = GroupFactory.create()
    stage = policy_parse(_document(group.name, sla="4h", sla_clock="working")).stages[0]
    (spec,) = handoff_specs(stage, [Slot(key=f"group:{group.pk}", group=group)])
    # Monday 2 March 2026 08:00 New York (13:00 UTC) + 4 working hours: 13:00 New York
    assert spec.due_from(datetime(2026, 3, 2, 13, 0, tzinfo=UTC)) == datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


def test_reminders_set_the_first_timer_before_the_due_time():
    group = GroupFactory.create()
    make_approver(group)
    kind = RequestTypeFactory.create(
        approver_group=group, policy=_document(group.name, sla="10h", remind_at=[0.9, 0.5])
    )
    request = make_request(requester=make_requester(), request_type=kind)
    handoff = Handoff.objects.for_instance(request).open().get()
    assert handoff.next_timer_at == handoff.opened_at + timedelta(hours=5)
    assert handoff.reminder_moments((0.5, 0.9)) == [
        handoff.opened_at + timedelta(hours=5),
        handoff.opened_at + timedelta(hours=9),
    ]


@pytest.mark.parametrize(
    ("stage", "problem"),
    [
        ({"sla": "1d", "sla_clock": "weekly"}, "'sla_clock' must be calendar or working (got 'weekly')"),
        ({"sla": "1d", "remind_at": [0.5, 1.5]}, "'remind_at' must list up to 5 fractions"),
        ({"sla": "1d", "on_overdue": "shrug"}, "'on_overdue' must be one of notify_manager"),
        ({"sla": "1d", "on_overdue": "reassign"}, "'on_overdue: reassign' needs 'escalate_to'"),
        ({"on_overdue": "reject"}, "need an 'sla'"),
    ],
)
def test_timer_settings_that_make_no_sense_are_refused_by_name(stage, problem):
    with pytest.raises(PolicyError) as caught:
        policy_parse(_document("g", **stage))
    assert any(problem in line for line in caught.value.problems), caught.value.problems


def test_the_overdue_action_defaults_to_the_escalation_target_else_the_manager():
    with_target = policy_parse(_document("g", sla="1d", escalate_to={"group": "leads"})).stages[0]
    without = policy_parse(_document("g", sla="1d")).stages[0]
    explicit = policy_parse(_document("g", sla="1d", on_overdue="approve")).stages[0]
    assert (with_target.overdue_action, without.overdue_action, explicit.overdue_action) == (
        "reassign",
        "notify_manager",
        "approve",
    )


def test_the_policy_diagram_says_what_overdue_does():
    policy = policy_parse(
        {
            "stages": [
                {"name": "a", "approvers": {"groups": ["g"]}, "sla": "4h", "on_overdue": "reject"},
                {"name": "b", "approvers": {"groups": ["g"]}, "sla": "1d", "sla_clock": "working"},
            ]
        }
    )
    svg = str(policy_svg(policy=policy))
    assert "SLA 4h, then auto-rejected" in svg
    assert "SLA 1d working" in svg


def test_reminders_of_a_working_time_sla_fall_in_working_time():
    # given a 2-day working SLA (16 working hours, UTC calendar) with a reminder at half
    WorkingCalendar.objects.create(name="Org", time_zone="UTC")
    group = GroupFactory.create()
    stage = policy_parse(_document(group.name, sla="2d", sla_clock="working", remind_at=[0.5])).stages[0]
    (spec,) = handoff_specs(stage, [Slot(key=f"group:{group.pk}", group=group)])
    friday = datetime(2026, 3, 6, 15, 0, tzinfo=UTC)
    due = spec.due_from(friday)
    # then the reminder comes after 8 working hours (2 on Friday, 6 on Monday), not halfway
    # through the weekend; and it is due on Tuesday at 15:00
    assert spec.reminders_from(friday, due) == [datetime(2026, 3, 9, 15, 0, tzinfo=UTC)]
    assert due == datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
