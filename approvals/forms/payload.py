"""The request forms: a request type's payload fields, creating, acting, tasks and drafts.

HTML forms of the approvals pages. Validation of business rules stays in the services;
these only turn posted text into typed values and carry the services' errors back.

A request type's payload fields are built from its JSON Schema: one input per top-level
property, named `payload.<field>` so that the services' errors (keyed the same way) land
beside the input they are about. The inputs collect text; `payload_convert` turns each
into the schema's type (a number field's "12.5" into 12.5) and says plainly when it
cannot. Whether the values are *acceptable* (required, ranges, lengths, formats) is the
schema's say, checked by approvals.schemas, the same check the service runs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django import forms

from accounts.models import User
from approvals.actions import OFFERED, OWN_FORM_ACTIONS, TASK_ACTIONS, Action
from approvals.models import TITLE_MAX
from approvals.schemas import FIELD_PREFIX, OUTPUTS_PREFIX, field_label, payload_errors, schema_fields
from approvals.services import COMMENT_MAX
from workflows.errors import WorkflowError

TEXTAREA_FROM = 200  # a string allowed more characters than this gets a text area
NUMBER_TEXT_MAX = 40  # longer "numbers" are refused before parsing (and never reach JSON)
# Posted with the resubmit form's payload inputs: their absence means "payload unchanged"
# (an unchecked checkbox posts nothing, so the inputs themselves cannot say it).
PAYLOAD_MARKER = "payload_fields"


# --- the payload fields of a schema -----------------------------------------------------


@dataclass(frozen=True)
class PayloadField:
    """One top-level field of a payload (or a task's outputs) schema, as the form shows
    and converts it; its input is named '<prefix>.<name>', as the services key its errors."""

    name: str
    label: str
    kind: str  # text | textarea | number | integer | boolean | enum | date | json
    required: bool
    schema: Mapping[str, Any]
    prefix: str = FIELD_PREFIX

    @property
    def form_name(self) -> str:
        return f"{self.prefix}.{self.name}"

    @property
    def choices(self) -> list[tuple[str, str]]:
        return [(choice_key(v), str(v)) for v in self.schema.get("enum") or []]


def _schema_type(sub: Mapping[str, Any]) -> str | None:
    kind = sub.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    return kind if isinstance(kind, str) else None


def field_kind(sub: Mapping[str, Any]) -> str:
    """Which input a property of the schema gets."""
    if isinstance(sub.get("enum"), list) and sub["enum"]:
        return "enum"
    kind = _schema_type(sub)
    if kind in {"boolean", "integer", "number"}:
        return kind
    if kind in {"string", None}:
        if sub.get("format") == "date":
            return "date"
        max_length = sub.get("maxLength")
        if isinstance(max_length, int) and max_length > TEXTAREA_FROM:
            return "textarea"
        return "text"
    return "json"  # objects, arrays: typed as JSON, parsed here


def payload_fields(schema: Mapping[str, Any], *, prefix: str = FIELD_PREFIX) -> list[PayloadField]:
    return [
        PayloadField(
            name=name,
            label=field_label(schema, name),
            kind=field_kind(sub),
            required=required,
            schema=sub,
            prefix=prefix,
        )
        for name, sub, required in schema_fields(schema)
    ]


def choice_key(value: Any) -> str:
    """The option value of an enum member: strings as they are, others as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


def _number(text: str, *, integer: bool) -> int | float:
    """Parse a number as typed; raise ValueError with the message to show."""
    message = "Must be a whole number." if integer else "Must be a number."
    if len(text) > NUMBER_TEXT_MAX:
        raise ValueError(message)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValueError(message) from None
    if not number.is_finite() or not math.isfinite(float(number)):
        raise ValueError(message)
    if number == number.to_integral_value() and (integer or not any(c in text for c in ".eE")):
        return int(number)
    if integer:
        raise ValueError(message)
    return float(number)


def payload_convert(field: PayloadField, raw: Any) -> Any:
    """The typed value of one posted input; None means "left empty" (the key is left out).

    Raises ValueError with a message for the person when the text cannot be that type.
    """
    if field.kind == "boolean":
        return bool(raw)
    text = raw.strip() if isinstance(raw, str) else ""
    if text == "":
        return None
    if field.kind in {"number", "integer"}:
        return _number(text, integer=field.kind == "integer")
    if field.kind == "enum":
        for value in field.schema["enum"]:
            if choice_key(value) == text:
                return value
        raise ValueError("Choose one of: " + ", ".join(str(v) for v in field.schema["enum"]) + ".")
    if field.kind == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"Must be valid JSON ({exc.msg} at line {exc.lineno}).") from None
        except RecursionError:
            raise ValueError("Must be valid JSON (nested too deeply).") from None
    return text


