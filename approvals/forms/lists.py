"""Forms of the thread and the lists: comments with files, filters, saved views, bulk actions."""

from __future__ import annotations

from typing import Any

from django import forms

from approvals.actions import BULK_ACTIONS
from approvals.forms.payload import ServiceErrorsMixin
from approvals.models import SAVED_VIEW_NAME_MAX, State
from approvals.services import BULK_MAX, COMMENT_MAX


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Several files from one input (Django's documented recipe)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("widget", MultipleFileInput())
        super().__init__(*args, **kwargs)

    def clean(self, data: Any, initial: Any = None) -> list[Any]:
        one = super().clean
        if isinstance(data, list | tuple):
            return [one(d, initial) for d in data]
        return [one(data, initial)] if data else []


class CommentForm(ServiceErrorsMixin):
    """A post on the request's thread: words, files, or both (checked by the service)."""

    body = forms.CharField(
        label="Comment",
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        max_length=COMMENT_MAX,
        strip=True,
    )
    # Not `files`: a form keeps its uploads under that name.
    attachments = MultipleFileField(label="Files", required=False)

    def _field_for(self, name: str) -> str | None:
        return "attachments" if name == "files" else super()._field_for(name)


class RequestFilterForm(forms.Form):
    """The filters and keyset position of the 'All requests' list, read from the query string."""

    state = forms.ChoiceField(
        choices=[("", "Any state"), *State.choices],
        required=False,
        error_messages={"invalid_choice": "Unknown state '%(value)s': choose one from the list."},
    )
    before = forms.IntegerField(
        min_value=1,
        required=False,
        widget=forms.HiddenInput,
        error_messages={"invalid": "The page position must be a request number."},
    )


FILTER_NAMES = ("view", "request_type", "group", "stage", "requester", "due", "q", "sort")


class InboxFilterForm(forms.Form):
    """The inbox's filters, read from the query string; a bad one is named, never ignored."""

    view = forms.ChoiceField(
        choices=[
            ("all", "Everything"),
            ("mine", "Assigned to me"),
            ("queue", "My groups' queues"),
            ("delegated", "For people I stand in for"),
            ("snoozed", "Snoozed"),
        ],
        required=False,
    )
    q = forms.CharField(label="Search", required=False, max_length=100)
    request_type = forms.ChoiceField(label="Type", required=False)
    group = forms.CharField(label="Group", required=False, max_length=150)
    stage = forms.CharField(label="Stage", required=False, max_length=50)
    requester = forms.CharField(label="Requester", required=False, max_length=150)
    due = forms.ChoiceField(
        label="Due",
        choices=[
            ("", "Any time"),
            ("overdue", "Overdue"),
            ("soon", "Due within a day"),
            ("none", "No due date"),
        ],
        required=False,
    )
    sort = forms.ChoiceField(
        label="Sort",
        choices=[
            ("due", "Soonest due first"),
            ("oldest", "Waiting longest first"),
            ("newest", "Newest first"),
        ],
        required=False,
    )
    after = forms.CharField(required=False, max_length=100, widget=forms.HiddenInput)

    def __init__(self, *args: Any, types: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices_named(self, types)

    def filter_values(self) -> dict[str, str]:
        """The filters as approvals.selectors.InboxFilter takes them."""
        data = self.cleaned_data
        values = {name: str(data[name] or "").strip() for name in FILTER_NAMES}
        return {**values, "view": values["view"] or "all", "sort": values["sort"] or "due"}


class SavedViewForm(forms.Form):
    """A name for the inbox's filters as they are now."""

    name = forms.CharField(
        label="Name this view",
        max_length=SAVED_VIEW_NAME_MAX,
        error_messages={"required": "Give the view a name."},
    )
    query = forms.CharField(required=False, max_length=500, widget=forms.HiddenInput)


class BulkActionForm(forms.Form):
    """The same action on several inbox items (their handoffs), with one comment."""

    action = forms.ChoiceField(
        choices=[(a.value, a.label) for a in BULK_ACTIONS],
        error_messages={
            "required": "Choose what to do.",
            "invalid_choice": "'%(value)s' cannot be done in bulk.",
        },
    )
    items = forms.TypedMultipleChoiceField(
        coerce=int,
        error_messages={"required": "Select at least one item."},
    )
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}), required=False, max_length=COMMENT_MAX
    )
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)
    next = forms.CharField(required=False, max_length=1000, widget=forms.HiddenInput)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        posted = self.data.getlist("items") if hasattr(self.data, "getlist") else self.data.get("items", [])
        # Any number is a choice here: whether the item exists and may be acted on is the
        # service's answer, per item.
        items = self.fields["items"]
        assert isinstance(items, forms.TypedMultipleChoiceField)
        items.choices = [(v, v) for v in posted if str(v).isdigit()]
        items.error_messages["invalid_choice"] = "'%(value)s' is not an item number."

    def clean_items(self) -> list[int]:
        items: list[int] = self.cleaned_data["items"]
        if len(items) > BULK_MAX:
            raise forms.ValidationError(f"At most {BULK_MAX} items at a time (got {len(items)}).")
        return list(dict.fromkeys(items))


class MyRequestsFilterForm(forms.Form):
    """The filters of "My requests", read from the query string."""

    q = forms.CharField(label="Search", required=False, max_length=100)
    state = forms.ChoiceField(label="State", choices=[("", "Any state"), *State.choices], required=False)
    request_type = forms.ChoiceField(label="Type", required=False)
    before = forms.IntegerField(min_value=1, required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, types: list[tuple[str, str]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _choices_named(self, types)


def _choices_named(form: forms.Form, types: list[tuple[str, str]]) -> None:
    """The request types to choose from, and an unknown choice named in its error."""
    type_field = form.fields["request_type"]
    assert isinstance(type_field, forms.ChoiceField)
    type_field.choices = [("", "Any type"), *types]
    for name, field in form.fields.items():
        if isinstance(field, forms.ChoiceField):
            field.error_messages["invalid_choice"] = f"Unknown {name.replace('_', ' ')} '%(value)s'."
