"""Conditions on payload values: every operator, missing and nested fields, type mismatches,
all / any, and the words used to explain a skipped stage."""

from __future__ import annotations

from typing import Any

import pytest

from approvals.routing import AllOf, AnyOf, Leaf, condition_explain, condition_holds, payload_value

PAYLOAD: dict[str, Any] = {
    "amount": 1500,
    "ratio": 0.5,
    "currency": "EUR",
    "urgent": True,
    "count": 0,
    "note": None,
    "tags": ["travel", "Q3", 1],
    "flags": [True],
    "vendor": {"name": "Desk & Co", "country": "PT", "rating": 4, "address": {"city": "Lisbon"}},
}


@pytest.mark.parametrize(
    ("leaf", "expected"),
    [
        # eq / ne: JSON equality, so 1500 equals 1500.0 but true is not 1 and "1500" is not 1500
        (Leaf("amount", "eq", 1500), True),
        (Leaf("amount", "eq", 1500.0), True),
        (Leaf("amount", "eq", "1500"), False),
        (Leaf("currency", "eq", "EUR"), True),
        (Leaf("currency", "eq", "eur"), False),
        (Leaf("urgent", "eq", True), True),
        (Leaf("urgent", "eq", 1), False),
        (Leaf("count", "eq", False), False),
        (Leaf("amount", "ne", 1500), False),
        (Leaf("amount", "ne", 1), True),
        (Leaf("urgent", "ne", 1), True),
        # gt gte lt lte: numbers only, booleans are not numbers
        (Leaf("amount", "gt", 1000), True),
        (Leaf("amount", "gt", 1500), False),
        (Leaf("amount", "gte", 1500), True),
        (Leaf("amount", "gte", 1500.01), False),
        (Leaf("amount", "lt", 1500), False),
        (Leaf("amount", "lt", 1500.5), True),
        (Leaf("amount", "lte", 1500), True),
        (Leaf("amount", "lte", 1499), False),
        (Leaf("ratio", "lt", 1), True),
        (Leaf("currency", "gt", "A"), False),
        (Leaf("amount", "gt", "1000"), False),
        (Leaf("urgent", "gte", 0), False),
        (Leaf("urgent", "lt", 2), False),
        # in / not_in: JSON equality against each value
        (Leaf("currency", "in", ("EUR", "USD")), True),
        (Leaf("currency", "in", ("GBP",)), False),
        (Leaf("currency", "in", ()), False),
        (Leaf("urgent", "in", (1, 2)), False),
        (Leaf("amount", "in", (1500.0,)), True),
        (Leaf("currency", "not_in", ("GBP",)), True),
        (Leaf("currency", "not_in", ("EUR", "GBP")), False),
        (Leaf("currency", "not_in", ()), True),
        # contains: case-insensitive text search, or membership in a list
        (Leaf("currency", "contains", "ur"), True),
        (Leaf("currency", "contains", "UR"), True),
        (Leaf("currency", "contains", "x"), False),
        (Leaf("tags", "contains", "travel"), True),
        (Leaf("tags", "contains", "Travel"), False),
        (Leaf("tags", "contains", 1), True),
        (Leaf("tags", "contains", True), False),
        (Leaf("flags", "contains", 1), False),
        (Leaf("flags", "contains", True), True),
        (Leaf("amount", "contains", 1), False),
        (Leaf("currency", "contains", 1), False),
        # exists: set and not null
        (Leaf("amount", "exists", True), True),
        (Leaf("amount", "exists", False), False),
        (Leaf("count", "exists", True), True),
        (Leaf("missing", "exists", True), False),
        (Leaf("missing", "exists", False), True),
        (Leaf("note", "exists", True), False),
        (Leaf("note", "exists", False), True),
    ],
)
def test_each_operator(leaf, expected):
    assert condition_holds(leaf, PAYLOAD) is expected


@pytest.mark.parametrize("op", ["eq", "gt", "gte", "lt", "lte", "in", "contains"])
@pytest.mark.parametrize("field", ["missing", "note", "vendor.missing", "currency.inner"])
def test_a_missing_or_null_field_meets_no_comparison(op, field):
    # given a field the payload lacks (or holds null, or a path through a non-object)
    value: Any = ("x", 1) if op == "in" else 1
    # then no comparison holds
    assert condition_holds(Leaf(field, op, value), PAYLOAD) is False


@pytest.mark.parametrize("field", ["missing", "note", "vendor.missing"])
def test_a_missing_field_is_not_equal_and_not_in(field):
    assert condition_holds(Leaf(field, "ne", 1), PAYLOAD) is True
    assert condition_holds(Leaf(field, "not_in", (1, 2)), PAYLOAD) is True