def payload_initial(field: PayloadField, value: Any) -> Any:
    """What the input shows for a stored value (prefilling a resubmission)."""
    if value is None:
        return None
    if field.kind == "boolean":
        return bool(value)
    if field.kind == "enum":
        return choice_key(value)
    if field.kind == "json":
        return json.dumps(value, indent=2, ensure_ascii=False)
    return str(value) if not isinstance(value, str) else value


def _input(field: PayloadField) -> forms.Field:
    """The Django field collecting one payload input's raw text (converted in the form)."""
    sub = field.schema
    attrs: dict[str, Any] = {}
    if field.required and field.kind != "boolean":
        # Marked for people and assistive technology; the form is `novalidate`, so the
        # schema's own check (on the server) says what is missing, in its words.
        attrs["required"] = True
    help_text = str(sub.get("description") or "")
    common: dict[str, Any] = {"label": field.label, "required": False, "help_text": help_text}
    if field.kind == "boolean":
        return forms.BooleanField(widget=forms.CheckboxInput(attrs=attrs), **common)
    if field.kind in {"number", "integer"}:
        attrs["step"] = "1" if field.kind == "integer" else "any"
        for bound, attr in (("minimum", "min"), ("maximum", "max")):
            if isinstance(sub.get(bound), int | float) and not isinstance(sub.get(bound), bool):
                attrs[attr] = str(sub[bound])
        return forms.CharField(widget=forms.NumberInput(attrs=attrs), **common)
    if field.kind == "enum":
        empty = "Choose…" if field.required else "—"
        return forms.CharField(
            widget=forms.Select(attrs=attrs, choices=[("", empty), *field.choices]), **common
        )
    if field.kind == "date":
        attrs["type"] = "date"
        return forms.CharField(widget=forms.DateInput(attrs=attrs), **common)
    if isinstance(sub.get("maxLength"), int):
        attrs["maxlength"] = str(sub["maxLength"])
    if field.kind == "textarea":
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 5, **attrs}), strip=False, **common)
    if field.kind == "json":
        attrs.pop("maxlength", None)
        common["help_text"] = (help_text + " " if help_text else "") + "Written as JSON."
        return forms.CharField(widget=forms.Textarea(attrs={"rows": 4, **attrs}), strip=False, **common)
    return forms.CharField(widget=forms.TextInput(attrs=attrs), strip=False, **common)


# --- forms ----------------------------------------------------------------------------


class ServiceErrorsMixin(forms.Form):
    def add_service_error(self, error: WorkflowError) -> None:
        """Show a domain error on the fields it names, or on the form as a whole.

        A nested payload field ('payload.address.city') is shown on its top-level input.
        """
        placed = False
        for name, messages in error.field_errors.items():
            target = self._field_for(name)
            for message in messages:
                if target is not None:
                    self.add_error(target, message)
                elif name in {"request_type", FIELD_PREFIX}:
                    self.add_error(None, message)
                else:
                    self.add_error(None, f"{name}: {message}")
            placed = True
        if not placed:
            self.add_error(None, error.detail)

    def _field_for(self, name: str) -> str | None:
        if name in self.fields:
            return name
        prefix, _, rest = name.partition(".")
        top = f"{prefix}.{rest.split('.', 1)[0]}"
        return top if rest and top in self.fields else None


class PayloadFormMixin(ServiceErrorsMixin):
    """Adds the inputs of a payload schema and converts what is posted in them."""

    payload_schema: Mapping[str, Any]
    payload_specs: list[PayloadField]
    payload_prefix: str = FIELD_PREFIX

    def add_payload_fields(
        self,
        schema: Mapping[str, Any],
        *,
        values: Mapping[str, Any] | None = None,
        prefix: str = FIELD_PREFIX,
    ) -> None:
        self.payload_schema = schema
        self.payload_prefix = prefix
        self.payload_specs = payload_fields(schema, prefix=prefix)
        for spec in self.payload_specs:
            self.fields[spec.form_name] = _input(spec)
            if values is not None and spec.name in values:
                self.initial[spec.form_name] = payload_initial(spec, values[spec.name])

    @property
    def payload_bound_fields(self) -> list[forms.BoundField]:
        return [self[spec.form_name] for spec in getattr(self, "payload_specs", [])]

    def payload_clean(self) -> dict[str, Any]:
        """The payload typed as the schema says; each unconvertible input gets its error.

        When anything on the form is wrong, the schema's other complaints are added too
        (on inputs without an error yet), so one round trip shows every problem.
        """
        payload: dict[str, Any] = {}
        for spec in getattr(self, "payload_specs", []):
            if spec.form_name in self.errors:
                continue
            try:
                value = payload_convert(spec, self.cleaned_data.get(spec.form_name))
            except ValueError as exc:
                self.add_error(spec.form_name, str(exc))
                continue
            if value is not None:
                payload[spec.name] = value
        if self.errors:
            problems = payload_errors(schema=self.payload_schema, payload=payload, prefix=self.payload_prefix)
            for key, messages in problems.items():
                target = self._field_for(key)
                if target is not None and target not in self.errors:
                    for message in messages:
                        self.add_error(target, message)
        self.cleaned_payload = payload
        return payload


