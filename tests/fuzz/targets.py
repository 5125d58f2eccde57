"""Fuzz targets: what every reader of outside input must do with any input whatsoever.

Each target takes one generated input and calls the real module. The contract checked:
a result of the documented kind, or the module's own clear error (PolicyError with its
problems, a list of problems, None); never another exception, never a hang (the tests run
each example under a deadline). The targets are shared by tests/fuzz/ (short runs in the
normal suite) and bench/fuzz.py (minutes at a time).

The strategies mix plausible documents (near-valid policies, schemas made of real JSON
Schema keywords, payloads shaped like real ones) with the hostile inputs that break
parsers: deep nesting, YAML alias bombs, huge numbers, long texts, values JSON does not
have, tags, and text that is almost YAML.
"""

from __future__ import annotations

import datetime
import json
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

from approvals.publishing import policy_file_read, split_policy_file
from approvals.routing import (
    Person,
    Policy,
    PolicyError,
    condition_explain,
    condition_holds,
    condition_satisfiable,
    duration_parse,
    duration_text,
    policy_parse,
    policy_problems,
)
from approvals.routing.conditions import condition_leaves, leaf_type_problem
from approvals.routing.model import MAX_DURATION, OPERATORS, RULES
from approvals.schemas import payload_errors, schema_fields, schema_problems

# --- values --------------------------------------------------------------------------------

NAMES = ["amount", "kind", "vendor", "country", "tags", "a", "b", "vendor.country", "x_1", "", "1x", "a..b"]
WORDS = st.sampled_from(
    ["rita", "alex", "finance", "review", "any", "all", "quorum", "gt", "2d", "P1D", "true"]
)
# Numbers at the edges: huge whole numbers (Python prints none past 4,300 digits), floats
# that are not finite, the ends of the float range.
EDGE_NUMBERS = st.one_of(
    st.sampled_from([0, -1, 1, 2**63, -(2**63) - 1, 1e308, -1e308, 5e-324, math.inf, -math.inf, math.nan]),
    # made when drawn: a strategy holding 10**5000 could not even be printed
    st.sampled_from([19, 400, 5000]).map(lambda digits: 10**digits),
)
NUMBERS = st.one_of(st.integers(), st.floats(allow_nan=True, allow_infinity=True), EDGE_NUMBERS)
LONG_TEXT = st.integers(min_value=0, max_value=80_000).map(lambda n: "a" * n)
TEXT = st.one_of(st.text(max_size=40), WORDS, st.sampled_from(NAMES), LONG_TEXT)
# What a YAML or Python caller could hand over that JSON has no word for.
NOT_JSON = st.sampled_from(
    [
        datetime.date(2024, 5, 1),
        datetime.datetime(2024, 5, 1, 12, 0),
        b"bytes",
        {1, 2},
        (1, 2),
        frozenset(),
        object(),
        timedelta(days=1),
    ]
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)
KEYS = st.one_of(TEXT, st.integers(), st.booleans(), st.none(), st.floats(allow_nan=False))


def json_like(scalars: st.SearchStrategy[Any] = SCALARS, max_leaves: int = 30) -> st.SearchStrategy[Any]:
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=5), st.dictionaries(KEYS, children, max_size=5)
        ),
        max_leaves=max_leaves,
    )


def _nested(depth: int, kind: str) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value] if kind == "list" else {"k": value}
    return value


DEEP = st.builds(_nested, st.integers(min_value=1, max_value=5_000), st.sampled_from(["list", "dict"]))


def _shared(breadth: int, depth: int) -> Any:
    """A value shared many times over (what a YAML alias bomb loads into)."""
    value: Any = ["lol"] * breadth
    for _ in range(depth):
        value = [value] * breadth
    return value


# Up to a million leaves when expanded (enough to cross every bound; small enough to print).
SHARED = st.integers(min_value=2, max_value=10).flatmap(
    lambda breadth: st.builds(
        _shared,
        st.just(breadth),
        st.integers(min_value=1, max_value=int(math.log(1e6) / math.log(breadth)) - 1),
    )
)
ANYTHING = st.one_of(json_like(), json_like(st.one_of(SCALARS, NOT_JSON)), DEEP, SHARED)


# --- policy documents -------------------------------------------------------------------------


