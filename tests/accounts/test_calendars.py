"""Working calendars: due times in working time across weekends, holidays, zones and DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError

from accounts.calendars import (
    CalendarRule,
    NoWorkingTime,
    WorkingHours,
    calendar_for,
    working_duration,
    working_time_add,
)
from accounts.models import Holiday, Team, TeamMembership, WorkingCalendar
from tests.factories import UserFactory

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def local(zone: ZoneInfo, *args: int) -> datetime:
    return datetime(*args, tzinfo=zone)  # type: ignore[misc,arg-type]


def test_hours_within_one_working_day_are_added_as_they_are():
    rule = CalendarRule(time_zone="UTC")
    start = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday
    assert working_time_add(rule, start=start, duration=timedelta(hours=3)) == datetime(
        2026, 3, 2, 13, 0, tzinfo=UTC
    )


def test_friday_evening_work_is_due_on_monday():
    # given work handed over on Friday at 16:00 with 4 working hours
    rule = CalendarRule(time_zone="UTC")
    start = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
    # then one hour counts on Friday, three on Monday morning
    assert working_time_add(rule, start=start, duration=timedelta(hours=4)) == datetime(
        2026, 3, 9, 12, 0, tzinfo=UTC
    )


def test_work_handed_over_at_night_starts_counting_when_the_day_starts():
    rule = CalendarRule(time_zone="UTC")
    start = datetime(2026, 3, 3, 22, 30, tzinfo=UTC)  # Tuesday night
    assert working_time_add(rule, start=start, duration=timedelta(hours=1)) == datetime(
        2026, 3, 4, 10, 0, tzinfo=UTC
    )


def test_holidays_do_not_count():
    # given Monday is a holiday
    rule = CalendarRule(time_zone="UTC", holidays=frozenset({date(2026, 3, 9)}))
    start = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
    # then the work waits until Tuesday
    assert working_time_add(rule, start=start, duration=timedelta(hours=4)) == datetime(
        2026, 3, 10, 12, 0, tzinfo=UTC
    )


def test_working_hours_are_those_of_the_calendars_zone():
    # given a New York calendar, 09:00-17:00 there (UTC-5 in January)
    rule = CalendarRule(time_zone="America/New_York")
    start = datetime(2026, 1, 5, 13, 0, tzinfo=UTC)  # Monday 08:00 in New York
    # then 2 working hours end at 11:00 New York time
    assert working_time_add(rule, start=start, duration=timedelta(hours=2)) == local(NEW_YORK, 2026, 1, 5, 11)


def test_the_spring_dst_change_over_a_weekend_keeps_the_local_hours():
    # given a Berlin calendar; clocks go forward on Sunday 29 March 2026
    rule = CalendarRule(time_zone="Europe/Berlin")
    start = local(BERLIN, 2026, 3, 27, 16)  # Friday 16:00 CET (15:00 UTC)
    due = working_time_add(rule, start=start, duration=timedelta(hours=3))
    # then Monday 11:00 CEST, which is 09:00 UTC (not 10:00, as it would be in winter)
    assert due == local(BERLIN, 2026, 3, 30, 11)
    assert due == datetime(2026, 3, 30, 9, 0, tzinfo=UTC)


def test_the_autumn_dst_change_keeps_the_local_hours():
    rule = CalendarRule(time_zone="Europe/Berlin")
    start = local(BERLIN, 2026, 10, 23, 16)  # Friday 16:00 CEST (14:00 UTC)
    due = working_time_add(rule, start=start, duration=timedelta(hours=3))
    assert due == local(BERLIN, 2026, 10, 26, 11)
    assert due == datetime(2026, 10, 26, 10, 0, tzinfo=UTC)


def test_a_dst_change_on_a_working_day_keeps_the_working_day_eight_hours_long():
    # given a calendar that works on Sundays too, from 01:00 to 09:00 local time, across
    # the night clocks go forward (02:00 -> 03:00 on 29 March 2026)
    rule = CalendarRule(
        time_zone="Europe/Berlin", weekdays=frozenset(range(7)), day_starts=time(1), day_ends=time(9)
    )
    start = local(BERLIN, 2026, 3, 29, 1)
    # then that day holds only 7 real hours of work: the 8th is Monday from 01:00 to 02:00
    due = working_time_add(rule, start=start, duration=timedelta(hours=8))
    assert due == local(BERLIN, 2026, 3, 30, 2)


def test_working_days_of_an_sla_are_days_of_the_calendars_length():
    rule = CalendarRule(time_zone="UTC", day_starts=time(8), day_ends=time(16, 30))
    assert working_duration(rule, timedelta(days=2, hours=1)) == timedelta(hours=18)
    start = datetime(2026, 3, 4, 8, 0, tzinfo=UTC)  # Wednesday at opening
    # then 2 working days from Wednesday's opening end at Thursday's close
    assert WorkingHours(rule=rule, duration=working_duration(rule, timedelta(days=2))).due_from(
        start
    ) == datetime(2026, 3, 5, 16, 30, tzinfo=UTC)


def test_a_calendar_without_working_days_says_so_instead_of_looping():
    rule = CalendarRule(time_zone="UTC", weekdays=frozenset())
    with pytest.raises(NoWorkingTime):
        working_time_add(rule, start=datetime(2026, 3, 4, tzinfo=UTC), duration=timedelta(hours=1))


@pytest.mark.django_db
def test_a_teams_calendar_overrides_the_organisations_default():
    # given an organisation default in UTC and a Berlin team with its own holiday
    default = WorkingCalendar.objects.create(name="Organisation")
    Holiday.objects.create(calendar=default, day=date(2026, 5, 1), name="Labour day")
    team = Team.objects.create(name="Berlin", slug="berlin")
    berlin = WorkingCalendar.objects.create(name="Berlin", team=team, time_zone="Europe/Berlin")
    Holiday.objects.create(calendar=berlin, day=date(2026, 10, 3), name="Unity day")
    member, outsider = UserFactory.create(), UserFactory.create()
    TeamMembership.objects.create(team=team, user=member)
    # then each person gets their own calendar, a group's work the default
    assert calendar_for(member).time_zone == "Europe/Berlin"
    assert calendar_for(member).holidays == frozenset({date(2026, 10, 3)})
    assert calendar_for(outsider).holidays == frozenset({date(2026, 5, 1)})
    assert calendar_for(None).time_zone == "UTC"


@pytest.mark.django_db
def test_without_any_calendar_the_week_is_monday_to_friday_nine_to_five(settings):
    settings.TIME_ZONE = "Europe/Berlin"
    rule = calendar_for(None)
    assert (rule.time_zone, rule.weekdays, rule.day_starts, rule.day_ends) == (
        "Europe/Berlin",
        frozenset({0, 1, 2, 3, 4}),
        time(9),
        time(17),
    )


def test_a_calendar_with_a_bad_zone_or_no_days_names_the_fields():
    calendar = WorkingCalendar(name="x", time_zone="Mars/Olympus", weekdays=[], day_starts=time(9))
    with pytest.raises(ValidationError) as caught:
        calendar.clean()
    assert set(caught.value.message_dict) == {"time_zone", "weekdays"}
