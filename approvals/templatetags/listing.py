"""Tags for long lists (the inbox, the team view): the same output as Django's `{% url %}`,
`|date:'c'` and an included template, at a fraction of their cost per row.

A page of 50 items reversed about 60 URLs and formatted about 200 dates; at a million
requests that was a third of the page's server time (bench/inbox, cProfile).
"""

from __future__ import annotations

import html
from collections.abc import Container, Iterable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from functools import lru_cache
from typing import Any

from django import forms, template
from django.forms import BoundField
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils import timezone
from django.utils.dates import MONTHS_3
from django.utils.safestring import SafeString
from django.utils.timesince import TIME_STRINGS, timesince
from django.utils.translation import get_language, override

register = template.Library()


def _markup(text: str) -> SafeString:
    """Markup built by this module's tags, each value in it escaped by `_e` (as
    format_html marks its result safe after escaping its arguments)."""
    return SafeString(text)  # nosec B703: every value interpolated went through _e


def _e(value: Any) -> str:
    """Django's conditional_escape (what `{{ value }}` and format_html do), without the
    lazy-string wrapper around it, which cost more than the escaping: tens of values per
    row, thousands per page (bench/inbox, cProfile)."""
    as_html = getattr(value, "__html__", None)
    if as_html is not None:
        return str(as_html())
    return html.escape(str(value))


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
def row_url(name: str, pk: int, here: _Here | None = None) -> str:
    """`{% url name pk %}` for a URL whose one argument is an integer id."""
    here = here or _Here.now()
    before, after = _around_id(name, here.prefix, here.urlconf)
    return f"{before}{int(pk)}{after}"


@dataclass(frozen=True)
class _Here:
    """What every row of a list reads alike: the time zone, the language, the URL prefix
    and URL conf, the moment. Each is a context-local variable (asgiref's Local), read
    hundreds of times per page row by row: a tenth of the inbox page's CPU, profiled."""

    zone: tzinfo
    language: str | None
    prefix: str
    urlconf: str | None
    moment: datetime

    @classmethod
    def now(cls) -> _Here:
        return cls(
            zone=timezone.get_current_timezone(),
            language=get_language(),
            prefix=get_script_prefix(),
            urlconf=get_urlconf(),
            moment=timezone.now(),
        )

    def local(self, value: datetime) -> datetime:
        return value.astimezone(self.zone) if timezone.is_aware(value) else value


@register.filter
def iso(value: datetime | None) -> str:
    """`|date:'c'`: the moment in the current time zone, ISO 8601."""
    return _iso(value, _Here.now())


def _iso(value: datetime | None, here: _Here) -> str:
    return here.local(value).isoformat() if value else ""


def _shown(moment: datetime, language: str | None = None) -> str:
    """`date_format(moment, "j M Y H:i")`, without its format parser and the DateFormat
    object it makes per call (a third of a row's cost, profiled); the month's name is
    translated as Django's is (in `language`, the active one by default)."""
    month = _month(moment.month, language if language is not None else get_language())
    return f"{moment.day} {month} {moment.year:04d} {moment.hour:02d}:{moment.minute:02d}"


@lru_cache(maxsize=256)
def _month(number: int, language: str | None) -> str:
    with override(language):
        return str(MONTHS_3[number]).title()


@register.simple_tag
def due(
    due_at: datetime | None, overdue: bool = False, due_soon: bool = False, here: _Here | None = None
) -> SafeString:
    """A due date with its badge (overdue, due soon), or a dash: once per row of a list,
    so a tag rather than an included template (a fifth of the inbox's render)."""
    if not due_at:
        return _markup('<span class="empty">—</span>')
    here = here or _Here.now()
    moment = here.local(due_at)
    at, shown = _e(moment.isoformat()), _e(_shown(moment, here.language))
    if overdue:
        return _markup(
            f'<time datetime="{at}" class="due overdue" data-overdue="true">{shown}</time> '
            '<span class="badge overdue">overdue</span>'
        )
    if due_soon:
        return _markup(
            f'<time datetime="{at}" class="due">{shown}</time> <span class="badge soon">due soon</span>'
        )
    return _markup(f'<time datetime="{at}" class="due">{shown}</time>')


_CHECKED = SafeString(" checked")

# "3 hours", "1 day": each text made once per language and number. timesince formats a
# lazily translated plural for every unit it shows, a third of its cost, once per row
# and per member of a team (two hundred a page). Static text, not data: nothing stale.
_UNIT_TEXTS: dict[tuple[str | None, str, int], str] = {}


class _Unit(str):
    """A unit's name that formats as timesince's plural for it in one language (a str, as
    timesince's `time_strings` are typed)."""

    language: str | None

    def __mod__(self, values: Any) -> str:
        key = (self.language, str(self), values["num"])
        text = _UNIT_TEXTS.get(key)
        if text is None:
            with override(self.language):
                text = _UNIT_TEXTS[key] = str(TIME_STRINGS[str(self)] % values)
        return text


