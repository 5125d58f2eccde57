"""The forms of the managers' pages: a delegation (out of office), the team view's
filters, and a reassignment of one or many items. As in approvals.forms, these only turn
posted text into typed values (a user name into a person, a date into a moment) and carry
the services' errors back beside the fields they name; the rules are the services'.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib.auth.models import Group
from django.utils import timezone

from accounts.models import User
from approvals.delegations import REASON_MAX
from approvals.forms import ServiceErrorsMixin
from approvals.models import RequestType
from approvals.reassignment import REASON_MAX as REASSIGN_REASON_MAX
from approvals.selectors.inbox import DUES, SORTS, InboxFilter
from approvals.selectors.team import TeamFilter

BATCH_MAX = 200


def _person(username: str, *, field: str) -> User | None:
    """The person named `username`, or None for an empty field; a ValidationError for a
    name nobody has."""
    if not username:
        return None
    found = User.objects.filter(username=username).first()
    if found is None:
        raise forms.ValidationError(f"Nobody has the user name '{username}'.", code=f"unknown_{field}")
    return found


def day_start(day: date) -> datetime:
    """The first moment of `day` in the site's time zone."""
    return timezone.make_aware(datetime.combine(day, time.min))


class DelegationForm(ServiceErrorsMixin):
    """Who stands in for whom, from which day to which (both included), on which request types."""

    ALL, SOME = "all", "some"

    delegator = forms.CharField(max_length=150, required=False, label="Whose work")
    delegate = forms.CharField(
        max_length=150,
        label="Delegate (user name)",
        help_text="The person who acts for them meanwhile.",
        error_messages={"required": "Say who stands in (their user name)."},
    )
    starts_at = forms.DateField(
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"required": "Say from when."},
    )
    ends_at = forms.DateField(
        label="Until (the last day)",
        widget=forms.DateInput(attrs={"type": "date"}),
        error_messages={"required": "Say until when: a delegation always ends."},
    )
    coverage = forms.ChoiceField(
        label="Request types",
        choices=[(ALL, "All request types"), (SOME, "Only these:")],
        initial=ALL,
        widget=forms.RadioSelect,
    )
    scope = forms.MultipleChoiceField(
        label="Which request types", required=False, widget=forms.CheckboxSelectMultiple
    )
    reason = forms.CharField(max_length=REASON_MAX, required=False, label="Reason (shown to them)")

    def __init__(self, *args: Any, me: User, delegators: list[User], **kwargs: Any) -> None:
        """`delegators`: whom `me` may choose (themselves first); a superuser types a user name."""
        super().__init__(*args, **kwargs)
        self.me = me
        scope = self.fields["scope"]
        assert isinstance(scope, forms.MultipleChoiceField)
        scope.choices = [
            (t.slug, t.name) for t in RequestType.objects.filter(is_active=True).order_by("name")
        ]
        if me.is_superuser:
            self.fields["delegator"].help_text = "A user name; empty: your own."
        elif len(delegators) > 1:
            choices = [
                (p.username, f"{p.display_name} (me)" if p.pk == me.pk else p.display_name)
                for p in delegators
            ]
            self.fields["delegator"].widget = forms.Select(choices=choices)
        else:
            self.fields["delegator"].widget = forms.HiddenInput()
        today = timezone.localdate()
        self.initial.setdefault("delegator", me.username)
        self.initial.setdefault("starts_at", today)
        self.initial.setdefault("ends_at", today + timedelta(days=7))

    def clean_delegator(self) -> User:
        return _person(self.cleaned_data.get("delegator", ""), field="delegator") or self.me

    def clean_delegate(self) -> User | None:
        return _person(self.cleaned_data.get("delegate", "").strip(), field="delegate")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("coverage") == self.SOME and not cleaned.get("scope") and "scope" not in self.errors:
            self.add_error("scope", "Choose at least one request type, or all of them.")
        if cleaned.get("coverage") == self.ALL:
            cleaned["scope"] = []
        return cleaned

    @property
    def moments(self) -> tuple[datetime, datetime]:
        """The start (the first day's first moment) and end (the moment after the last day)."""
        start: date = self.cleaned_data["starts_at"]
        last: date = self.cleaned_data["ends_at"]
        return day_start(start), day_start(last + timedelta(days=1))


class TeamFilterForm(forms.Form):
    """The team view's filters and keyset position, read from the query string."""

    request_type = forms.ChoiceField(
        required=False,
        label="Type",
        error_messages={"invalid_choice": "Unknown request type '%(value)s': choose one from the list."},
    )
    stage = forms.CharField(max_length=100, required=False)
    requester = forms.CharField(max_length=150, required=False)
    due = forms.ChoiceField(
        required=False,
        choices=[("", "Any"), *((d, d) for d in DUES)],
        error_messages={"invalid_choice": "Unknown due filter '%(value)s': choose one from the list."},
    )
    q = forms.CharField(max_length=200, required=False, label="Search")
    sort = forms.ChoiceField(
        required=False,
        choices=[("oldest", "Oldest first"), ("due", "Soonest due"), ("newest", "Newest first")],
        error_messages={"invalid_choice": "Unknown order '%(value)s': choose one from the list."},
    )
    member = forms.CharField(max_length=150, required=False)
    group = forms.CharField(max_length=150, required=False)
    cursor = forms.CharField(max_length=100, required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        types = self.fields["request_type"]
        assert isinstance(types, forms.ChoiceField)
        types.choices = [("", "Any"), *RequestType.objects.order_by("name").values_list("slug", "name")]

    def team_filter(self) -> TeamFilter:
        data = self.cleaned_data
        sort = data.get("sort") or "oldest"
        assert sort in SORTS
        return TeamFilter(
            items=InboxFilter(
                request_type=data.get("request_type") or "",
                stage=data.get("stage") or "",
                requester=data.get("requester") or "",
                due=data.get("due") or "",
                q=data.get("q") or "",
                sort=sort,
            ),
            member=data.get("member") or "",
            group=data.get("group") or "",
        )


class HandoffIdsField(forms.Field):
    """The items ticked in a list: handoff ids, in the order given, each once."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[int]:
        raw = value if isinstance(value, list | tuple) else ([value] if value else [])
        ids: list[int] = []
        for item in raw:
            text = str(item).strip()
            if not text.isdigit():
                raise forms.ValidationError(
                    "The items chosen are not valid: reload the page.", code="invalid"
                )
            if int(text) not in ids:
                ids.append(int(text))
        return ids

    def validate(self, value: list[int]) -> None:
        if not value:
            raise forms.ValidationError("Choose at least one item to reassign.", code="required")
        if len(value) > BATCH_MAX:
            raise forms.ValidationError(
                f"At most {BATCH_MAX} items at a time (got {len(value)}).", code="max"
            )


class ReassignForm(ServiceErrorsMixin):
    """Hand one or many items to a person or a group, saying why."""

    handoffs = HandoffIdsField()
    to_user = forms.CharField(max_length=150, required=False, label="To a person (user name)")
    to_group = forms.CharField(max_length=150, required=False, label="or to a group")
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        max_length=REASSIGN_REASON_MAX,
        label="Why",
        error_messages={"required": "Say why the items are being reassigned."},
    )

    def clean_to_user(self) -> User | None:
        return _person(self.cleaned_data.get("to_user", "").strip(), field="to_user")

    def clean_to_group(self) -> Group | None:
        name = self.cleaned_data.get("to_group", "").strip()
        if not name:
            return None
        found = Group.objects.filter(name=name).first()
        if found is None:
            raise forms.ValidationError(f"There is no group named '{name}'.", code="unknown_group")
        return found
