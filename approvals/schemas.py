"""Payload schemas: each request type describes its payload with a JSON Schema.

Validation answers in the words a person filling in the form understands, one message
per field, keyed `payload.<field>` (dotted for nested fields), so both the HTML form and
the API can put each message beside the field it is about.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any
from urllib.parse import unquote

from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import SchemaError, ValidationError

from approvals.routing.limits import PAYLOAD_BOUNDS, SCHEMA_BOUNDS, shape_problem

PAYLOAD_MAX_BYTES = PAYLOAD_BOUNDS.max_bytes
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


# Keywords whose value is one subschema, a list of them, or a mapping of names to them
# (JSON Schema 2020-12, and 'definitions' of older drafts).
_ONE = (
    "additionalProperties",
    "propertyNames",
    "items",
    "contains",
    "not",
    "if",
    "then",
    "else",
    "unevaluatedItems",
    "unevaluatedProperties",
    "contentSchema",
)
_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")
_NAMED = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
# Subschemas that apply to the same value as the schema holding them: a cycle through
# these alone (a $ref back to itself) would never reach a smaller value, and never end.
_SAME_VALUE_ONE = ("not", "if", "then", "else")
_SAME_VALUE_LIST = ("allOf", "anyOf", "oneOf")
_SAME_VALUE_NAMED = ("dependentSchemas",)
# What would make a schema reach outside itself, or resolve names at run time.
_REFUSED_KEYWORDS = ("$dynamicRef", "$dynamicAnchor", "$recursiveRef", "$recursiveAnchor", "$anchor")
# A repeated group holding a repetition, such as (a+)+ or (\w+\s?)*: on some texts Python's
# regular expressions take exponential time over it. Not every slow pattern, but the classic one.
_NESTED_REPETITION = re.compile(
    r"\((?:[^()\\]|\\.)*(?:[*+]|\{\d*,\d*\})(?:[^()\\]|\\.)*\)(?:[*+]|\{\d*,\d*\})"
)


def schema_problems(schema: Any) -> list[str]:
    """Why `schema` is not a usable payload schema (empty list: it is fine).

    Beyond JSON Schema's own rules: within SCHEMA_BOUNDS; self-contained (a $ref is a
    local '#/…' pointer to a part of this schema, and there is no cycle of references that
    never reaches a smaller value); and no pattern that repeats a repetition. Each of these
    would otherwise fail or hang validation later, when a requester submits.
    """
    if not isinstance(schema, dict):
        return ["the payload schema must be a JSON object"]
    too_big = shape_problem(schema, SCHEMA_BOUNDS)
    if too_big:
        return [too_big]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "the schema"
        return [f"{where}: {exc.message}"]
    if schema and schema.get("type", "object") != "object":
        return ["the payload schema must describe an object (type: object)"]
    return _reference_problems(schema) + _pattern_problems(schema)


def _subschemas(schema: Any, pointer: str = "#") -> Iterator[tuple[str, Any]]:
    """Every (JSON pointer, subschema) of `schema`, itself first."""
    yield pointer, schema
    if not isinstance(schema, dict):
        return
    for key in _ONE:
        if key in schema:
            yield from _subschemas(schema[key], f"{pointer}/{_escape(key)}")
    for key in _LIST:
        if isinstance(schema.get(key), list):
            for index, item in enumerate(schema[key]):
                yield from _subschemas(item, f"{pointer}/{key}/{index}")
    for key in _NAMED:
        if isinstance(schema.get(key), dict):
            for name, item in schema[key].items():
                yield from _subschemas(item, f"{pointer}/{_escape(key)}/{_escape(str(name))}")


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _pointer_target(root: Any, ref: str) -> tuple[str, Any] | None:
    """(the canonical pointer, the subschema) a local '#/…' reference names, or None."""
    if ref == "#":
        return "#", root
    if not ref.startswith("#/"):
        return None
    current = root
    for raw in ref[2:].split("/"):
        token = unquote(raw).replace("~1", "/").replace("~0", "~")
        if isinstance(current, dict) and token in current:
            current = current[token]
        elif isinstance(current, list) and token.isdigit() and int(token) < len(current):
            current = current[int(token)]
        else:
            return None
    if not isinstance(current, dict | bool):
        return None
    return ref, current


def _reference_problems(schema: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    same_value: dict[str, list[str]] = {}
    for pointer, sub in _subschemas(schema):
        if not isinstance(sub, dict):
            continue
        for keyword in _REFUSED_KEYWORDS:
            if keyword in sub:
                problems.append(f"{pointer}: '{keyword}' is not supported: name parts with '$ref: #/$defs/…'")
        if "$id" in sub and pointer != "#":
            problems.append(f"{pointer}: '$id' belongs at the top of the schema only")
        edges = same_value.setdefault(pointer, [])
        edges += [f"{pointer}/{key}" for key in _SAME_VALUE_ONE if key in sub]
        for key in _SAME_VALUE_LIST:
            if isinstance(sub.get(key), list):
                edges += [f"{pointer}/{key}/{i}" for i in range(len(sub[key]))]
        for key in _SAME_VALUE_NAMED:
            if isinstance(sub.get(key), dict):
                edges += [f"{pointer}/{key}/{_escape(str(name))}" for name in sub[key]]
        ref = sub.get("$ref")
        if ref is None:
            continue
        target = _pointer_target(schema, ref) if isinstance(ref, str) else None
        if target is None:
            problems.append(
                f"{pointer}: '$ref' {ref!r} must point at a part of this schema, such as '#/$defs/address'"
            )
            continue
        edges.append(_canonical(schema, target[0]))
    if problems:
        return problems
    cycle = _cycle(same_value)
    if cycle:
        return ["'$ref' goes round in a circle that never reaches a smaller value: " + " → ".join(cycle)]
    return []


def _canonical(schema: dict[str, Any], ref: str) -> str:
    """A reference as the pointer _subschemas gives the same part (escaping normalised)."""
    if ref == "#":
        return "#"
    tokens = [unquote(raw).replace("~1", "/").replace("~0", "~") for raw in ref[2:].split("/")]
    return "#/" + "/".join(_escape(t) for t in tokens)


def _cycle(edges: dict[str, list[str]]) -> list[str] | None:
    """One cycle of the graph, as the pointers along it, or None (iterative depth-first)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in edges:
        if state.get(start):
            continue
        path: list[str] = [start]
        iterators = [iter(edges.get(start, []))]
        state[start] = 1
        while iterators:
            step = next(iterators[-1], None)
            if step is None:
                state[path.pop()] = 2
                iterators.pop()
                continue
            if state.get(step) == 1:
                return [*path[path.index(step) :], step]
            if not state.get(step):
                state[step] = 1
                path.append(step)
                iterators.append(iter(edges.get(step, [])))
    return None


