"""The snooze form: a follow-up time typed in (local time), or a preset."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone

PRESETS = {"tomorrow": "Tomorrow morning", "next_week": "Next Monday morning"}
MORNING = time(9, 0)


def preset_moment(preset: str, *, now: datetime) -> datetime:
    """09:00 local time tomorrow, or on the next Monday."""
    today = timezone.localtime(now).date()
    days = 1 if preset == "tomorrow" else 7 - today.weekday()
    return timezone.make_aware(datetime.combine(today + timedelta(days=days), MORNING))


class SnoozeForm(forms.Form):
    """`until` (a local date and time) or `preset`; `wake` ends a snooze now."""

    until = forms.DateTimeField(
        label="Follow up on",
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    preset = forms.ChoiceField(choices=[("", "—"), *PRESETS.items()], required=False)
    wake = forms.BooleanField(required=False)

    def moment(self, *, now: datetime) -> datetime | None:
        """The follow-up time asked for; None to wake. Precondition: the form is valid."""
        if self.cleaned_data["wake"]:
            return None
        if self.cleaned_data["preset"]:
            return preset_moment(self.cleaned_data["preset"], now=now)
        until: datetime | None = self.cleaned_data["until"]
        return until

    def clean(self) -> dict[str, object]:
        data = super().clean() or {}
        if not (data.get("wake") or data.get("preset") or data.get("until")) and not self.errors:
            self.add_error("until", "Choose when to follow up.")
        return data