def condition_documents(depth: int = 0) -> st.SearchStrategy[Any]:
    leaf = st.fixed_dictionaries(
        {"field": st.one_of(st.sampled_from(NAMES), TEXT), "op": st.one_of(st.sampled_from(OPERATORS), TEXT)},
        optional={"value": st.one_of(SCALARS, st.lists(SCALARS, max_size=6), ANYTHING)},
    )
    if depth >= 8:
        return leaf
    combined = st.fixed_dictionaries(
        {},
        optional={
            "all": st.lists(st.deferred(lambda: condition_documents(depth + 1)), max_size=4),
            "any": st.lists(st.deferred(lambda: condition_documents(depth + 1)), max_size=4),
        },
    )
    return st.one_of(leaf, leaf, combined, ANYTHING)


def wide_condition(width: int, levels: int) -> dict[str, Any]:
    """all-of-any-of nests whose 'or' of 'and'-terms has width**levels terms."""
    cond: dict[str, Any] = {"field": "amount", "op": "gt", "value": 1}
    for level in range(levels):
        cond = {
            ("all" if level % 2 else "any"): [
                {"all": [cond, {"field": f"f{level}_{i}", "op": "eq", "value": i}]} for i in range(width)
            ]
        }
        cond = {"all": [cond, cond]}
    return cond


WIDE_CONDITIONS = st.builds(
    wide_condition, st.integers(min_value=2, max_value=12), st.integers(min_value=1, max_value=3)
)

DURATION_TEXT = st.one_of(
    st.from_regex(r"\A[0-9]{1,12}[dhm]([0-9]{1,12}[hm])?\Z"),
    st.from_regex(r"\AP([0-9]{1,20}(\.[0-9]{1,5})?[YMWD])?(T[0-9]{1,20}(\.[0-9]{1,5})?[HMS])?\Z"),
    st.from_regex(r"\A-?P[0-9.,]{0,30}[DTHMS]{0,4}[0-9.,]{0,30}[HMS]?\Z"),
    st.integers(min_value=0, max_value=10**30).map(lambda n: f"{n}d"),
    st.integers(min_value=1, max_value=50_000).map(lambda n: "9" * n + "d"),
    st.text(max_size=30),
    SCALARS,
)


def stage_documents() -> st.SearchStrategy[Any]:
    approvers = st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "users": st.one_of(st.lists(st.one_of(WORDS, TEXT), max_size=4), ANYTHING),
                "groups": st.one_of(st.lists(st.one_of(WORDS, TEXT), max_size=4), ANYTHING),
                "requester_manager": st.one_of(st.booleans(), SCALARS),
                "team_manager": st.one_of(st.booleans(), SCALARS),
                "others": SCALARS,
            },
        ),
        ANYTHING,
    )
    return st.one_of(
        st.fixed_dictionaries(
            {
                "name": st.one_of(st.sampled_from(["review", "finance", "cfo", "a", "b"]), TEXT),
                "approvers": approvers,
            },
            optional={
                "rule": st.one_of(st.sampled_from(RULES), SCALARS),
                "quorum": st.one_of(st.integers(min_value=-2, max_value=5), NUMBERS, SCALARS),
                "veto": st.one_of(st.booleans(), SCALARS),
                "when": st.one_of(condition_documents(), WIDE_CONDITIONS),
                "sla": DURATION_TEXT,
                "escalate_to": st.one_of(
                    st.dictionaries(st.sampled_from(["user", "group", "team"]), SCALARS, max_size=2), ANYTHING
                ),
                "description": st.one_of(TEXT, ANYTHING),
            },
        ),
        ANYTHING,
    )


POLICY_DOCUMENTS = st.one_of(
    st.fixed_dictionaries(
        {"stages": st.one_of(st.lists(stage_documents(), max_size=4), ANYTHING)},
        optional={
            "options": st.one_of(
                st.dictionaries(
                    st.sampled_from(["one_decision_per_person", "carry_over_approvals", "other"]),
                    st.one_of(st.booleans(), SCALARS),
                    max_size=3,
                ),
                ANYTHING,
            ),
            "request_type": st.one_of(TEXT, ANYTHING),
            "name": TEXT,
            "description": ANYTHING,
        },
    ),
    ANYTHING,
)


# --- payload schemas and payloads ----------------------------------------------------------