def test_nested_paths_reach_into_objects():
    assert payload_value(PAYLOAD, "vendor.address.city") == "Lisbon"
    assert condition_holds(Leaf("vendor.country", "eq", "PT"), PAYLOAD)
    assert condition_holds(Leaf("vendor.rating", "gte", 4), PAYLOAD)
    assert condition_holds(Leaf("vendor.address.city", "contains", "lis"), PAYLOAD)
    assert not condition_holds(Leaf("vendor.address.zip", "exists", True), PAYLOAD)
    # a path does not index into lists
    assert not condition_holds(Leaf("tags.0", "exists", True), PAYLOAD)


def test_no_condition_always_holds():
    assert condition_holds(None, {}) is True


def test_all_and_any_combine_and_nest():
    big = Leaf("amount", "gt", 1000)
    euro = Leaf("currency", "eq", "EUR")
    dollar = Leaf("currency", "eq", "USD")
    portugal = Leaf("vendor.country", "eq", "PT")
    # all: every part
    assert condition_holds(AllOf((big, euro)), PAYLOAD)
    assert not condition_holds(AllOf((big, dollar)), PAYLOAD)
    # any: one part is enough
    assert condition_holds(AnyOf((dollar, euro)), PAYLOAD)
    assert not condition_holds(AnyOf((dollar, Leaf("amount", "lt", 10))), PAYLOAD)
    # nested both ways
    assert condition_holds(AllOf((big, AnyOf((dollar, portugal)))), PAYLOAD)
    assert not condition_holds(AllOf((big, AnyOf((dollar, Leaf("vendor.country", "eq", "ES"))))), PAYLOAD)
    assert condition_holds(AnyOf((AllOf((dollar, big)), AllOf((euro, portugal)))), PAYLOAD)
    assert not condition_holds(
        AnyOf((AllOf((dollar, big)), AllOf((euro, Leaf("urgent", "eq", False))))), PAYLOAD
    )


@pytest.mark.parametrize(
    ("condition", "text"),
    [
        (Leaf("amount", "gt", 1000), "amount > 1000"),
        (Leaf("amount", "gte", 1000), "amount ≥ 1000"),
        (Leaf("amount", "lt", 10.5), "amount < 10.5"),
        (Leaf("amount", "lte", 10), "amount ≤ 10"),
        (Leaf("currency", "eq", "EUR"), "currency = 'EUR'"),
        (Leaf("currency", "ne", "EUR"), "currency ≠ 'EUR'"),
        (Leaf("urgent", "eq", True), "urgent = true"),
        (Leaf("currency", "in", ("EUR", "USD")), "currency in ['EUR', 'USD']"),
        (Leaf("currency", "not_in", ("GBP",)), "currency not in ['GBP']"),
        (Leaf("tags", "contains", "travel"), "tags contains 'travel'"),
        (Leaf("vendor.country", "exists", True), "vendor.country is set"),
        (Leaf("vendor.country", "exists", False), "vendor.country is not set"),
        (AllOf((Leaf("a", "eq", 1), Leaf("b", "eq", 2))), "a = 1 and b = 2"),
        (AnyOf((Leaf("a", "eq", 1), Leaf("b", "eq", 2))), "a = 1 or b = 2"),
        (
            AllOf((Leaf("a", "eq", 1), AnyOf((Leaf("b", "eq", 2), Leaf("c", "eq", 3))))),
            "a = 1 and (b = 2 or c = 3)",
        ),
        (AnyOf((AllOf((Leaf("a", "eq", 1),)), Leaf("b", "eq", 2))), "a = 1 or b = 2"),
    ],
)
def test_conditions_describe_themselves_in_words(condition, text):
    assert condition.describe() == text


@pytest.mark.parametrize(
    ("condition", "payload", "why"),
    [
        (Leaf("amount", "gt", 1000), {"amount": 500}, "amount is 500, so amount > 1000 is false"),
        (Leaf("amount", "gt", 1000), {}, "amount is not given, so amount > 1000 is false"),
        (Leaf("amount", "gt", 1000), {"amount": None}, "amount is not given, so amount > 1000 is false"),
        (
            Leaf("currency", "eq", "USD"),
            {"currency": "EUR"},
            "currency is 'EUR', so currency = 'USD' is false",
        ),
        (Leaf("urgent", "eq", True), {"urgent": False}, "urgent is false, so urgent = true is false"),
        (
            Leaf("tags", "contains", "x"),
            {"tags": ["a", "b"]},
            "tags is ['a', 'b'], so tags contains 'x' is false",
        ),
        (Leaf("note", "exists", False), {"note": "hi"}, "note is 'hi', so note is not set is false"),
        (
            AllOf((Leaf("amount", "gt", 10), Leaf("currency", "eq", "USD"))),
            {"amount": 50, "currency": "EUR"},
            "currency is 'EUR', so currency = 'USD' is false",
        ),
        (
            AnyOf((Leaf("amount", "gt", 10), Leaf("currency", "eq", "USD"))),
            {"amount": 5, "currency": "EUR"},
            "none of: amount > 10 or currency = 'USD'",
        ),
    ],
)
def test_a_false_condition_is_explained_in_one_line(condition, payload, why):
    assert not condition_holds(condition, payload)
    assert condition_explain(condition, payload) == why
