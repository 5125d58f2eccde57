"""Each crash the fuzz targets found (or would find), pinned as a plain example.

Before the fixes each of these raised something other than the module's own error — a
RecursionError, an OverflowError, a ValueError from printing a huge number, a TypeError,
an unresolvable reference — or ran out of memory. Now each gets a clear answer.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError

from approvals.admin.forms import PolicyDocumentField, SchemaField
from approvals.publishing import policy_file_read, split_policy_file
from approvals.routing import (
    PolicyError,
    condition_holds,
    condition_satisfiable,
    duration_parse,
    policy_parse,
    policy_problems,
)
from approvals.schemas import payload_errors, schema_problems
from tests.fuzz.targets import Directory, alias_bomb, wide_condition


def _nested_list(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


def one_stage(**stage: Any) -> dict[str, Any]:
    return {"stages": [{"name": "s", "approvers": {"users": ["rita"]}, **stage}]}


def file_with(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    return path


def problems_of_file(path: Path) -> list[str]:
    with pytest.raises(PolicyError) as refused:
        policy_file_read(path)
    return refused.value.problems


# --- policy files (was: RecursionError, memory, dates the database cannot store) -----------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        (
            "deep.json",
            '{"stages": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "nests too deeply: at most 24 levels",
        ),
        ("deep.yaml", "stages: " + "[" * 100_000 + "]" * 100_000, "nests too deeply: at most 24 levels"),
        ("deep-block.yaml", "a: " + "{b: " * 5_000 + "1" + "}" * 5_000, "nests too deeply"),
        ("bomb.yaml", alias_bomb(10, 9), "too large: more than 20,000 values (YAML aliases count"),
        ("huge.yaml", "stages:\n  - name: s\n    quorum: " + "9" * 5_000, "cannot read it:"),
        ("huge.json", '{"stages": [' + "9" * 5_000 + "]}", "cannot read it:"),
        ("nan.json", '{"stages": [NaN]}', "not finite"),
        ("inf.yaml", "stages: [.inf]", "not finite"),
        ("big.yaml", "description: " + "x" * 300_000, "too large: 300,013 bytes, at most 262,144"),
        ("binary.yaml", "stages: !!binary aGk=", "the tag tag:yaml.org,2002:binary is not allowed"),
        ("set.yaml", "stages: !!set {a, b}", "the tag tag:yaml.org,2002:set is not allowed"),
        ("python.yaml", "stages: !!python/object/apply:os.system [ls]", "could not determine a constructor"),
    ],
)
def test_a_hostile_policy_file_is_refused_in_one_clear_line(
    tmp_path: Path, name: str, content: str, expected: str
) -> None:
    # given a file made to exhaust the stack, the memory or the database
    path = file_with(tmp_path, name, content)
    # when it is read  /  then it is refused, saying why
    problems = problems_of_file(path)
    assert len(problems) == 1
    assert problems[0].startswith("cannot read it: ")
    assert expected in problems[0], problems[0]


def test_dates_in_a_policy_file_stay_text(tmp_path: Path) -> None:
    # given a YAML file with an unquoted date (YAML would make it a date, JSON has none)
    path = file_with(tmp_path, "dated.yaml", "request_type: t\ndescription: 2024-05-01\nstages: []\n")
    # when it is read  /  then the date is the text written, storable as JSON
    assert policy_file_read(path)["description"] == "2024-05-01"


def test_a_file_of_anchors_used_within_bounds_still_reads(tmp_path: Path) -> None:
    # given a policy that reuses one approver list through an anchor (a fair use)
    path = file_with(
        tmp_path,
        "anchors.yaml",
        "request_type: t\nstages:\n  - name: a\n    approvers: &both {users: [rita, alex]}\n"
        "  - name: b\n    approvers: *both\n",
    )
    # when it is read and parsed  /  then both stages name the same people
    _, document = split_policy_file(policy_file_read(path))
    policy = policy_parse(document)
    assert policy.stages[0].approvers == policy.stages[1].approvers


@pytest.mark.parametrize(
    "request_type",
    [5, [1, 2], None, {"slug": 5}, {"slug": "t", 1: "x", "colour": "red"}],
    ids=["a number", "a list", "missing", "a numeric slug", "keys of mixed kinds"],
)
def test_a_malformed_request_type_part_is_a_policy_error(request_type: Any) -> None:
    # was: TypeError from dict(5), or from sorting keys of mixed kinds
    with pytest.raises(PolicyError) as refused:
        split_policy_file({"request_type": request_type, "stages": []})
    assert "request_type must be a slug or a mapping" in refused.value.problems[0]


# --- policy documents given as values (the admin, JSON columns, code) ----------------------


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (one_stage(rule="quorum", quorum=10**5000), "a number beyond"),
        (one_stage(when={"field": "amount", "op": "gt", "value": float("nan")}), "not finite"),
        (one_stage(description="x" * 20_000), "a text longer than 10,000 characters"),
        (one_stage(sla=__import__("datetime").date(2024, 5, 1)), "of a kind JSON does not have: date"),
        ({"stages": _nested_list(30)}, "nests too deeply"),
    ],
    ids=["huge quorum", "NaN", "long text", "a date", "deep"],
)
def test_a_document_beyond_the_bounds_is_one_policy_error(document: Any, expected: str) -> None:
    # was: ValueError printing the quorum, NaN accepted into JSON, no bounds at all
    with pytest.raises(PolicyError) as refused:
        policy_parse(document)
    assert len(refused.value.problems) == 1
    assert expected in refused.value.problems[0], refused.value.problems


# --- durations (was: OverflowError) ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["9999999999d", "1000000000d", "P99999999999D", "PT9999999999999999999H", "9" * 5_000 + "d", "3661d"],
)
def test_a_duration_beyond_ten_years_is_not_a_duration(text: str) -> None:
    assert duration_parse(text) is None


def test_durations_within_the_bound_still_read() -> None:
    assert duration_parse("3650d") is not None
    assert duration_parse("P2DT4H") is not None
    assert duration_parse("٣d") is None  # Arabic-Indic digits are not the digits of 30m, 4h, 2d


# --- conditions (was: OverflowError, TypeError, memory exhausted) ----------------------------


def test_a_huge_whole_number_in_a_payload_is_compared_not_crashed_on() -> None:
    # was: OverflowError from math.isfinite on an int beyond a float
    policy = policy_parse(one_stage(when={"field": "amount", "op": "gt", "value": 1000}))
    assert policy.stages[0].condition is not None
    assert condition_holds(policy.stages[0].condition, {"amount": 10**400}) is True


def test_an_enum_of_objects_and_lists_does_not_break_the_reachability_check() -> None:
    # was: TypeError: unhashable type 'dict'
    policy = policy_parse(one_stage(when={"field": "meta", "op": "eq", "value": "x"}))
    schema = {"type": "object", "properties": {"meta": {"enum": [{"a": 1}, [[1]], "x"]}}}
    assert policy.stages[0].condition is not None
    assert condition_satisfiable(policy.stages[0].condition, schema) is True


def test_a_condition_with_millions_of_terms_is_checked_at_once() -> None:
    # given a condition whose 'or' of 'and'-terms number about 4.7e18 (was: MemoryError)
    policy = policy_parse(one_stage(when=wide_condition(6, 2)))
    # when the policy is checked for publishing  /  then it answers within a second
    started = time.perf_counter()
    problems = policy_problems(policy, schema={"type": "object"}, directory=Directory())
    assert time.perf_counter() - started < 1.0
    assert isinstance(problems, list)


# --- payload schemas and payloads ------------------------------------------------------------


def _deep_schema(levels: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(levels):
        schema = {"type": "object", "properties": {"x": schema}}
    return schema


@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        (_deep_schema(2_000), "nests too deeply"),
        ({"type": "object", "enum": [10**5000]}, "a number beyond"),
        ({"type": "object", "properties": {"x": {"$dynamicRef": "#meta"}}}, "'$dynamicRef' is not supported"),
        (
            {"type": "object", "properties": {"x": {"$ref": "https://example.com/s.json"}}},
            "must point at a part",
        ),
        ({"type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}}, "must point at a part"),
        (
            {
                "$defs": {"a": {"allOf": [{"$ref": "#/$defs/a"}]}},
                "type": "object",
                "properties": {"x": {"$ref": "#/$defs/a"}},
            },
            "goes round in a circle",
        ),
        (
            {"type": "object", "properties": {"x": {"type": "string", "pattern": "^(a+)+$"}}},
            "repeats a repetition",
        ),
        ({"type": "object", "properties": {"x": {"$id": "other.json"}}}, "'$id' belongs at the top"),
    ],
    ids=[
        "deep",
        "huge number",
        "dynamic ref",
        "remote ref",
        "missing ref",
        "ref cycle",
        "nested repetition",
        "inner $id",
    ],
)
def test_a_schema_that_would_fail_or_hang_validation_is_refused(schema: Any, expected: str) -> None:
    # was: RecursionError, ValueError, an unresolvable reference at validation time, or a hang
    problems = schema_problems(schema)
    assert problems
    assert any(expected in p for p in problems), problems


def test_local_references_and_recursion_through_values_are_fine() -> None:
    # given a schema with definitions, one of them recursive through a property (a tree)
    schema = {
        "type": "object",
        "$defs": {"node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"}}}},
        "properties": {
            "root": {"$ref": "#/$defs/node"},
            "code": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"},
        },
    }
    # when it is checked  /  then it is accepted, and payloads are judged against it
    assert schema_problems(schema) == []
    assert payload_errors(schema=schema, payload={"root": {"child": {"child": {}}}, "code": "ABC-1"}) == {}
    assert payload_errors(schema=schema, payload={"root": {"child": 5}}) == {
        "payload.root.child": ["Must be a group of fields."]
    }


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"amount": 10**5000}, "The data holds a number beyond"),
        ({"x": _nested_list(20)}, "The data nests too deeply"),
        ({"x": float("inf")}, "not finite"),
    ],
    ids=["huge number", "deep", "infinity"],
)
def test_a_payload_beyond_the_bounds_is_a_field_error(payload: Any, expected: str) -> None:
    # was: ValueError from json.dumps on the huge number, RecursionError on depth
    found = payload_errors(schema={"type": "object"}, payload=payload)
    assert list(found) == ["payload"]
    assert expected in found["payload"][0], found


# --- the admin's text fields (was: a server error on deep JSON or huge numbers) -------------


@pytest.mark.parametrize("text", ["[" * 100_000, '{"a": ' + "9" * 5_000 + "}"], ids=["deep", "huge number"])
def test_the_schema_field_answers_a_form_error(text: str) -> None:
    with pytest.raises(ValidationError):
        SchemaField().clean(text)


def test_the_policy_field_answers_a_form_error_for_a_bomb() -> None:
    with pytest.raises(ValidationError) as refused:
        PolicyDocumentField().clean(alias_bomb(10, 9))
    assert "too large" in str(refused.value)


def test_yaml_is_only_ever_read_through_the_safe_loader() -> None:
    # given every Python file of the application
    root = Path(settings.BASE_DIR)
    unsafe = re.compile(
        r"yaml\.(load|unsafe_load|full_load|load_all|unsafe_load_all|full_load_all)\(|yaml\.(Loader|UnsafeLoader|FullLoader)\b"
    )
    files = [
        p
        for package in ("accounts", "approvals", "workflows", "config")
        for p in (root / package).rglob("*.py")
    ]
    assert files
    # when each is read  /  then none loads YAML but through yaml.safe_load or the bounded safe loader
    found = [
        f"{p.relative_to(root)}: {m.group(0)}"
        for p in files
        for m in unsafe.finditer(p.read_text(encoding="utf-8"))
    ]
    assert not found, found
