"""The one filter of the audit log, its exports and its bundles: a GET form and the query it means."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib.contenttypes.models import ContentType
from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast
from django.utils import timezone

from accounts.models import User
from approvals.actions import DECISIONS, Action
from approvals.models import ApprovalRequest, AuditExport, RequestType
from workflows.models import AuditEntry

# Kinds of action an auditor asks for; each a condition on entries (they may overlap: a
# decision is also a state change; a policy move by the system is also a system action).
KINDS: dict[str, tuple[str, Q]] = {
    "transitions": ("State changes (any)", Q(kind=AuditEntry.Kind.TRANSITION)),
    "decisions": ("Decisions", Q(action__in=[a.value for a in DECISIONS])),
    "claims": ("Claims and releases", Q(action__in=[Action.CLAIM.value, Action.UNCLAIM.value])),
    "reassignments": ("Reassignments", Q(action=Action.REASSIGN.value)),
    "policy_moves": ("Policy moves", Q(action=Action.MOVE_POLICY.value)),
    "system": ("System actions", Q(actor__isnull=True)),
    # (the condition is on the content type: added where the filter is applied)
    "exports": ("Exports of the trail", Q()),
}
ACTION_CHOICES = [
    ("", "Any action"),
    ("Kinds", [(key, label) for key, (label, _) in KINDS.items()]),
    ("Actions", [(a.value, a.label) for a in Action]),
]
_REF = re.compile(r"^\s*(?:(REQ|EXP)-?)?\s*(\d+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class AuditFilter:
    """What the log, an export or a bundle covers. Empty fields filter nothing."""

    actor: User | None = None
    on_behalf_of: User | None = None
    since: date | None = None
    until: date | None = None
    request_type: RequestType | None = None
    action: str = ""
    ref: str = ""  # REQ-8, EXP-3 (normalised)
    text: str = ""

    def query(self) -> dict[str, str]:
        """The GET parameters that give this filter again (for links and exports)."""
        values = {
            "actor": self.actor.username if self.actor else "",
            "on_behalf_of": self.on_behalf_of.username if self.on_behalf_of else "",
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "type": self.request_type.slug if self.request_type else "",
            "action": self.action,
            "ref": self.ref,
            "text": self.text,
        }
        return {k: v for k, v in values.items() if v}

    @property
    def is_empty(self) -> bool:
        return not self.query()

    @property
    def ref_target(self) -> tuple[type[ApprovalRequest] | type[AuditExport], str] | None:
        match = _REF.match(self.ref)
        if not match:
            return None
        prefix = (match.group(1) or "REQ").upper()
        return (AuditExport if prefix == "EXP" else ApprovalRequest), match.group(2)

    def entries(self) -> QuerySet[AuditEntry]:
        """Every entry this filter matches (unordered). Each condition has an index made
        for it with created_at (audit_by_actor, audit_by_behalf, audit_by_action,
        audit_by_system, audit_by_time; a reference uses the chain's own index)."""
        query = AuditEntry.objects.all()
        if self.actor is not None:
            query = query.filter(actor=self.actor)
        if self.on_behalf_of is not None:
            query = query.filter(on_behalf_of=self.on_behalf_of)
        if self.since is not None:
            query = query.filter(created_at__gte=_start_of(self.since))
        if self.until is not None:
            query = query.filter(created_at__lt=_start_of(self.until + timedelta(days=1)))
        if self.action in KINDS:
            query = query.filter(KINDS[self.action][1])
            if self.action == "exports":
                query = query.filter(content_type=ContentType.objects.get_for_model(AuditExport))
        elif self.action:
            query = query.filter(action=self.action)
        target = self.ref_target
        if target is not None:
            model, object_id = target
            query = query.filter(content_type=ContentType.objects.get_for_model(model), object_id=object_id)
        if self.request_type is not None:
            ids = (
                ApprovalRequest.objects.filter(request_type=self.request_type)
                .annotate(object_key=Cast("id", CharField()))
                .values("object_key")
            )
            query = query.filter(
                content_type=ContentType.objects.get_for_model(ApprovalRequest), object_id__in=ids
            )
        if self.text:
            query = query.filter(comment__icontains=self.text)
        return query

    def describe(self) -> dict[str, Any]:
        """The filter as a completeness record states it."""
        return {"query": self.query(), "order": "created_at, id (oldest first)"}


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False, label="Actor", help_text="user name")
    on_behalf_of = forms.CharField(required=False, label="On behalf of", help_text="user name")
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    type = forms.ModelChoiceField(
        queryset=RequestType.objects.order_by("name"),
        to_field_name="slug",
        required=False,
        label="Request type",
        empty_label="Any type",
    )
    action = forms.ChoiceField(choices=ACTION_CHOICES, required=False, label="Action")
    ref = forms.CharField(required=False, label="Reference", help_text="REQ-8", max_length=30)
    text = forms.CharField(required=False, label="Comment contains", max_length=200)
    before = forms.RegexField(regex=r"^\d+\.\d+$", required=False, widget=forms.HiddenInput)

    def _person(self, name: str) -> User | None:
        username = self.cleaned_data.get(name, "").strip()
        if not username:
            return None
        user = User.objects.filter(username=username).first()
        if user is None:
            raise forms.ValidationError(f"Nobody is called '{username}'.")
        return user

    def clean_actor(self) -> User | None:
        return self._person("actor")

    def clean_on_behalf_of(self) -> User | None:
        return self._person("on_behalf_of")

    def clean_ref(self) -> str:
        ref = self.cleaned_data.get("ref", "").strip()
        if not ref:
            return ""
        match = _REF.match(ref)
        if not match:
            raise forms.ValidationError("A reference looks like REQ-8 (or EXP-3 for an export).")
        return f"{(match.group(1) or 'REQ').upper()}-{match.group(2)}"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "The end of the range is before its start.")
        return cleaned

    def audit_filter(self) -> AuditFilter:
        data = self.cleaned_data
        return AuditFilter(
            actor=data.get("actor"),
            on_behalf_of=data.get("on_behalf_of"),
            since=data.get("since"),
            until=data.get("until"),
            request_type=data.get("type"),
            action=data.get("action") or "",
            ref=data.get("ref") or "",
            text=(data.get("text") or "").strip(),
        )