PATTERNS = st.sampled_from(
    [
        "^[a-z]+$",
        "(a+)+$",
        "^(\\w+\\s?)*$",
        "[",
        "(?P<x>a)(?P=x)",
        "^.{0,5}$",
        "\\d{3}-\\d{4}",
        "(a|aa)+",
        "(?=a)",
    ]
)
REFS = st.sampled_from(
    [
        "#",
        "#/$defs/a",
        "#/$defs/b",
        "#/properties/x",
        "#/$defs/missing",
        "#/$defs/a~1b",
        "#/%24defs/a",
        "http://example.com/s.json",
        "s.json#/a",
        "#anchor",
        "#/$defs/a/properties/y",
        "",
    ]
)


def schema_documents(depth: int = 0) -> st.SearchStrategy[Any]:
    if depth >= 4:
        sub: st.SearchStrategy[Any] = st.one_of(
            st.booleans(), st.fixed_dictionaries({"type": st.sampled_from(["string", "number", "integer"])})
        )
    else:
        sub = st.deferred(lambda: schema_documents(depth + 1))
    keywords: dict[str, st.SearchStrategy[Any]] = {
        "type": st.one_of(
            st.sampled_from(["object", "string", "number", "integer", "boolean", "array", "null"]),
            st.lists(st.sampled_from(["string", "number", "null"]), max_size=3, unique=True),
            SCALARS,
        ),
        "properties": st.dictionaries(
            st.sampled_from(["x", "y", "amount", "kind", "a/b", "~"]), sub, max_size=3
        ),
        "required": st.one_of(st.lists(st.sampled_from(["x", "y", "amount"]), max_size=3), ANYTHING),
        "additionalProperties": st.one_of(st.booleans(), sub),
        "items": sub,
        "prefixItems": st.lists(sub, max_size=2),
        "enum": st.one_of(st.lists(json_like(max_leaves=5), min_size=1, max_size=4), ANYTHING),
        "const": json_like(max_leaves=4),
        "minimum": NUMBERS,
        "maximum": NUMBERS,
        "exclusiveMinimum": NUMBERS,
        "exclusiveMaximum": NUMBERS,
        "multipleOf": st.one_of(st.sampled_from([0.1, 1e-300, 3, 1e300, 0.5]), NUMBERS),
        "minLength": st.one_of(st.integers(min_value=0, max_value=10), NUMBERS),
        "maxLength": st.one_of(st.integers(min_value=0, max_value=10), NUMBERS),
        "minItems": st.integers(min_value=0, max_value=3),
        "uniqueItems": st.booleans(),
        "pattern": st.one_of(PATTERNS, TEXT),
        "patternProperties": st.dictionaries(PATTERNS, sub, max_size=2),
        "format": st.sampled_from(
            ["date", "date-time", "email", "uri", "regex", "ipv4", "uuid", "duration", "nope"]
        ),
        "$ref": st.one_of(REFS, SCALARS),
        "$defs": st.dictionaries(st.sampled_from(["a", "b", "a/b"]), sub, max_size=3),
        "allOf": st.lists(sub, min_size=1, max_size=2),
        "anyOf": st.lists(sub, min_size=1, max_size=2),
        "oneOf": st.lists(sub, min_size=1, max_size=2),
        "not": sub,
        "if": sub,
        "then": sub,
        "else": sub,
        "dependentSchemas": st.dictionaries(st.sampled_from(["x", "y"]), sub, max_size=2),
        "dependentRequired": st.dictionaries(
            st.sampled_from(["x", "y"]), st.lists(st.sampled_from(["x", "y"]))
        ),
        "propertyNames": sub,
        "contains": sub,
        "unevaluatedProperties": st.one_of(st.booleans(), sub),
        "$id": st.sampled_from(["https://example.com/s.json", "urn:x", "#frag"]),
        "$anchor": st.sampled_from(["anchor", "a"]),
        "$dynamicRef": st.sampled_from(["#meta", "#/a"]),
        "x-order": st.lists(TEXT, max_size=3),
        "title": TEXT,
    }
    return st.dictionaries(st.sampled_from(sorted(keywords)), st.just(None), max_size=5).flatmap(
        lambda chosen: st.fixed_dictionaries({k: keywords[k] for k in chosen})
    )


SCHEMAS = st.one_of(schema_documents(), schema_documents().map(lambda s: {**s, "type": "object"}), ANYTHING)
PAYLOADS = st.one_of(
    st.dictionaries(st.sampled_from(["x", "y", "amount", "kind", "tags", "vendor"]), json_like(), max_size=5),
    ANYTHING,
)


