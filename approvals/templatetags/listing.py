"""Tags for long lists (the inbox, the team view): the same output as Django's `{% url %}`,
`|date:'c'` and an included template, at a fraction of their cost per row.

A page of 50 items reversed about 60 URLs and formatted about 200 dates; at a million
requests that was a third of the page's server time (bench/inbox, cProfile).
"""

from __future__ import annotations

from collections.abc import Container
from datetime import datetime
from functools import lru_cache
from typing import Any

from django import template
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.timesince import timesince

register = template.Library()

# An id no row has, reversed once per URL name and cut out of the result: what stays is
# the URL's text before and after the id.
_MARK = 987654321987


@lru_cache(maxsize=64)
def _around_id(name: str, prefix: str, urlconf: str | None) -> tuple[str, str]:
    url = reverse(name, args=[_MARK], urlconf=urlconf)
    before, found, after = url.partition(str(_MARK))
    assert found, f"{name} does not take an id"
    return before, after


@register.simple_tag
def row_url(name: str, pk: int) -> str:
    """`{% url name pk %}` for a URL whose one argument is an integer id."""
    before, after = _around_id(name, get_script_prefix(), get_urlconf())
    return f"{before}{int(pk)}{after}"


@register.filter
def iso(value: datetime | None) -> str:
    """`|date:'c'`: the moment in the current time zone, ISO 8601."""
    if not value:
        return ""
    return (timezone.localtime(value) if timezone.is_aware(value) else value).isoformat()


@register.simple_tag
def due(due_at: datetime | None, overdue: bool = False, due_soon: bool = False) -> str:
    """A due date with its badge (overdue, due soon), or a dash: once per row of a list,
    so a tag rather than an included template (a fifth of the inbox's render)."""
    if not due_at:
        return format_html('<span class="empty">{}</span>', "—")
    moment = timezone.localtime(due_at) if timezone.is_aware(due_at) else due_at
    shown = date_format(moment, "j M Y H:i")
    if overdue:
        return format_html(
            '<time datetime="{}" class="due overdue" data-overdue="true">{}</time> '
            '<span class="badge overdue">overdue</span>',
            moment.isoformat(),
            shown,
        )
    if due_soon:
        return format_html(
            '<time datetime="{}" class="due">{}</time> <span class="badge soon">due soon</span>',
            moment.isoformat(),
            shown,
        )
    return format_html('<time datetime="{}" class="due">{}</time>', moment.isoformat(), shown)


_CHECKED = SafeString(" checked")


def _row_buttons(row: Any, user: Any, reference: str) -> SafeString:
    """Claim or release, then snooze or wake: what the holder can do from the row."""
    h = row.handoff
    buttons: list[SafeString] = []
    if row.claimable:
        buttons.append(
            format_html(
                '<button type="submit" formaction="{}" formnovalidate aria-label="Claim {}">Claim</button>',
                row_url("approvals:handoff_claim", h.pk),
                reference,
            )
        )
    elif h.candidate_group_id and h.assignee_id == user.pk:
        buttons.append(
            format_html(
                '<button type="submit" formaction="{}" formnovalidate class="secondary" '
                'aria-label="Release {}">Release</button>',
                row_url("approvals:handoff_unclaim", h.pk),
                reference,
            )
        )
    if h.assignee_id == user.pk:
        snooze = row_url("approvals:handoff_snooze", h.pk)
        if h.snoozed_until:
            buttons.append(
                format_html(
                    '<button type="submit" formaction="{}?preset=" name="wake" value="on" formnovalidate '
                    'class="secondary" aria-label="Wake {}">Wake</button>',
                    snooze,
                    reference,
                )
            )
        else:
            buttons.append(
                format_html(
                    '<button type="submit" formaction="{}?preset=tomorrow" formnovalidate class="secondary" '
                    'aria-label="Snooze {} until tomorrow" data-testid="snooze">Snooze</button>',
                    snooze,
                    reference,
                )
            )
    return format_html_join(" ", "{}", ((button,) for button in buttons))


@register.simple_tag
def inbox_row(row: Any, selected: Container[int], user: Any) -> SafeString:
    """One row of the inbox's table: the markup `_inbox_list.html` had in its loop, built
    here because Django's template engine took 12.5 of the page's 16 ms of rendering for
    50 rows (bench/inbox at a million requests). Every value goes through format_html."""
    h, r = row.handoff, row.request
    reference = r.reference
    chosen = bool(selected) and h.pk in selected
    css = "overdue" if row.overdue else "due-soon" if row.due_soon else ""
    if chosen:
        css += " failed"
    behalf = (
        format_html('<span class="badge for" data-testid="for">for {}</span>', row.on_behalf_of.display_name)
        if row.on_behalf_of
        else ""
    )
    return format_html(
        '<tr data-row data-request="{}" data-handoff="{}" tabindex="-1" class="{}">'
        '<td data-label="Select"><input type="checkbox" name="items" value="{}" id="item-{}"{} aria-label="Select {}"></td>'
        '<td data-label="Request"><a href="{}" data-open>{}: {}</a> {}</td>'
        '<td data-label="Type">{}</td>'
        '<td data-label="Requester">{}</td>'
        '<td data-label="Stage" data-testid="stage">{}</td>'
        '<td data-label="Held by" data-testid="holder">{}</td>'
        '<td data-label="Due" data-testid="due">{}</td>'
        '<td data-label="Waiting"><time datetime="{}">{}</time></td>'
        '<td data-label="">{}</td></tr>\n',
        r.pk,
        h.pk,
        css,
        h.pk,
        h.pk,
        _CHECKED if chosen else "",
        reference,
        row_url("approvals:request_detail", r.pk),
        reference,
        r.title,
        behalf,
        r.request_type,
        r.requester.display_name,
        row.stage or "—",
        h.holder_label(),
        due(h.due_at, row.overdue, row.due_soon),
        iso(h.opened_at),
        timesince(h.opened_at),
        _row_buttons(row, user, reference),
    )
