"""The admin's forms: a payload schema checked as JSON Schema, a policy typed as YAML, a simulation."""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.text import capfirst

from accounts.models import User
from approvals.admin.display import MONOSPACE, document_yaml
from approvals.models import PolicyVersion, RequestType
from approvals.publishing import TYPE_KEYS
from approvals.routing import PolicyError, policy_parse
from approvals.routing.limits import (
    POLICY_BOUNDS,
    SCHEMA_BOUNDS,
    DocumentTextError,
    document_text_load,
    json_text_problem,
)
from approvals.schemas import schema_problems

NEW_POLICY = """\
options:
  one_decision_per_person: true
  carry_over_approvals: false
stages:
  - name: review
    approvers: {groups: [reviewers]}
    rule: any
    sla: 2d
"""


class SchemaField(forms.JSONField):
    """A payload schema as indented JSON (easier to edit than Django's one-line rendering)."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, dict | list):
            return json.dumps(value, indent=2, ensure_ascii=False)
        return super().prepare_value(value)

    def to_python(self, value: Any) -> Any:
        # Within bounds before json.loads, which recurses (a deep enough text would crash it).
        if isinstance(value, str):
            problem = json_text_problem(value, SCHEMA_BOUNDS)
            if problem:
                raise ValidationError(f"Not a usable payload schema: {problem}", code="invalid")
        try:
            return super().to_python(value)
        except ValueError:  # json refuses numbers of more than 4,300 digits with a bare ValueError
            raise ValidationError(self.error_messages["invalid"], code="invalid") from None


class RequestTypeForm(forms.ModelForm):
    class Meta:
        model = RequestType
        fields = ["name", "slug", "description", "is_active", "payload_schema"]
        field_classes = {"payload_schema": SchemaField}
        widgets = {"payload_schema": forms.Textarea(attrs={"rows": 16, **MONOSPACE})}

    def clean_payload_schema(self) -> dict[str, Any]:
        schema = self.cleaned_data.get("payload_schema")
        schema = {} if schema is None else schema
        problems = schema_problems(schema)
        if problems:
            raise ValidationError([ValidationError(p, code="schema") for p in problems])
        return schema


class PolicyDocumentField(forms.Field):
    """A policy document typed as YAML (JSON is YAML too), cleaned into the document mapping.

    Structural problems (what policy_parse finds) are form errors, one per line; whether the
    version may be published (people, groups, schema) is checked on its page and on publishing.
    """

    widget = forms.Textarea(attrs={"rows": 24, **MONOSPACE})

    def __init__(self, *, encoder: Any = None, decoder: Any = None, **kwargs: Any) -> None:
        # The model's JSONField offers its encoder and decoder; YAML needs neither.
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        return document_yaml(value) if isinstance(value, dict) else value

    def to_python(self, value: Any) -> Any:
        if isinstance(value, dict) or value in self.empty_values:
            return value or None
        try:
            loaded = document_text_load(str(value), bounds=POLICY_BOUNDS)
        except DocumentTextError as exc:
            raise ValidationError(capfirst(str(exc)), code="yaml") from None
        if not isinstance(loaded, dict):
            raise ValidationError(
                "A policy is a mapping with 'stages' (and optionally 'options').", code="shape"
            )
        return loaded

    def validate(self, value: Any) -> None:
        super().validate(value)
        try:
            policy_parse(value)
        except PolicyError as exc:
            raise ValidationError([ValidationError(p, code="policy") for p in exc.problems]) from None


class PolicyVersionForm(forms.ModelForm):
    class Meta:
        model = PolicyVersion
        fields = ["request_type", "document"]
        field_classes = {"document": PolicyDocumentField}
        help_texts = {
            "document": "YAML: options and an ordered list of stages. A whole policy file may be pasted: "
            "its request_type part is ignored here (edit the schema on the request type's page)."
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if (
            self.instance.pk
            and PolicyVersion.objects.filter(
                pk=self.instance.pk, status=PolicyVersion.Status.PUBLISHED
            ).exists()
        ):
            raise ValidationError("This version was published meanwhile: it can no longer change.")
        document = cleaned.get("document")
        request_type = cleaned.get("request_type") or getattr(self.instance, "request_type", None)
        if isinstance(document, dict) and document.keys() & {"request_type", "name", "description"}:
            raw = document.get("request_type")
            slug = raw if isinstance(raw, str) else raw.get("slug") if isinstance(raw, dict) else None
            if isinstance(raw, dict) and set(raw) - TYPE_KEYS:
                self.add_error(
                    "document", "request_type: a mapping of slug, name, description, payload_schema"
                )
            elif slug and request_type is not None and slug != request_type.slug:
                self.add_error(
                    "document", f"request_type: this document is for '{slug}', not '{request_type.slug}'"
                )
            cleaned["document"] = {
                k: v for k, v in document.items() if k not in {"request_type", "name", "description"}
            }
        return cleaned


class PersonChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return f"{obj.username} ({obj.display_name})"


class SimulationForm(forms.Form):
    requester = PersonChoiceField(
        queryset=User.objects.filter(is_active=True).order_by("username"), help_text="Who would submit it."
    )
    payload = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10, **MONOSPACE}),
        initial="{}",
        help_text='The request\'s payload as a JSON object, e.g. {"amount": 1200}.',
    )

    def clean_payload(self) -> dict[str, Any]:
        try:
            payload = json.loads(self.cleaned_data["payload"])
        except ValueError as exc:
            raise ValidationError(f"Not valid JSON: {exc}", code="json") from None
        if not isinstance(payload, dict):
            raise ValidationError('The payload must be a JSON object, e.g. {"amount": 1200}.', code="shape")
        return payload
