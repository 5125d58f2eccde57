"""Strict payloads: unknown fields refused unless the schema allows them, the demo schemas
bounded, absurd numbers refused with a field error, and amounts and dates shown formatted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from django.test import Client

from accounts.models import User
from approvals import services
from approvals.demo import POLICY_DIR
from approvals.models import ApprovalRequest
from approvals.schemas import payload_errors, schema_problems
from approvals.selectors.values import field_value_text, number_text, payload_items
from tests.factories import GroupFactory, RequestTypeFactory, make_requester
from workflows import errors

PURCHASE: dict[str, Any] = yaml.safe_load((Path(POLICY_DIR) / "purchase.yaml").read_text())["request_type"][
    "payload_schema"
]
EXPENSE: dict[str, Any] = yaml.safe_load((Path(POLICY_DIR) / "expense.yaml").read_text())["request_type"][
    "payload_schema"
]
GOOD_PURCHASE = {"vendor": "Desks Ltd", "amount": 1234.5, "items": "two desks"}


def _demo_schemas() -> list[tuple[str, dict[str, Any]]]:
    """Every payload schema and task output schema of the demo policies."""
    found: list[tuple[str, dict[str, Any]]] = []

    def stages(items: list[Any], where: str) -> None:
        for stage in items:
            if "parallel" in stage:
                stages(stage["parallel"]["stages"], where)
            elif stage.get("outputs"):
                found.append((f"{where} {stage['name']} outputs", stage["outputs"]))

    for path in sorted(Path(POLICY_DIR).glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        found.append((f"{path.stem} payload", document["request_type"]["payload_schema"]))
        stages(document.get("stages", []), path.stem)
    return found


# --- unknown fields -----------------------------------------------------------------------


def test_a_field_the_schema_does_not_name_is_refused_by_name() -> None:
    # given the purchase schema, which says nothing of other fields
    # when a payload carries one more
    found = payload_errors(schema=PURCHASE, payload={**GOOD_PURCHASE, "discount": 50})
    # then that field, and only it, is refused
    assert found == {"payload.discount": ["This field is not part of this request type."]}


def test_a_nested_unknown_field_is_refused_with_its_path() -> None:
    schema = {
        "type": "object",
        "properties": {"address": {"type": "object", "properties": {"city": {"type": "string"}}}},
    }
    found = payload_errors(schema=schema, payload={"address": {"city": "Oslo", "zip": "0150"}})
    assert found == {"payload.address.zip": ["This field is not part of this request type."]}


@pytest.mark.parametrize("allowed", [True, {"type": "string", "maxLength": 20}])
def test_a_schema_that_allows_other_fields_keeps_them(allowed: Any) -> None:
    # given a schema that says other fields are welcome (any, or strings)
    schema = {**PURCHASE, "additionalProperties": allowed}
    # when a payload carries one  /  then it is accepted
    assert payload_errors(schema=schema, payload={**GOOD_PURCHASE, "note": "urgent"}) == {}


def test_a_schema_combining_parts_is_not_closed_behind_its_back() -> None:
    # given a schema whose fields come from allOf parts (closing its top would refuse them)
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "allOf": [{"properties": {"b": {"type": "string"}}}],
    }
    # when a payload carries a field only a part names  /  then it is accepted
    assert payload_errors(schema=schema, payload={"a": "x", "b": "y"}) == {}


@pytest.mark.django_db
def test_the_service_refuses_an_unknown_field_and_creates_nothing() -> None:
    # given a purchase type with the demo schema, and a requester
    kind = RequestTypeFactory.create(slug="purchase", payload_schema=PURCHASE, approver_group=GroupFactory())
    rita = make_requester(username="rita")
    # when an API-like caller sends a payload with a field nobody asked for
    with pytest.raises(errors.InvalidInput) as refused:
        services.request_create(
            requester=rita,
            request_type=kind,
            title="Desks",
            payload={**GOOD_PURCHASE, "approved_by": "me"},
        )
    # then the error names the field, and no request exists
    assert refused.value.field_errors == {
        "payload.approved_by": ["This field is not part of this request type."]
    }
    assert not ApprovalRequest.objects.exists()


# --- bounds ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("where", "schema"), _demo_schemas(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_demo_schema_is_usable_and_bounded(where: str, schema: dict[str, Any]) -> None:
    # given a schema of the demo policies
    assert schema_problems(schema) == [], where
    for name, sub in (schema.get("properties") or {}).items():
        kind = sub.get("type")
        # then each amount has a floor, a ceiling and cents; each text a length or a shape
        if kind == "number":
            assert "minimum" in sub or "exclusiveMinimum" in sub, (where, name)
            assert sub.get("maximum", 10**8) <= 10_000_000, (where, name)
            assert sub.get("multipleOf") == 0.01, (where, name)
        if kind == "string":
            bounded = "maxLength" in sub or "enum" in sub or sub.get("format") in {"date", "date-time"}
            assert bounded, (where, name)


@pytest.mark.parametrize(
    ("amount", "message"),
    [
        (1e308, "Must be at most 10,000,000."),
        (10_000_000.01, "Must be at most 10,000,000."),
        (0, "Must be more than 0."),
        (19.999, "At most 2 decimal places."),
    ],
)
def test_an_absurd_amount_is_refused_on_its_field(amount: float, message: str) -> None:
    found = payload_errors(schema=PURCHASE, payload={**GOOD_PURCHASE, "amount": amount})
    assert message in found["payload.amount"]
    assert set(found) == {"payload.amount"}


def test_an_infinite_amount_is_refused_before_the_schema_is_read() -> None:
    # (JSON has no infinity; only a caller inside Python can send one)
    found = payload_errors(schema=PURCHASE, payload={**GOOD_PURCHASE, "amount": float("inf")})
    assert list(found) == ["payload"]
    assert "not finite" in found["payload"][0]


@pytest.mark.parametrize("amount", [19.99, 0.01, 0.1 + 0.2 - 0.3 + 1, 9_999_999.99, 10_000_000, 7])
def test_an_amount_in_cents_is_accepted_though_binary_floats_are_inexact(amount: float) -> None:
    # 19.99 / 0.01 is 1998.9999999999998 in binary floating point: decimal arithmetic says yes
    if amount == 0.1 + 0.2 - 0.3 + 1:
        amount = 1.0  # (a float that prints as 1.0 however it was reached)
    assert payload_errors(schema=PURCHASE, payload={**GOOD_PURCHASE, "amount": amount}) == {}


@pytest.mark.django_db
def test_1e308_typed_into_the_form_comes_back_with_a_field_error() -> None:
    # given the purchase form, as a requester fills it in
    kind = RequestTypeFactory.create(slug="purchase", payload_schema=PURCHASE, approver_group=GroupFactory())
    client = Client()
    client.force_login(make_requester(username="rita"))
    posted = {
        "title": "Desks",
        "payload.vendor": "Desks Ltd",
        "payload.amount": "1e+308",
        "payload.items": "desks",
    }
    # when 1e+308 is typed as the amount
    response = client.post(f"/requests/new/{kind.slug}/", posted, follow=True)
    # then the form comes back (post/redirect/get) with the reason beside the amount, and
    # nothing was created
    assert response.redirect_chain == [(f"/requests/new/{kind.slug}/", 303)]
    assert response.status_code == 400
    assert response.context["form"].errors == {"payload.amount": ["Must be at most 10,000,000."]}
    assert not ApprovalRequest.objects.exists()


# --- shown formatted -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "places", "shown"),
    [
        (1234567, None, "1,234,567"),
        (1234567.5, None, "1,234,567.5"),
        (1e20, None, "100,000,000,000,000,000,000"),
        (0.5, 2, "0.50"),
        (1234.5, 2, "1,234.50"),
    ],
)
def test_numbers_read_with_thousands_separators(value: float, places: int | None, shown: str) -> None:
    assert number_text(value, places=places) == shown


def test_amounts_show_their_currency_and_dates_show_as_dates() -> None:
    # given an expense whose currency is a field of its own, and a spent-on date
    payload = {"amount": 1500, "currency": "USD", "purpose": "Flights", "spent_on": "2026-03-07"}
    # when the payload is read for the page
    shown = {item.name: item.value for item in payload_items(EXPENSE, payload)}
    # then the amount carries that currency and cents, the date reads as a date
    assert shown["amount"] == "USD 1,500.00"
    assert shown["spent_on"] == "7 Mar 2026"
    assert shown["purpose"] == "Flights"
    # and a fixed currency (x-currency) shows too; a date that is not one is left as sent
    assert field_value_text(PURCHASE["properties"]["amount"], 2500000.5) == "EUR 2,500,000.50"
    assert field_value_text({"type": "string", "format": "date"}, "soon") == "soon"


@pytest.mark.django_db
def test_the_request_page_shows_the_formatted_amount(requester: User) -> None:
    # given a purchase of 1234.5 EUR
    kind = RequestTypeFactory.create(slug="purchase", payload_schema=PURCHASE, approver_group=GroupFactory())
    req = services.request_create(
        requester=requester, request_type=kind, title="Desks", payload=GOOD_PURCHASE, submit=False
    )
    client = Client()
    client.force_login(requester)
    # when its page is opened
    html = client.get(f"/requests/{req.pk}/").content.decode()
    # then the amount reads as money
    assert "EUR 1,234.50" in html
    assert ">1234.5<" not in html


def test_a_payload_built_in_python_with_keys_that_are_not_text_gets_field_errors() -> None:
    # given a payload built in Python (not parsed from JSON) with a key that is not a string
    payload = {"": None, None: None}
    # when it is checked against a schema that allows no fields
    errors = payload_errors(schema={"properties": {}}, payload=payload)
    # then each unknown key is named as a field, with no crash on ordering them
    assert errors == {
        "payload.": ["This field is not part of this request type."],
        "payload.None": ["This field is not part of this request type."],
    }
