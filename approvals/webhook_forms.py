"""The forms of the webhook pages. They only turn posted text into values; the rules
(https, allowed hosts, known event types) are workflows.webhooks.services', whose errors
are shown beside the fields they name."""

from __future__ import annotations

from django import forms

from approvals.forms import ServiceErrorsMixin
from workflows.models import WebhookEventType
from workflows.webhooks.services import DESCRIPTION_MAX, URL_MAX


class WebhookSubscriptionForm(ServiceErrorsMixin):
    """Where to POST, which events, and (when editing) whether it is switched on."""

    target_url = forms.CharField(
        max_length=URL_MAX,
        label="Endpoint URL",
        help_text="Where Baton POSTs each event (https://…).",
        error_messages={"required": "Say where to send the events (an https:// URL)."},
        # A text input (styled like the others) that phones still type as a URL.
        widget=forms.TextInput(
            attrs={
                "placeholder": "https://example.com/hooks/baton",
                "inputmode": "url",
                "autocomplete": "url",
            }
        ),
    )
    description = forms.CharField(max_length=DESCRIPTION_MAX, required=False, label="Description")
    event_types = forms.MultipleChoiceField(
        choices=WebhookEventType.choices,
        widget=forms.CheckboxSelectMultiple,
        label="Events",
        error_messages={"required": "Choose at least one event type."},
    )
    is_active = forms.BooleanField(required=False, initial=True, label="Active (send events)")