def _pattern_problems(schema: dict[str, Any]) -> list[str]:
    problems = []
    for pointer, sub in _subschemas(schema):
        if not isinstance(sub, dict):
            continue
        patterns = [sub["pattern"]] if isinstance(sub.get("pattern"), str) else []
        if isinstance(sub.get("patternProperties"), dict):
            patterns += [name for name in sub["patternProperties"] if isinstance(name, str)]
        for pattern in patterns:
            if _NESTED_REPETITION.search(pattern):
                problems.append(
                    f"{pointer}: the pattern {pattern!r} repeats a repetition (like (a+)+), which can take "
                    "exponential time on some texts; write it without a repeated group around a repetition"
                )
    return problems


OUTPUTS_PREFIX = "outputs"
# Keywords beside which a missing additionalProperties must stay open: they combine or
# extend the object's schema, and closing it would refuse what they allow.
_OPEN_BESIDE = (
    "additionalProperties",
    "unevaluatedProperties",
    "patternProperties",
    "allOf",
    "anyOf",
    "oneOf",
    "if",
    "$ref",
    "dependentSchemas",
)


def strict_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """`schema` with unknown fields refused wherever it lists an object's `properties` and
    says nothing of others: a payload field no schema names is a typo or a client sending
    what nobody will read, never something to keep silently. A schema that wants them
    says so (`additionalProperties: true`, or a schema for them)."""
    copied = dict(schema)
    properties = copied.get("properties")
    if isinstance(properties, dict):
        copied["properties"] = {
            name: strict_schema(sub) if isinstance(sub, dict) else sub for name, sub in properties.items()
        }
        if not any(keyword in copied for keyword in _OPEN_BESIDE):
            copied["additionalProperties"] = False
    if isinstance(copied.get("items"), dict):
        copied["items"] = strict_schema(copied["items"])
    return copied


