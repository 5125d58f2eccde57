"""Working time: when an SLA measured in working hours runs, and when it ends.

A calendar is read once into plain values (`CalendarRule`) so that adding working time
is pure arithmetic: no queries, and testable with any clock. Every boundary is computed
as a wall-clock time in the calendar's zone and turned into an absolute instant before
any arithmetic, so a daylight-saving change never stretches or shrinks a working day.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings

from accounts.models import Holiday, TeamMembership, User, WorkingCalendar

# A calendar whose working days never come (every day a holiday) must not loop forever:
# no SLA is longer than about ten years (approvals.routing.MAX_DURATION).
SEARCH_DAYS = 366 * 12


class NoWorkingTime(ValueError):
    """The calendar has no working time left within SEARCH_DAYS of the start."""


@dataclass(frozen=True)
class CalendarRule:
    """A working calendar as plain values."""

    time_zone: str = "UTC"
    weekdays: frozenset[int] = frozenset({0, 1, 2, 3, 4})
    day_starts: time = time(9, 0)
    day_ends: time = time(17, 0)
    holidays: frozenset[date] = frozenset()

    @property
    def day_length(self) -> timedelta:
        start = datetime.combine(date(2000, 1, 3), self.day_starts)
        return datetime.combine(date(2000, 1, 3), self.day_ends) - start

    def is_working_day(self, day: date) -> bool:
        return day.weekday() in self.weekdays and day not in self.holidays

    def window(self, day: date) -> tuple[datetime, datetime]:
        """The working hours of `day` as absolute (UTC) instants."""
        zone = ZoneInfo(self.time_zone)
        start = datetime.combine(day, self.day_starts, tzinfo=zone).astimezone(UTC)
        end = datetime.combine(day, self.day_ends, tzinfo=zone).astimezone(UTC)
        return start, end


def working_time_add(rule: CalendarRule, *, start: datetime, duration: timedelta) -> datetime:
    """The instant `duration` of working time after `start` (aware), in UTC.

    Time outside the working hours, on days off and on holidays does not count: work
    handed over on Friday evening with 4 working hours is due Monday at 13:00 local time.
    Raises NoWorkingTime when the calendar offers none within SEARCH_DAYS.
    """
    remaining = duration
    cursor = start.astimezone(UTC)
    day = cursor.astimezone(ZoneInfo(rule.time_zone)).date()
    for _ in range(SEARCH_DAYS):
        if rule.is_working_day(day):
            opens, closes = rule.window(day)
            begin = max(opens, cursor)
            if begin < closes:
                available = closes - begin
                if remaining <= available:
                    return begin + remaining
                remaining -= available
        day += timedelta(days=1)
    raise NoWorkingTime(f"No working time within {SEARCH_DAYS} days of {start.isoformat()}.")


@dataclass(frozen=True)
class WorkingHours:
    """A due rule (workflows.models.DueRule): `duration` of working time in `rule`."""

    rule: CalendarRule
    duration: timedelta

    def due_from(self, start: datetime) -> datetime:
        return working_time_add(self.rule, start=start, duration=self.duration)

    def part_from(self, start: datetime, fraction: float) -> datetime:
        return working_time_add(self.rule, start=start, duration=self.duration * fraction)


def working_duration(rule: CalendarRule, sla: timedelta) -> timedelta:
    """An SLA read in working time: its whole days are working days of the calendar's
    length (2d on a 09:00-17:00 calendar is 16 working hours), the rest working hours."""
    return rule.day_length * sla.days + timedelta(seconds=sla.seconds, microseconds=sla.microseconds)


def calendar_rule(calendar: WorkingCalendar, holidays: Iterable[date] = ()) -> CalendarRule:
    return CalendarRule(
        time_zone=calendar.time_zone,
        weekdays=frozenset(int(d) for d in calendar.weekdays),
        day_starts=calendar.day_starts,
        day_ends=calendar.day_ends,
        holidays=frozenset(holidays),
    )


def default_rule() -> CalendarRule:
    """Without any calendar set up: Monday to Friday, 09:00-17:00, in the site's zone."""
    return CalendarRule(time_zone=settings.TIME_ZONE)


def calendar_for(user: User | None) -> CalendarRule:
    """The working calendar for work `user` holds: their team's own calendar (the first
    team by name that has one), else the organisation's default, else `default_rule()`.
    A group's work (`user` None) runs on the organisation's default. Two queries at most."""
    calendar = None
    if user is not None:
        membership = (
            TeamMembership.objects.filter(user=user, team__working_calendar__isnull=False)
            .select_related("team__working_calendar")
            .order_by("team__name")
            .first()
        )
        if membership is not None:
            calendar = membership.team.working_calendar
    if calendar is None:
        calendar = WorkingCalendar.objects.filter(team__isnull=True).order_by("pk").first()
    if calendar is None:
        return default_rule()
    days = Holiday.objects.filter(calendar=calendar).values_list("day", flat=True)
    return calendar_rule(calendar, days)