# --- YAML and JSON text --------------------------------------------------------------------


def alias_bomb(breadth: int, depth: int) -> str:
    lines = ['a0: &a0 ["lol"]']
    for level in range(1, depth + 1):
        refs = ", ".join(f"*a{level - 1}" for _ in range(breadth))
        lines.append(f"a{level}: &a{level} [{refs}]")
    lines.append(f"stages: *a{depth}")
    return "\n".join(lines) + "\n"


def _dump(document: Any) -> str:
    try:
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    except (yaml.YAMLError, TypeError, ValueError, RecursionError):
        return "stages: []\n"


def _json_dump(document: Any) -> str:
    try:
        return json.dumps(document, default=str)
    except (TypeError, ValueError, RecursionError):
        return '{"stages": []}'


YAML_PIECES = st.sampled_from(
    [
        "stages:",
        "- name: review",
        "  approvers: {groups: [finance]}",
        "&a",
        "*a",
        "<<: *a",
        "!!binary aGk=",
        "!!set {a, b}",
        "!!omap [a: 1]",
        "!!python/object:os.system ls",
        "!!timestamp 2024-05-01",
        "2024-05-01",
        "? [a, b]\n: c",
        "{",
        "[",
        "]",
        "}",
        ":",
        "- ",
        "'",
        '"',
        "|\n  x",
        ">\n  y",
        "%YAML 1.1",
        "---",
        "...",
        ".nan",
        ".inf",
        "-.inf",
        "0x1F",
        "0o17",
        "1_000",
        "9" * 5000,
        "\t",
        "\x00",
        "\ufeff",
        "#",
        "@",
        "`",
        "~",
    ]
)
YAML_TEXTS = st.one_of(
    POLICY_DOCUMENTS.map(_dump),
    st.lists(YAML_PIECES, max_size=12).map(" ".join),
    st.lists(YAML_PIECES, max_size=12).map("\n".join),
    st.builds(alias_bomb, st.integers(min_value=2, max_value=12), st.integers(min_value=1, max_value=12)),
    st.integers(min_value=1, max_value=20_000).map(lambda n: "stages: " + "[" * n + "]" * n),
    st.integers(min_value=1, max_value=20_000).map(
        lambda n: "stages:\n" + "".join(" " * i + "- \n" for i in range(min(n, 300)))
    ),
    st.integers(min_value=1, max_value=20_000).map(lambda n: "a: " + "{b: " * n + "1" + "}" * n),
    st.integers(min_value=200_000, max_value=400_000).map(lambda n: "description: " + "x" * n),
    st.text(max_size=200),
)
JSON_TEXTS = st.one_of(
    POLICY_DOCUMENTS.map(_json_dump),
    st.integers(min_value=1, max_value=200_000).map(lambda n: '{"stages": ' + "[" * n + "]" * n + "}"),
    st.just('{"stages": [' + "9" * 5000 + "]}"),
    st.just('{"stages": [NaN, Infinity]}'),
    st.just('{"stages": ["\\ud800"]}'),
    st.text(max_size=100),
)
FILES = st.one_of(
    st.tuples(st.just(".yaml"), YAML_TEXTS.map(lambda t: t.encode("utf-8", errors="surrogatepass"))),
    st.tuples(st.just(".json"), JSON_TEXTS.map(lambda t: t.encode("utf-8", errors="surrogatepass"))),
    st.tuples(st.sampled_from([".yaml", ".json"]), st.binary(max_size=200)),
)


# --- the contract each target checks ----------------------------------------------------------


class Directory:
    """A fixed installation: a few people and groups, one of whom may not decide."""

    people = {
        "rita": Person(1, "rita"),
        "alex": Person(2, "alex"),
        "olaf": Person(3, "olaf", may_decide=False),
    }
    groups = {
        "finance": [Person(2, "alex")],
        "empty": [],
        "review": [Person(1, "rita"), Person(3, "olaf", False)],
    }

    def user(self, name: str) -> Person | None:
        return self.people.get(name)

    def group_members(self, name: str) -> list[Person] | None:
        return self.groups.get(name)


def _problems_are_lines(problems: Any) -> None:
    assert isinstance(problems, list), problems
    assert all(isinstance(p, str) and p for p in problems), problems


