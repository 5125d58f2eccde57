"""The list tags (approvals/templatetags/listing.py) build rows in Python for speed: they
must say what Django's filters and escaping said."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from django.http import QueryDict
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.html import escape
from django.utils.timesince import timesince

from approvals.forms import InboxFilterForm
from approvals.selectors.inbox import InboxFilter
from approvals.selectors.team import TeamFilter, _links
from approvals.templatetags.listing import _e, _shown, ago, due, filter_field, workload_rows


@pytest.mark.parametrize(
    "moment",
    [datetime(2026, 1, 5, 7, 3), datetime(2026, 12, 31, 23, 59), datetime(999, 5, 1, 0, 0)],
)
@pytest.mark.parametrize("language", ["en", "de"])
def test_a_due_date_reads_as_djangos_date_format(moment: datetime, language: str) -> None:
    # given a moment and a language  /  when it is shown  /  then as date_format shows it
    with translation.override(language):
        assert _shown(moment) == date_format(moment, "j M Y H:i")


def test_a_due_date_is_shown_in_the_current_time_zone_with_its_badge() -> None:
    # given an aware moment, overdue
    moment = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    # when the due tag shows it
    with timezone.override("Europe/Paris"):
        shown = due(moment, True)
    # then in Paris time, with the overdue badge; and a dash when there is no due date
    assert '<time datetime="2026-03-01T13:30:00+01:00" class="due overdue" data-overdue="true">' in shown
    assert '1 Mar 2026 13:30</time> <span class="badge overdue">overdue</span>' in shown
    assert due(None) == '<span class="empty">—</span>'


def test_values_are_escaped_as_django_escapes_them() -> None:
    # given markup, quotes and a value already safe  /  then escaped as {{ value }} does
    assert _e("<b>A & 'B'\"</b>") == "&lt;b&gt;A &amp; &#x27;B&#x27;&quot;&lt;/b&gt;"
    assert _e(SimpleNamespace(__html__=lambda: "<i>safe</i>")) == "<i>safe</i>"


def test_a_workload_row_escapes_its_name_and_marks_an_inactive_member() -> None:
    # given an inactive member whose name holds markup, with overdue work
    w = SimpleNamespace(
        key="a&b", label="<Ann>", open=3, overdue=1, oldest=None, active=False, query="member=a%26b"
    )
    # when the row is built
    row = str(workload_rows([w], "member"))
    # then escaped, marked overdue and inactive, with a dash for "waiting since"
    assert row.startswith('<tr data-member="a&amp;b" class="overdue">')
    assert '<a href="?member=a%26b">&lt;Ann&gt;</a> <span class="help">(inactive)</span>' in row
    assert 'data-testid="open">3<' in row
    assert 'data-testid="overdue">1<' in row
    assert '<td data-label="Waiting since">—</td>' in row


@pytest.mark.parametrize(
    ("items", "member", "group"),
    [
        (InboxFilter(sort="oldest"), "ann", ""),
        (InboxFilter(sort="due", q="a&b", stage="review"), "", "ops team"),
        (InboxFilter(sort="newest", due="overdue"), "bob", ""),
    ],
)
def test_a_team_link_is_the_filters_query_for_that_member_or_group(
    items: InboxFilter, member: str, group: str
) -> None:
    # given the team view's filters  /  when a member's or group's link is made
    filters = TeamFilter(items=items, member="someone", group="")
    link = _links(filters)(member=member, group=group)
    # then it is the query string TeamFilter makes for them
    assert link == filters.query(member=member, group=group)


@pytest.mark.parametrize("language", ["en", "de", "fr"])
def test_how_long_ago_reads_as_djangos_timesince(language: str) -> None:
    # given moments from a minute to years before now, and one after it
    now = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
    minutes = [
        0,
        1,
        2,
        59,
        60,
        61,
        125,
        1439,
        1440,
        2881,
        10080,
        20000,
        44000,
        60000,
        525600,
        1051200,
        2000000,
    ]
    moments = [now - timedelta(minutes=m) for m in minutes] + [now + timedelta(hours=1)]
    # when each is shown in the language  /  then as timesince shows it
    with translation.override(language):
        for moment in moments:
            assert ago(moment, now) == timesince(moment, now)


def _tags(markup: str) -> str:
    """Markup without the whitespace between tags (Django's widget templates add some)."""
    return re.sub(r">\s+<", "><", markup.strip())


@pytest.mark.parametrize(
    "query",
    [
        "",
        "request_type=expense&due=overdue&sort=oldest&group=fin%22ance&stage=%3Cb%3E&q=caf%C3%A9",
        "request_type=nope&due=bogus&requester=" + "x" * 200,
    ],
)
@pytest.mark.django_db
def test_a_filter_field_is_the_markup_djangos_own_widgets_make(query: str) -> None:
    # given the inbox's filter form read from a query string (good, odd, and refused values)
    form = InboxFilterForm(
        QueryDict(query), types=[("expense", 'Expense <"claims">'), ("purchase", "Purchase order")]
    )
    form.is_valid()
    for name in ("q", "request_type", "due", "sort", "group", "stage", "requester"):
        field = form[name]
        # when the tag shows it
        shown = filter_field(field)
        # then as Django shows its label, control (value, selection, aria-invalid) and errors
        errors = "".join(f'<p class="error" role="alert">{escape(e)}</p>' for e in field.errors)
        invalid = " invalid" if field.errors else ""
        expected = f'<div class="field{invalid}">{field.label_tag(label_suffix="")}{field}{errors}</div>'
        assert _tags(shown) == _tags(expected), name


def test_a_lists_dates_read_in_the_language_it_was_rendered_in() -> None:
    # given a moment, and a list rendered in German while another language is active
    # (a list reads the language once, not per row)
    now = datetime(2026, 3, 31, 12, 0, tzinfo=UTC)
    moment = now - timedelta(days=40)
    with translation.override("de"):
        german_ago, german_date = timesince(moment, now), date_format(moment, "j M Y H:i")
    # when shown in German under English  /  then in German; and English by default
    with translation.override("en"):
        assert ago(moment, now, "de") == german_ago
        assert _shown(moment, "de") == german_date
        assert ago(moment, now) == timesince(moment, now)
