"""Conditions on payload values: evaluation, explanation, and whether one can ever be true."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Mapping
from typing import Any, TypeGuard

from approvals.routing.model import (
    MAX_CONDITION_TERMS,
    NUMERIC_OPERATORS,
    AllOf,
    AnyOf,
    Condition,
    Leaf,
    value_text,
)

# --- conditions --------------------------------------------------------------------------

_MISSING = object()


def payload_value(payload: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path, or _MISSING."""
    current: Any = payload
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current


def is_number(value: Any) -> TypeGuard[int | float]:
    if isinstance(value, bool):
        return False
    # Whole numbers are always finite (and math.isfinite cannot take one beyond a float).
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def _leaf_holds(leaf: Leaf, payload: Mapping[str, Any]) -> bool:
    actual = payload_value(payload, leaf.field)
    if leaf.op == "exists":
        present = actual is not _MISSING and actual is not None
        return present == bool(leaf.value)
    if actual is _MISSING or actual is None:
        # A missing field meets no comparison, except "is not equal / not in".
        return leaf.op in {"ne", "not_in"}
    expected = leaf.value
    if leaf.op in NUMERIC_OPERATORS:
        if not (is_number(actual) and is_number(expected)):
            return False
        return {
            "gt": actual > expected,
            "gte": actual >= expected,
            "lt": actual < expected,
            "lte": actual <= expected,
        }[leaf.op]
    if leaf.op == "eq":
        # JSON equality: true is not 1, and 5 equals 5.0.
        return _json_type(actual) == _json_type(expected) and actual == expected
    if leaf.op == "ne":
        return not _leaf_holds(Leaf(leaf.field, "eq", expected), payload)
    if leaf.op == "in":
        return any(_leaf_holds(Leaf(leaf.field, "eq", v), payload) for v in expected)
    if leaf.op == "not_in":
        return not _leaf_holds(Leaf(leaf.field, "in", expected), payload)
    if leaf.op == "contains":
        if isinstance(actual, str) and isinstance(expected, str):
            return expected.casefold() in actual.casefold()
        if isinstance(actual, list):
            # JSON equality, as for eq: a list of true does not contain 1.
            return any(_json_type(item) == _json_type(expected) and item == expected for item in actual)
        return False
    raise ValueError(f"unknown operator {leaf.op!r}")


def condition_holds(condition: Condition | None, payload: Mapping[str, Any]) -> bool:
    """Whether `condition` is true for `payload` (no condition: always true)."""
    if condition is None:
        return True
    if isinstance(condition, AllOf):
        return all(condition_holds(c, payload) for c in condition.items)
    if isinstance(condition, AnyOf):
        return any(condition_holds(c, payload) for c in condition.items)
    return _leaf_holds(condition, payload)


def condition_explain(condition: Condition, payload: Mapping[str, Any]) -> str:
    """Why `condition` is false for `payload`, in one line (precondition: it is false)."""
    if isinstance(condition, AllOf):
        failing = [c for c in condition.items if not condition_holds(c, payload)]
        return "; ".join(condition_explain(c, payload) for c in failing[:1])
    if isinstance(condition, AnyOf):
        return "none of: " + condition.describe()
    actual = payload_value(payload, condition.field)
    if actual is _MISSING or actual is None:
        shown = "not given"
        return f"{condition.field} is {shown}, so {condition.describe()} is false"
    return f"{condition.field} is {value_text(actual)}, so {condition.describe()} is false"