@lru_cache(maxsize=32)
def _units(language: str | None) -> dict[str, str]:
    units = {}
    for name in TIME_STRINGS:
        unit = units[name] = _Unit(name)
        unit.language = language
    return units  # type: ignore[return-value]


def ago(moment: datetime, now: datetime | None = None, language: str | None = None) -> str:
    """`timesince(moment, now)`, the same text (in `language`, the active one by
    default), its units' texts made once."""
    units = _units(language if language is not None else get_language())
    return str(timesince(moment, now, time_strings=units))


def _row_buttons(row: Any, user: Any, reference: str, here: _Here) -> SafeString:
    """Claim or release, then snooze or wake: what the holder can do from the row
    (`reference` escaped already)."""
    h = row.handoff
    buttons: list[str] = []
    if row.claimable:
        claim = _e(row_url("approvals:handoff_claim", h.pk, here))
        buttons.append(
            f'<button type="submit" formaction="{claim}" formnovalidate aria-label="Claim {reference}">Claim</button>'
        )
    elif h.candidate_group_id and h.assignee_id == user.pk:
        release = _e(row_url("approvals:handoff_unclaim", h.pk, here))
        buttons.append(
            f'<button type="submit" formaction="{release}" formnovalidate class="secondary" '
            f'aria-label="Release {reference}">Release</button>'
        )
    if h.assignee_id == user.pk:
        snooze = _e(row_url("approvals:handoff_snooze", h.pk, here))
        if h.snoozed_until:
            buttons.append(
                f'<button type="submit" formaction="{snooze}?preset=" name="wake" value="on" formnovalidate '
                f'class="secondary" aria-label="Wake {reference}">Wake</button>'
            )
        else:
            buttons.append(
                f'<button type="submit" formaction="{snooze}?preset=tomorrow" formnovalidate class="secondary" '
                f'aria-label="Snooze {reference} until tomorrow" data-testid="snooze">Snooze</button>'
            )
    return _markup(" ".join(buttons))


@register.simple_tag
def inbox_rows(rows: Iterable[Any], selected: Container[int], user: Any) -> SafeString:
    """The rows of the inbox's table: the markup `_inbox_list.html` had in its loop, built
    here because Django's template engine took 12.5 of the page's 16 ms of rendering for
    50 rows (bench/inbox at a million requests). Every value goes through `_e`
    (format_html's escaping, without its per-argument lazy-string checks: format_html
    was a third of the inbox page's CPU, profiled)."""
    here = _Here.now()
    return _markup("".join(_inbox_row(row, selected, user, here) for row in rows))


def _inbox_row(row: Any, selected: Container[int], user: Any, here: _Here) -> str:
    h, r = row.handoff, row.request
    reference = _e(r.reference)
    chosen = bool(selected) and h.pk in selected
    css = "overdue" if row.overdue else "due-soon" if row.due_soon else ""
    if chosen:
        css += " failed"
    behalf = (
        f'<span class="badge for" data-testid="for">for {_e(row.on_behalf_of.display_name)}</span>'
        if row.on_behalf_of
        else ""
    )
    hid, rid = int(h.pk), int(r.pk)
    return (
        f'<tr data-row data-request="{rid}" data-handoff="{hid}" tabindex="-1" class="{css}">'
        f'<td data-label="Select"><input type="checkbox" name="items" value="{hid}" id="item-{hid}"'
        f'{_CHECKED if chosen else ""} aria-label="Select {reference}"></td>'
        f'<td data-label="Request"><a href="{_e(row_url("approvals:request_detail", rid, here))}" data-open>'
        f"{reference}: {_e(r.title)}</a> {behalf}</td>"
        f'<td data-label="Type">{_e(r.request_type)}</td>'
        f'<td data-label="Requester">{_e(r.requester.display_name)}</td>'
        f'<td data-label="Stage" data-testid="stage">{_e(row.stage or "—")}</td>'
        f'<td data-label="Held by" data-testid="holder">{_e(h.holder_label())}</td>'
        f'<td data-label="Due" data-testid="due">{due(h.due_at, row.overdue, row.due_soon, here)}</td>'
        f'<td data-label="Waiting"><time datetime="{_e(_iso(h.opened_at, here))}">'
        f"{_e(ago(h.opened_at, here.moment, here.language))}</time></td>"
        f'<td data-label="">{_row_buttons(row, user, reference, here)}</td></tr>\n'
    )


def _since(moment: datetime | None, here: _Here) -> str:
    """`<time>` of how long ago `moment` was, as `|iso` and `|timesince` showed it."""
    shown = ago(moment, here.moment, here.language) if moment else ""
    return f'<time datetime="{_e(_iso(moment, here))}">{_e(shown)} ago</time>'


@register.simple_tag
def workload_rows(workloads: Iterable[Any], kind: str) -> SafeString:
    """The members' or groups' lines of the team view (`kind`: "member" or "group"): built
    here rather than in the template's loop, which rendered a hundred and fifty of them
    at two thirds of the team page's CPU (bench/inbox, cProfile)."""
    here = _Here.now()
    return _markup("\n      ".join(workload_row(w, kind, here) for w in workloads))