def _policy_or_error(document: Any) -> Policy | None:
    try:
        policy = policy_parse(document)
    except PolicyError as exc:
        problems = exc.problems
    else:
        assert isinstance(policy, Policy)
        return policy
    _problems_are_lines(problems)
    assert problems
    return None


def _policy_is_usable(policy: Policy, schema: Any) -> None:
    """What the admin, the checks and the pages do with a policy that was read."""
    for stage in policy.stages:
        assert isinstance(stage.rule_text(), str)
        assert isinstance(stage.approvers.describe(), str)
        if stage.sla is not None:
            assert duration_parse(duration_text(stage.sla)) == stage.sla
        if stage.condition is not None:
            assert isinstance(stage.condition.describe(), str)
    _problems_are_lines(
        policy_problems(policy, schema=schema if isinstance(schema, dict) else {}, directory=Directory())
    )


def target_policy_parse(document: Any) -> None:
    policy = _policy_or_error(document)
    if policy is not None:
        _policy_is_usable(policy, {})


def target_policy_file_read(file: tuple[str, bytes]) -> None:
    suffix, content = file
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"policy{suffix}"
        path.write_bytes(content)
        try:
            loaded = policy_file_read(path)
        except PolicyError as exc:
            _problems_are_lines(exc.problems)
            return
    assert isinstance(loaded, dict)
    try:
        type_part, document = split_policy_file(loaded)
    except PolicyError as exc:
        _problems_are_lines(exc.problems)
        return
    assert isinstance(type_part, dict)
    _problems_are_lines(schema_problems(type_part.get("payload_schema") or {}))
    policy = _policy_or_error(document)
    if policy is not None:
        _policy_is_usable(policy, type_part.get("payload_schema") or {})


def target_schema_problems(schema: Any) -> None:
    problems = schema_problems(schema)
    _problems_are_lines(problems)
    if not problems:
        assert isinstance(schema_fields(schema), list)
        # A schema that passes must be usable: an empty payload is judged, not crashed on.
        _payload_errors_are_fields(payload_errors(schema=schema, payload={}))


def _payload_errors_are_fields(found: Any) -> None:
    assert isinstance(found, dict), found
    for key, messages in found.items():
        assert isinstance(key, str)
        assert key.startswith("payload"), key
        _problems_are_lines(messages)


def target_payload_errors(schema_and_payload: tuple[Any, Any]) -> None:
    schema, payload = schema_and_payload
    if schema_problems(schema):
        return  # only checked schemas are ever validated against
    _payload_errors_are_fields(payload_errors(schema=schema, payload=payload))


def target_conditions(example: tuple[Any, Any, Any]) -> None:
    condition_document, payload, schema = example
    policy = _policy_or_error(
        {"stages": [{"name": "s", "approvers": {"users": ["rita"]}, "when": condition_document}]}
    )
    if policy is None:
        return
    condition = policy.stages[0].condition
    if condition is None:  # `when: null` is no condition
        return
    payload = payload if isinstance(payload, dict) else {"value": payload}
    schema = schema if isinstance(schema, dict) else {}
    holds = condition_holds(condition, payload)
    assert isinstance(holds, bool)
    if not holds:
        assert isinstance(condition_explain(condition, payload), str)
    assert isinstance(condition_satisfiable(condition, schema), bool)
    for leaf in condition_leaves(condition):
        problem = leaf_type_problem(leaf, schema)
        assert problem is None or isinstance(problem, str)


def target_duration_parse(text: Any) -> None:
    parsed = duration_parse(text)
    if parsed is None:
        return
    assert isinstance(parsed, timedelta)
    assert timedelta(0) < parsed <= MAX_DURATION
    assert duration_parse(duration_text(parsed)) == parsed


@dataclass(frozen=True)
class Target:
    name: str
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any], None]


TARGETS = [
    Target("policy_parse", POLICY_DOCUMENTS, target_policy_parse),
    Target("policy_file_read", FILES, target_policy_file_read),
    Target("schema_problems", SCHEMAS, target_schema_problems),
    Target("payload_errors", st.tuples(SCHEMAS, PAYLOADS), target_payload_errors),
    Target(
        "conditions",
        st.tuples(st.one_of(condition_documents(), WIDE_CONDITIONS), PAYLOADS, SCHEMAS),
        target_conditions,
    ),
    Target("duration_parse", DURATION_TEXT, target_duration_parse),
]