def schema_field(schema: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    """The sub-schema of a dotted path through 'properties', or None when the schema lacks it."""
    current: Any = schema
    for part in path.split("."):
        props = current.get("properties") if isinstance(current, Mapping) else None
        if not isinstance(props, Mapping) or part not in props:
            return None
        current = props[part]
    return current if isinstance(current, Mapping) else None


def types_of(sub: Mapping[str, Any]) -> set[str]:
    declared = sub.get("type")
    if isinstance(declared, str):
        types = {declared}
    elif isinstance(declared, list):
        types = {t for t in declared if isinstance(t, str)}
    elif "enum" in sub and isinstance(sub["enum"], list):
        types = {_json_type(v) for v in sub["enum"]}
    else:
        types = set()
    if "integer" in types:
        types.add("number")
    return types


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if is_number(value):
        return "number"
    if isinstance(value, str):
        return "string"
    if value is None:
        return "null"
    if isinstance(value, list | tuple):
        return "array"
    return "object"


def condition_leaves(condition: Condition) -> Iterator[Leaf]:
    if isinstance(condition, Leaf):
        yield condition
    else:
        for child in condition.items:
            yield from condition_leaves(child)


def leaf_type_problem(leaf: Leaf, schema: Mapping[str, Any]) -> str | None:
    sub = schema_field(schema, leaf.field)
    if sub is None:
        return f"condition on '{leaf.field}': the payload schema has no such field"
    types = types_of(sub)
    if not types or leaf.op == "exists":
        return None
    shown = " or ".join(sorted(types - {"integer"}) or types)
    if leaf.op in NUMERIC_OPERATORS:
        if "number" not in types:
            return f"condition '{leaf.describe()}': '{leaf.field}' is {shown}, so {leaf.op} cannot compare it"
        if not is_number(leaf.value):
            return f"condition '{leaf.describe()}': '{leaf.field}' is a number, the value must be a number"
        return None
    if leaf.op == "contains":
        if "string" in types:
            if not isinstance(leaf.value, str):
                return f"condition '{leaf.describe()}': '{leaf.field}' is text, the value must be text"
            return None
        if "array" not in types:
            return f"condition '{leaf.describe()}': contains needs a text or list field, '{leaf.field}' is {shown}"
        return None
    values = leaf.value if leaf.op in {"in", "not_in"} else (leaf.value,)
    for value in values:
        if _json_type(value) not in types:
            return (
                f"condition '{leaf.describe()}': '{leaf.field}' is {shown}, "
                f"but {value_text(value)} is {_json_type(value)}"
            )
    return None


def _dnf(condition: Condition) -> Iterator[tuple[Leaf, ...]]:
    """The condition as an 'or' of 'and'-terms of leaves."""
    if isinstance(condition, Leaf):
        yield (condition,)
    elif isinstance(condition, AnyOf):
        for child in condition.items:
            yield from _dnf(child)
    else:
        for combo in itertools.product(*(list(_dnf(c)) for c in condition.items)):
            yield tuple(leaf for term in combo for leaf in term)


def _term_satisfiable(term: tuple[Leaf, ...], schema: Mapping[str, Any]) -> bool:
    """Whether some payload valid for the schema can meet every leaf of `term`.

    Exact for comparisons with constants on one field at a time (numeric ranges, equality,
    membership and enums); anything it cannot decide counts as satisfiable.
    """
    by_field: dict[str, list[Leaf]] = {}
    for leaf in term:
        by_field.setdefault(leaf.field, []).append(leaf)
    for name, leaves in by_field.items():
        sub = schema_field(schema, name) or {}
        enum = sub.get("enum") if isinstance(sub.get("enum"), list) else None
        low: float = -math.inf
        high: float = math.inf
        low_open = high_open = False
        minimum, maximum = sub.get("minimum"), sub.get("maximum")
        if is_number(minimum):
            low = minimum
        if is_number(maximum):
            high = maximum
        # The exclusive bounds (e.g. an amount above 0) leave the bound itself out.
        exclusive_min, exclusive_max = sub.get("exclusiveMinimum"), sub.get("exclusiveMaximum")
        if is_number(exclusive_min) and exclusive_min >= low:
            low, low_open = exclusive_min, True
        if is_number(exclusive_max) and exclusive_max <= high:
            high, high_open = exclusive_max, True
        allowed: set[Any] | None = {_key(v) for v in enum} if enum is not None else None
        excluded: set[Any] = set()
        must_exist: bool | None = None
        for leaf in leaves:
            if leaf.op == "exists":
                if must_exist is not None and must_exist != bool(leaf.value):
                    return False
                must_exist = bool(leaf.value)
                continue
            if leaf.op in {"ne", "not_in"}:
                excluded |= {_key(v) for v in (leaf.value if leaf.op == "not_in" else (leaf.value,))}
                continue
            if must_exist is False:
                return False
            must_exist = True
            if leaf.op in NUMERIC_OPERATORS and is_number(leaf.value):
                v = leaf.value
                if leaf.op in {"gt", "gte"} and (v > low or (v == low and leaf.op == "gt")):
                    low, low_open = v, leaf.op == "gt"
                if leaf.op in {"lt", "lte"} and (v < high or (v == high and leaf.op == "lt")):
                    high, high_open = v, leaf.op == "lt"
            elif leaf.op in {"eq", "in"}:
                values = {_key(v) for v in (leaf.value if leaf.op == "in" else (leaf.value,))}
                allowed = values if allowed is None else allowed & values
        if must_exist is False or (must_exist is None and _may_be_missing(schema, name)):
            # Only 'not equal' / 'not in' here: a payload without the field meets them.
            continue
        if low > high or (low == high and (low_open or high_open)):
            return False
        if allowed is not None:
            remaining = allowed - excluded
            numeric = [k[1] for k in remaining if k[0] == "number"]
            others = [k for k in remaining if k[0] != "number"]
            in_range = [
                n
                for n in numeric
                if (n > low or (n == low and not low_open)) and (n < high or (n == high and not high_open))
            ]
            if not in_range and not (others and low == -math.inf and high == math.inf):
                return False
    return True


def _may_be_missing(schema: Mapping[str, Any], path: str) -> bool:
    """Whether a payload valid for `schema` may leave the field at `path` out."""
    current: Any = schema
    for part in path.split("."):
        required = current.get("required") if isinstance(current, Mapping) else None
        if not isinstance(required, list) or part not in required:
            return True
        props = current.get("properties")
        current = props.get(part) if isinstance(props, Mapping) else None
    return False


def _key(value: Any) -> tuple[str, Any]:
    """A hashable stand-in for a JSON value, equal where JSON equality holds (5 and 5.0)."""
    kind = _json_type(value)
    if kind in {"array", "object"}:
        # Lists and objects (an enum may hold them) compare by their canonical JSON text.
        return (kind, json.dumps(value, sort_keys=True, default=str))
    return (kind, value)


def _term_count(condition: Condition) -> int:
    """How many 'and'-terms the condition's 'or' of them has (without making them)."""
    if isinstance(condition, Leaf):
        return 1
    counts = [_term_count(child) for child in condition.items]
    if isinstance(condition, AnyOf):
        return sum(counts)
    return math.prod(counts)


def condition_satisfiable(condition: Condition, schema: Mapping[str, Any]) -> bool:
    # Beyond MAX_CONDITION_TERMS terms the analysis gives up and assumes it reachable; the
    # terms are counted first, as making them all could take longer than anyone waits.
    if _term_count(condition) > MAX_CONDITION_TERMS:
        return True
    return any(_term_satisfiable(term, schema) for term in _dnf(condition))
