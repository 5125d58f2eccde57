"""Payload schemas: each request type describes its payload with a JSON Schema.

Validation answers in the words a person filling in the form understands, one message
per field, keyed `payload.<field>` (dotted for nested fields), so both the HTML form and
the API can put each message beside the field it is about.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import SchemaError, ValidationError

PAYLOAD_MAX_BYTES = 64 * 1024
FIELD_PREFIX = "payload"
_FORMAT_WORDS = {
    "date": "a date (YYYY-MM-DD)",
    "date-time": "a date and time (YYYY-MM-DDTHH:MM)",
    "email": "an e-mail address",
    "uri": "a web address",
}
_TYPE_WORDS = {
    "number": "a number",
    "integer": "a whole number",
    "string": "text",
    "boolean": "true or false",
    "object": "a group of fields",
    "array": "a list",
    "null": "empty",
}


def schema_problems(schema: Any) -> list[str]:
    """Why `schema` is not a usable payload schema (empty list: it is fine)."""
    if not isinstance(schema, dict):
        return ["the payload schema must be a JSON object"]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "the schema"
        return [f"{where}: {exc.message}"]
    if schema and schema.get("type", "object") != "object":
        return ["the payload schema must describe an object (type: object)"]
    return []


OUTPUTS_PREFIX = "outputs"


def _field_key(path: list[Any], prefix: str = FIELD_PREFIX) -> str:
    return ".".join([prefix, *(str(p) for p in path)]) if path else prefix


def _words(error: ValidationError) -> str:
    value, validator = error.validator_value, error.validator
    if validator == "type":
        kinds = value if isinstance(value, list) else [value]
        return "Must be " + " or ".join(_TYPE_WORDS.get(str(k), str(k)) for k in kinds) + "."
    if validator == "enum":
        return "Choose one of: " + ", ".join(str(v) for v in value) + "."
    if validator == "minimum":
        return f"Must be at least {value}."
    if validator == "exclusiveMinimum":
        return f"Must be more than {value}."
    if validator == "maximum":
        return f"Must be at most {value}."
    if validator == "exclusiveMaximum":
        return f"Must be less than {value}."
    if validator == "minLength":
        return "This field is required." if value == 1 else f"At least {value} characters."
    if validator == "maxLength":
        return f"At most {value} characters."
    if validator == "format":
        return f"Must be {_FORMAT_WORDS.get(str(value), str(value))}."
    if validator == "pattern":
        return "Not in the expected form."
    return str(error.message)


def output_errors(*, schema: Mapping[str, Any], outputs: Any) -> dict[str, list[str]]:
    """Field errors of a task's `outputs` against its stage's schema, keyed 'outputs.<field>'."""
    return payload_errors(schema=schema, payload=outputs, prefix=OUTPUTS_PREFIX)


def payload_errors(
    *, schema: Mapping[str, Any], payload: Any, prefix: str = FIELD_PREFIX
) -> dict[str, list[str]]:
    """Field errors of `payload` against `schema`, keyed '<prefix>.<field>' ('payload.' by
    default); empty when valid."""
    if not isinstance(payload, dict):
        return {prefix: ["Must be a JSON object."]}
    if len(json.dumps(payload, default=str)) > PAYLOAD_MAX_BYTES:
        return {prefix: [f"At most {PAYLOAD_MAX_BYTES // 1024} KB of data."]}
    if not schema:
        return {}
    found: dict[str, list[str]] = {}
    validator = Draft202012Validator(schema, format_checker=FormatChecker())
    for error in sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path)):
        path = list(error.absolute_path)
        if error.validator == "required":
            # jsonschema reports one error per missing name, each carrying the whole list:
            # without the check a field would be "required" once per missing field.
            missing = [name for name in error.validator_value if name not in (error.instance or {})]
            for name in missing:
                messages = found.setdefault(_field_key([*path, name], prefix), [])
                if "This field is required." not in messages:
                    messages.append("This field is required.")
            continue
        if error.validator == "additionalProperties":
            allowed = set((error.schema.get("properties") or {}) if isinstance(error.schema, dict) else {})
            for name in sorted(set(error.instance or {}) - allowed):
                found.setdefault(_field_key([*path, name], prefix), []).append(
                    "This field is not part of this request type."
                )
            continue
        found.setdefault(_field_key(path, prefix), []).append(_words(error))
    return found


def schema_fields(schema: Mapping[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
    """The top-level fields of a payload schema in order: (name, sub-schema, required).

    PostgreSQL keeps JSON in jsonb, which does not keep the order of an object's keys, so
    the order of `properties` cannot be relied on. The order is: the names the schema's
    `x-order` list gives, then the required fields as `required` lists them (a list keeps
    its order), then the others by name — the same on every database.
    """
    properties = schema.get("properties") or {}
    required = [n for n in schema.get("required") or [] if isinstance(n, str)]
    explicit = [n for n in schema.get("x-order") or [] if isinstance(n, str)]
    order = list(dict.fromkeys([*explicit, *required, *sorted(properties)]))
    return [
        (name, properties[name], name in required)
        for name in order
        if name in properties and isinstance(properties[name], dict)
    ]


def field_label(schema: Mapping[str, Any], name: str) -> str:
    sub = (schema.get("properties") or {}).get(name) or {}
    title = sub.get("title") if isinstance(sub, dict) else None
    return str(title) if title else name.replace("_", " ").capitalize()