class RequestCreateForm(PayloadFormMixin):
    """A new request of one type: title, the type's payload fields, description, draft."""

    title = forms.CharField(
        max_length=TITLE_MAX,
        error_messages={
            "required": "A title is required.",
            "max_length": "At most %(limit_value)d characters (got %(show_value)d).",
        },
    )
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), required=False)
    save_as_draft = forms.BooleanField(required=False, label="Save as draft (do not submit yet)")

    def __init__(
        self,
        *args: Any,
        payload_schema: Mapping[str, Any],
        payload: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """`payload`: what the payload inputs start with (a draft being edited)."""
        super().__init__(*args, **kwargs)
        self.add_payload_fields(payload_schema, values=payload)
        # Title first, then what the type asks for, then the free text and the draft box.
        self.order_fields(["title", *(s.form_name for s in self.payload_specs), "description"])

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        self.payload_clean()
        return cleaned


class RequestActionForm(PayloadFormMixin):
    """One lifecycle action from the request page; a resubmission may carry a new payload."""

    # A task is done or handed back through TaskForm, which carries its outputs.
    action = forms.ChoiceField(choices=[(a.value, a.label) for a in OFFERED if a not in OWN_FORM_ACTIONS])
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=COMMENT_MAX
    )
    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    idempotency_key = forms.CharField(max_length=200, required=False, widget=forms.HiddenInput)
    # Sent by the confirmation step that irreversible actions pass through first.
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)
    title = forms.CharField(max_length=TITLE_MAX, required=False)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)
    # Whom the action is taken for under a delegation (a user name); the service checks it.
    on_behalf_of = forms.CharField(max_length=150, required=False, widget=forms.HiddenInput)

    def __init__(
        self,
        *args: Any,
        payload_schema: Mapping[str, Any] | None = None,
        payload: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """`payload_schema`: add the payload inputs (for a resubmission), prefilled from `payload`."""
        super().__init__(*args, **kwargs)
        if payload_schema is not None:
            self.add_payload_fields(payload_schema, values=payload or {})

    @property
    def carries_payload(self) -> bool:
        """Whether this post resubmits with the payload inputs (else the payload is unchanged)."""
        return (
            self.is_bound
            and self.data.get("action") == Action.RESUBMIT
            and PAYLOAD_MARKER in self.data
            and bool(getattr(self, "payload_specs", None))
        )

    def clean_on_behalf_of(self) -> User | None:
        name = self.cleaned_data.get("on_behalf_of", "")
        found = User.objects.filter(username=name).first() if name else None
        if name and found is None:
            raise forms.ValidationError("Nobody has this user name.")
        return found

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if self.carries_payload:
            self.payload_clean()
        return cleaned


class TaskForm(PayloadFormMixin):
    """A task done (its outputs, as its stage's schema describes them, and a note for the
    next holder) or handed back (the note says why)."""

    action = forms.ChoiceField(choices=[(a.value, a.label) for a in TASK_ACTIONS])
    stage = forms.CharField(max_length=50, widget=forms.HiddenInput)
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), required=False, max_length=COMMENT_MAX
    )
    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
    idempotency_key = forms.CharField(max_length=200, required=False, widget=forms.HiddenInput)
    confirmed = forms.BooleanField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, outputs_schema: Mapping[str, Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_payload_fields(outputs_schema, prefix=OUTPUTS_PREFIX)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("action") == Action.COMPLETE:
            self.payload_clean()  # outputs matter only when the task is done
        else:
            self.cleaned_payload = {}
        return cleaned


class DraftForm(RequestCreateForm):
    """A draft's title, payload and description, edited; saved as they are or submitted."""

    version = forms.IntegerField(min_value=1, widget=forms.HiddenInput)
