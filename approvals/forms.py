"""HTML forms of the approvals pages. Validation of business rules stays in the services;
these only turn posted text into typed values and carry the services' errors back."""

from __future__ import annotations

from typing import Any

from django import forms

from approvals.models import TITLE_MAX, RequestType, State
from approvals.services import ACTIONS, COMMENT_MAX
from workflows.errors import WorkflowError


class ServiceErrorsMixin(forms.Form):
    def add_service_error(self, error: WorkflowError) -> None:
        """Show a domain error on the fields it names, or on the form as a whole."""
        placed = False
        for name, messages in error.field_errors.items():
            target = name if name in self.fields else None
            for message in messages:
                self.add_error(target, message if target else f"{name}: {message}")
            placed = True
        if not placed:
            self.add_error(None, error.detail)


class RequestCreateForm(ServiceErrorsMixin):
    request_type = forms.ModelChoiceField(
        queryset=RequestType.objects.none(),
        empty_label=None,
        error_messages={
            "required": "Choose a request type.",
            "invalid_choice": "Unknown request type, or one you may not submit: choose one from the list.",
        },
    )
    title = forms.CharField(
        max_length=TITLE_MAX,
        error_messages={
            "required": "A title is required.",
            "max_length": "At most %(limit_value)d characters (got %(show_value)d).",
        },
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), required=False)
    save_as_draft = forms.BooleanField(required=False, label="Save as draft (do not submit yet)")

    def __init__(self, *args: Any, request_types: list[RequestType], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["request_type"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = RequestType.objects.filter(pk__in=[t.pk for t in request_types])


class RequestActionForm(ServiceErrorsMixin):
    action = forms.ChoiceField(choices=[(a, a) for a in ACTIONS])
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=COMMENT_MAX
    )
    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    idempotency_key = forms.CharField(max_length=200, required=False, widget=forms.HiddenInput)
    title = forms.CharField(max_length=TITLE_MAX, required=False)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)


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