def workload_row(workload: Any, kind: str, here: _Here) -> str:
    w = workload
    inactive = ' <span class="help">(inactive)</span>' if kind == "member" and not w.active else ""
    css = ' class="overdue"' if w.overdue else ""
    return (
        f'<tr data-{kind}="{_e(w.key)}"{css}>\n'
        f'        <td><a href="?{_e(w.query)}">{_e(w.label)}</a>{inactive}</td>\n'
        f'        <td class="count" data-label="Open" data-testid="open">{int(w.open)}</td>\n'
        f'        <td class="count" data-label="Overdue" data-testid="overdue">{int(w.overdue)}</td>\n'
        f'        <td data-label="Waiting since">{_since(w.oldest, here) if w.oldest else "—"}</td>\n'
        "      </tr>"
    )


@register.simple_tag
def team_rows(rows: Iterable[Any], selected: Container[int]) -> SafeString:
    """The items of the team view, each with its box to choose it for a reassignment: the
    markup team.html had in its loop (see `workload_rows`)."""
    here = _Here.now()
    return _markup("\n        ".join(_team_row(row, selected, here) for row in rows))


def _team_row(row: Any, selected: Container[int], here: _Here) -> str:
    h, r = row.handoff, row.request
    hid, rid = int(h.pk), int(r.pk)
    reference = _e(r.reference)
    css = ' class="overdue"' if row.overdue else ""
    return (
        f'<tr data-request="{rid}" data-handoff="{hid}"{css}>\n'
        f'          <td><input type="checkbox" name="handoffs" value="{hid}" id="pick-{hid}"'
        f"{_CHECKED if h.pk in selected else ''}>\n"
        f'            <label for="pick-{hid}" class="visually-hidden">Choose {reference}</label></td>\n'
        f'          <td><a href="{_e(row_url("approvals:request_detail", rid, here))}">{reference}: {_e(r.title)}</a></td>\n'
        f'          <td data-label="Type">{_e(r.request_type)}</td>\n'
        f'          <td data-label="Requester">{_e(r.requester.display_name)}</td>\n'
        f'          <td data-label="Stage" data-testid="stage">{_e(row.stage or "—")}</td>\n'
        f'          <td data-label="Held by" data-testid="holder">{_e(h.holder_label())}</td>\n'
        f'          <td data-label="Due" data-testid="due">{due(h.due_at, row.overdue, here=here)}</td>\n'
        f'          <td data-label="Waiting since">{_since(h.opened_at, here)}</td>\n'
        "        </tr>"
    )


def _attrs(attrs: dict[str, Any]) -> str:
    """Django's widgets/attrs.html: ` name="value"`, a bare ` name` for True, False left out."""
    return "".join(
        f" {_e(name)}" if value is True else f' {_e(name)}="{_e(value)}"'
        for name, value in attrs.items()
        if value is not False
    )


def _widget(field: BoundField) -> str:
    """`{{ field }}` for a text input or a single select, from the widget's own context
    (its attributes, value, options and which is selected, as Django works them out),
    without rendering Django's widget templates: an option each was an included template
    and two more (the inbox's six filters took 4 ms a page, timed on bench/inbox's data).
    Any other widget renders as Django renders it."""
    widget = field.field.widget
    plain_input = (
        isinstance(widget, forms.TextInput) and type(widget).template_name == forms.TextInput.template_name
    )
    single_select = type(widget) is forms.Select
    if not (plain_input or single_select):
        return str(field)
    attrs = field.build_widget_attrs({}, widget)
    if field.auto_id and "id" not in widget.attrs:
        attrs.setdefault("id", field.auto_id)
    context = widget.get_context(field.html_name, field.value(), attrs)["widget"]
    if plain_input:
        value = "" if context["value"] is None else f' value="{_e(context["value"])}"'
        return f'<input type="{_e(context["type"])}" name="{_e(context["name"])}"{value}{_attrs(context["attrs"])}>'
    options = []
    for group_name, choices, _ in context["optgroups"]:
        inner = "".join(
            f'<option value="{_e(c["value"])}"{_attrs(c["attrs"])}>{_e(c["label"])}</option>' for c in choices
        )
        options.append(f'<optgroup label="{_e(group_name)}">{inner}</optgroup>' if group_name else inner)
    return f'<select name="{_e(context["name"])}"{_attrs(context["attrs"])}>{"".join(options)}</select>'


@register.simple_tag
def filter_field(field: BoundField) -> SafeString:
    """A list's filter: its label, its control and its errors, as _filter_field.html was."""
    errors = "".join(f'<p class="error" role="alert">{_e(e)}</p>' for e in field.errors)
    return _markup(
        f'<div class="field{" invalid" if field.errors else ""}"><label for="{_e(field.id_for_label)}">'
        f"{_e(field.label)}</label>{_widget(field)}{errors}</div>"
    )