def _decimal_places(value: Any) -> int:
    exponent = Decimal(str(value)).normalize().as_tuple().exponent
    return -exponent if isinstance(exponent, int) and exponent < 0 else 0


def _multiple_of(
    validator: Any, step: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[ValidationError]:
    """multipleOf in decimal, as people write the numbers: 19.99 is a multiple of 0.01
    (in binary floating point it is not, and jsonschema's own check refuses it)."""
    if not validator.is_type(instance, "number") or isinstance(instance, bool):
        return
    if isinstance(instance, float) and not math.isfinite(instance):
        return  # refused before validation, by the shape check (PAYLOAD_BOUNDS)
    if isinstance(step, bool) or not isinstance(step, int | float) or not math.isfinite(step) or step <= 0:
        return  # a checked schema has none of these (schema_problems)
    # Exact fractions of the numbers as written: no rounding, and no overflow for 1e308.
    if (Fraction(str(instance)) / Fraction(str(step))).denominator != 1:
        yield ValidationError(f"{instance} is not a multiple of {step}")


PayloadValidator = validators.extend(Draft202012Validator, {"multipleOf": _multiple_of})


def _field_key(path: list[Any], prefix: str = FIELD_PREFIX) -> str:
    return ".".join([prefix, *(str(p) for p in path)]) if path else prefix


def _bound(value: Any) -> str:
    """A schema's bound as people read it: 10000000 → '10,000,000'."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        text = f"{Decimal(str(value)):,f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def _words(error: ValidationError) -> str:
    value, validator = error.validator_value, error.validator
    if validator == "type":
        kinds = value if isinstance(value, list) else [value]
        return "Must be " + " or ".join(_TYPE_WORDS.get(str(k), str(k)) for k in kinds) + "."
    if validator == "enum":
        return "Choose one of: " + ", ".join(str(v) for v in value) + "."
    if validator == "minimum":
        return f"Must be at least {_bound(value)}."
    if validator == "exclusiveMinimum":
        return f"Must be more than {_bound(value)}."
    if validator == "maximum":
        return f"Must be at most {_bound(value)}."
    if validator == "exclusiveMaximum":
        return f"Must be less than {_bound(value)}."
    if validator == "minLength":
        return "This field is required." if value == 1 else f"At least {value} characters."
    if validator == "maxLength":
        return f"At most {value} characters."
    if validator == "format":
        return f"Must be {_FORMAT_WORDS.get(str(value), str(value))}."
    if validator == "pattern":
        return "Not in the expected form."
    if validator == "multipleOf":
        places = _decimal_places(value)
        if places and Decimal(1).scaleb(-places) == Decimal(str(value)):
            return "At most one decimal place." if places == 1 else f"At most {places} decimal places."
        return f"Must be a multiple of {value}."
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
    too_big = shape_problem(payload, PAYLOAD_BOUNDS)
    if too_big:
        return {prefix: [too_big[0].upper() + too_big[1:] + "."]}
    if len(json.dumps(payload, default=str)) > PAYLOAD_MAX_BYTES:
        return {prefix: [f"At most {PAYLOAD_MAX_BYTES // 1024} KB of data."]}
    if not schema:
        return {}
    found: dict[str, list[str]] = {}
    validator = PayloadValidator(strict_schema(schema), format_checker=FormatChecker())
    # Keys as text: a path may mix indexes and names, and a payload built in Python (not
    # parsed from JSON) may carry keys that are not strings.
    for error in sorted(validator.iter_errors(payload), key=lambda e: [str(p) for p in e.absolute_path]):
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
            for name in sorted(set(error.instance or {}) - allowed, key=str):
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
