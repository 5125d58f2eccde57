"""The new-request pages: the list of types a person may submit, and each type's form
built from its payload JSON Schema — one input per field type, inputs converted to the
schema's types, every error named on its field, HTTP 400 (never a 500) for bad input."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape
from guardian.shortcuts import assign_perm

from accounts.roles import REQUESTERS
from approvals.models import ApprovalRequest, RequestType
from approvals.schemas import PAYLOAD_MAX_BYTES
from tests.approvals.conftest import World, client_for
from tests.factories import RequestTypeFactory, UserFactory

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["amount", "seats", "currency", "purpose"],
    "properties": {
        "amount": {"type": "number", "title": "Amount", "exclusiveMinimum": 0, "maximum": 1000000},
        "seats": {"type": "integer", "title": "Seats", "minimum": 1, "maximum": 50},
        "currency": {"type": "string", "title": "Currency", "enum": ["EUR", "USD"]},
        "purpose": {
            "type": "string",
            "title": "Purpose",
            "minLength": 3,
            "maxLength": 500,
            "description": "What the money is for.",
        },
        "vendor": {"type": "string", "maxLength": 80},
        "urgent": {"type": "boolean", "title": "Urgent"},
        "spent_on": {"type": "string", "format": "date", "title": "Spent on"},
        "tags": {"type": "array", "items": {"type": "string"}, "title": "Tags"},
    },
    "additionalProperties": False,
}
POLICY: dict[str, Any] = {
    "stages": [
        {"name": "review", "approvers": {"groups": ["reviewers"]}, "rule": "any"},
        {
            "name": "finance",
            "when": {"field": "amount", "op": "gt", "value": 1000},
            "approvers": {"groups": ["finance"]},
            "rule": "any",
        },
    ]
}
GOOD: dict[str, str] = {
    "title": "Train to the fair",
    "payload.amount": "120",
    "payload.seats": "2",
    "payload.currency": "EUR",
    "payload.purpose": "Two tickets to the trade fair",
}


@pytest.fixture
def claim(world: World) -> RequestType:
    """A type with a field of every kind, reviewed by the reviewers (and finance above 1,000)."""
    return RequestTypeFactory.create(
        slug="claim",
        name="Claim",
        description="Money to be paid back.",
        payload_schema=SCHEMA,
        policy=POLICY,
    )


def _url(request_type: RequestType) -> str:
    return reverse("approvals:request_new_of_type", args=[request_type.slug])


class _Controls(HTMLParser):
    """The form controls of a page by name: tag, attributes and, for a select, its options."""

    def __init__(self) -> None:
        super().__init__()
        self.controls: dict[str, dict[str, Any]] = {}
        self.labels: dict[str, str] = {}
        self._select: str | None = None
        self._label: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in {"input", "select", "textarea"} and found.get("name"):
            name = str(found["name"])
            self.controls[name] = {"tag": tag, **found, "options": []}
            self._select = name if tag == "select" else None
        elif tag == "option" and self._select:
            self.controls[self._select]["options"].append(found.get("value"))
        elif tag == "label" and found.get("for"):
            self._label = str(found["for"])
            self.labels[self._label] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "label":
            self._label = None

    def handle_data(self, data: str) -> None:
        if self._label:
            self.labels[self._label] += data


def _controls(html: str) -> _Controls:
    parser = _Controls()
    parser.feed(html)
    return parser


def _field_block(html: str, name: str) -> str:
    """The HTML of one field's block on the form (label, input, help and errors)."""
    marker = f'data-field="{name}"'
    assert marker in html, f"no field {name} on the page"
    return html.split(marker, 1)[1].split('<div class="field', 1)[0]


# --- the list of types -------------------------------------------------------------------


@pytest.mark.django_db
def test_the_list_offers_each_type_the_person_may_submit_with_its_description(
    world: World, claim: RequestType
) -> None:
    # given a type only one person was given, one without a published policy, and a
    # retired one, besides the two open to every requester
    solo = UserFactory.create(username="sol", member_of=[Group.objects.get(name=REQUESTERS)])
    private = RequestTypeFactory.create(slug="private", name="Private", open_to_requesters=False)
    assign_perm("approvals.submit_requesttype", solo, private)
    unpublished = RequestType.objects.create(slug="plain", name="Plain", description="Not routed yet.")
    assign_perm("approvals.submit_requesttype", Group.objects.get(name=REQUESTERS), unpublished)
    RequestTypeFactory.create(slug="retired", name="Retired", is_active=False)
    # when the requester and that person open "New request"
    rita = world.client("requester").get(reverse("approvals:request_new"))
    sol = client_for(solo).get(reverse("approvals:request_new"))
    # then each sees the active types they may submit, by name, with description and form link
    assert [t.slug for t in rita.context["types"]] == ["claim", "general", "plain"]
    assert [t.slug for t in sol.context["types"]] == ["claim", "general", "plain", "private"]
    html = rita.content.decode()
    assert "Money to be paid back." in html
    assert f'href="{_url(claim)}"' in html
    # and the type without a policy says it can only be saved as a draft
    plain = html.split('data-type="plain"', 1)[1].split("</li>", 1)[0]
    assert "you can save drafts, not submit them" in plain


@pytest.mark.django_db
def test_the_list_of_types_runs_a_constant_number_of_queries(world: World) -> None:
    # given two types open to requesters
    client = world.client("requester")
    RequestTypeFactory.create(slug="one", name="One")
    client.get(reverse("approvals:request_new"))  # warm the session

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("approvals:request_new")).status_code == 200
        return len(ctx.captured_queries)

    few = count()
    # when there are eight more
    for n in range(8):
        RequestTypeFactory.create(slug=f"more-{n}", name=f"More {n}")
    # then the list costs the same number of queries
    assert count() == few


# --- the form of one type ----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "tag", "attrs", "label", "required"),
    [
        ("payload.amount", "input", {"type": "number", "step": "any", "max": "1000000"}, "Amount", True),
        ("payload.seats", "input", {"type": "number", "step": "1", "min": "1", "max": "50"}, "Seats", True),
        ("payload.currency", "select", {}, "Currency", True),
        ("payload.purpose", "textarea", {"maxlength": "500"}, "Purpose", True),
        ("payload.vendor", "input", {"type": "text", "maxlength": "80"}, "Vendor", False),
        ("payload.urgent", "input", {"type": "checkbox"}, "Urgent", False),
        ("payload.spent_on", "input", {"type": "date"}, "Spent on", False),
        ("payload.tags", "textarea", {}, "Tags", False),
    ],
    ids=["number", "integer", "enum", "long string", "short string", "boolean", "date", "array as JSON"],
)
def test_each_schema_field_gets_the_input_of_its_type(
    world: World,
    claim: RequestType,
    name: str,
    tag: str,
    attrs: dict[str, str],
    label: str,
    required: bool,
) -> None:
    # given the claim type, whose schema has a field of every kind
    # when the requester opens its form
    response = world.client("requester").get(_url(claim))
    assert response.status_code == 200
    html = response.content.decode()
    page = _controls(html)
    # then the field has the input of its type, with the schema's limits as attributes
    control = page.controls[name]
    assert control["tag"] == tag
    for attr, value in attrs.items():
        assert control.get(attr) == value, (attr, control)
    # and its label is the schema's title (or the field name), marked when required
    assert page.labels[f"id_{name}"].strip().startswith(label)
    block = _field_block(html, name)
    assert ('class="req"' in block) is required
    assert ("required" in control) is required


@pytest.mark.django_db
def test_the_form_has_title_description_draft_and_the_enum_choices(world: World, claim: RequestType) -> None:
    # given the claim type
    # when the requester opens its form
    html = world.client("requester").get(_url(claim)).content.decode()
    page = _controls(html)
    # then it asks for a title first, then the type's fields (the required ones as the schema
    # lists them, then the others by name), then the description (saving as a draft is a button)
    names = [n for n in page.controls if n != "csrfmiddlewaretoken"]
    assert names == [
        "title",
        *(f"payload.{f}" for f in ["amount", "seats", "currency", "purpose"]),
        *(f"payload.{f}" for f in ["spent_on", "tags", "urgent", "vendor"]),
        "description",
    ]
    # and the currency offers an empty choice (to be made on purpose) and the schema's values
    assert page.controls["payload.currency"]["options"] == ["", "EUR", "USD"]
    # and the field's description is shown as its help
    assert "What the money is for." in _field_block(html, "payload.purpose")


@pytest.mark.django_db
def test_the_schemas_x_order_puts_the_fields_in_order_on_every_database(world: World) -> None:
    # given a schema that orders its fields explicitly (PostgreSQL's jsonb keeps no key order)
    ordered = RequestTypeFactory.create(
        slug="ordered",
        name="Ordered",
        payload_schema={
            "type": "object",
            "x-order": ["zeta", "alpha"],
            "required": ["mid"],
            "properties": {
                "alpha": {"type": "string"},
                "mid": {"type": "string"},
                "zeta": {"type": "string"},
            },
        },
    )
    # when the requester opens its form
    page = _controls(world.client("requester").get(_url(ordered)).content.decode())
    # then the fields come in the order it gives, then the rest
    assert [n for n in page.controls if n.startswith("payload.")] == [
        "payload.zeta",
        "payload.alpha",
        "payload.mid",
    ]


@pytest.mark.django_db
def test_inputs_are_converted_to_the_schema_types_and_empty_optional_fields_left_out(
    world: World, claim: RequestType
) -> None:
    # given the requester fills in the form: numbers as text, a box ticked, a JSON list,
    # padded text, and an optional field left empty
    posted = {
        **GOOD,
        "payload.amount": "12.5",
        "payload.seats": " 3 ",
        "payload.currency": "USD",
        "payload.purpose": "  Train tickets  ",
        "payload.vendor": "",
        "payload.urgent": "on",
        "payload.spent_on": "2026-03-02",
        "payload.tags": '["travel", "q3"]',
    }
    # when they create the request
    response = world.client("requester").post(_url(claim), posted)
    # then it is submitted with each value typed as the schema says
    assert response.status_code == 302, response.content.decode()[:3000]
    req = ApprovalRequest.objects.get(title="Train to the fair")
    assert req.state == "in_review"
    assert req.payload == {
        "amount": 12.5,
        "seats": 3,
        "currency": "USD",
        "purpose": "Train tickets",
        "urgent": True,
        "spent_on": "2026-03-02",
        "tags": ["travel", "q3"],
    }
    assert type(req.payload["amount"]) is float
    assert type(req.payload["seats"]) is int
    assert response.headers["Location"] == reverse("approvals:request_detail", args=[req.pk])


@pytest.mark.django_db
def test_a_whole_number_stays_whole_and_an_unticked_box_is_false(world: World, claim: RequestType) -> None:
    # given a whole amount and the urgent box left unticked
    posted = {**GOOD, "payload.amount": "4200"}
    # when the requester creates the request
    assert world.client("requester").post(_url(claim), posted).status_code == 302
    # then the amount is the integer 4200 and urgent is false; it went on to finance above 1,000
    req = ApprovalRequest.objects.get()
    assert req.payload["amount"] == 4200
    assert type(req.payload["amount"]) is int
    assert req.payload["urgent"] is False
    assert "vendor" not in req.payload


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field_name", "typed", "message"),
    [
        ("payload.amount", "twelve", "Must be a number."),
        ("payload.amount", "12,50", "Must be a number."),
        ("payload.amount", "NaN", "Must be a number."),
        ("payload.amount", "1e999", "Must be a number."),
        ("payload.amount", "9" * 5000, "Must be a number."),
        ("payload.seats", "2.5", "Must be a whole number."),
        ("payload.seats", "two", "Must be a whole number."),
        ("payload.currency", "XYZ", "Choose one of: EUR, USD."),
        ("payload.tags", '["travel",', "Must be valid JSON"),
        ("payload.tags", "[" * 100_000, "Must be valid JSON"),
    ],
    ids=[
        "word for number",
        "decimal comma",
        "not a number",
        "overflow",
        "5000 digits",
        "fraction for integer",
        "word for integer",
        "unknown choice",
        "broken JSON",
        "JSON nested too deep",
    ],
)
def test_unconvertible_input_is_a_400_on_its_field(
    world: World, claim: RequestType, field_name: str, typed: str, message: str
) -> None:
    # given the requester typed something that cannot be the field's type
    posted = {**GOOD, field_name: typed}
    # when they post the form
    response = world.client("requester").post(_url(claim), posted)
    # then the page answers 400 with the message on that field only, and keeps what was typed
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field_name]
    assert errors[field_name][0].startswith(message)
    html = response.content.decode()
    assert escape(message) in _field_block(html, field_name)
    assert 'class="field invalid"' in html.split(f'data-field="{field_name}"')[0].rsplit("<div", 1)[1]
    # and nothing was created
    assert not ApprovalRequest.objects.exists()


@pytest.mark.django_db
def test_every_problem_is_shown_at_once(world: World, claim: RequestType) -> None:
    # given a form with a missing title, an unconvertible amount, a missing purpose and a
    # seat count out of range
    posted = {
        "title": "",
        "payload.amount": "lots",
        "payload.seats": "80",
        "payload.currency": "EUR",
        "payload.purpose": "",
    }
    # when the requester posts it
    response = world.client("requester").post(_url(claim), posted)
    # then one answer names every field and why
    assert response.status_code == 400
    assert response.context["form"].errors == {
        "title": ["A title is required."],
        "payload.amount": ["Must be a number."],
        "payload.seats": ["Must be at most 50."],
        "payload.purpose": ["This field is required."],
    }
    assert not ApprovalRequest.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field_name", "typed", "message"),
    [
        ("payload.amount", "-5", "Must be more than 0."),
        ("payload.amount", "2000000", "Must be at most 1,000,000."),
        ("payload.seats", "0", "Must be at least 1."),
        ("payload.purpose", "ab", "At least 3 characters."),
        ("payload.spent_on", "2026-02-30", "Must be a date (YYYY-MM-DD)."),
        ("payload.tags", '[1, "x"]', "Must be text."),
        ("payload.currency", "", "This field is required."),
    ],
)
def test_the_services_schema_errors_are_shown_on_their_fields(
    world: World, claim: RequestType, field_name: str, typed: str, message: str
) -> None:
    # given well-typed input the schema does not accept
    posted = {**GOOD, field_name: typed}
    # when the requester posts it (the form converts it; the service checks it)
    response = world.client("requester").post(_url(claim), posted)
    # then the page answers 400 with the service's message on that field
    assert response.status_code == 400
    assert response.context["form"].errors == {field_name: [message]}
    assert escape(message) in _field_block(response.content.decode(), field_name)
    assert not ApprovalRequest.objects.exists()


@pytest.mark.django_db
def test_a_payload_too_large_as_a_whole_is_a_form_error(world: World, claim: RequestType) -> None:
    # given a list of tags larger than a request may carry
    tags = json.dumps(["x" * 1000] * (PAYLOAD_MAX_BYTES // 1000 + 2))
    # when the requester posts it
    response = world.client("requester").post(_url(claim), {**GOOD, "payload.tags": tags})
    # then it is refused with 400 and the reason on the form as a whole
    assert response.status_code == 400
    assert response.context["form"].non_field_errors() == ["At most 64 KB of data."]
    assert "At most 64 KB of data." in response.content.decode().split('data-testid="form-errors"')[1]
    assert not ApprovalRequest.objects.exists()


@pytest.mark.django_db
def test_a_type_without_a_published_policy_cannot_be_submitted_but_can_be_drafted(world: World) -> None:
    # given a type open to requesters with no published approval policy
    plain = RequestType.objects.create(slug="plain", name="Plain")
    assign_perm("approvals.submit_requesttype", Group.objects.get(name=REQUESTERS), plain)
    client = world.client("requester")
    # when the requester submits one
    response = client.post(_url(plain), {"title": "Nowhere to go"})
    # then the form says so as a whole (400, not 500) and nothing is left behind
    assert response.status_code == 400
    assert response.context["form"].non_field_errors() == [
        "Plain has no published approval policy yet; ask an administrator."
    ]
    assert "no published approval policy" in response.content.decode()
    assert not ApprovalRequest.objects.exists()
    # when they save it as a draft instead
    saved = client.post(_url(plain), {"title": "Nowhere to go", "save_as_draft": "on"})
    # then the draft is kept
    assert saved.status_code == 302
    assert ApprovalRequest.objects.get().state == "draft"


@pytest.mark.django_db
def test_a_stage_nobody_could_approve_is_a_form_error(world: World) -> None:
    # given a type whose only stage is the requester's manager, and a requester without one
    by_manager = RequestTypeFactory.create(
        slug="by-manager",
        name="By manager",
        policy={"stages": [{"name": "manager", "approvers": {"requester_manager": True}}]},
    )
    # when the requester submits one
    response = world.client("requester").post(_url(by_manager), {"title": "Who approves?"})
    # then the form says that stage has nobody to approve it, and nothing is created
    assert response.status_code == 400
    [message] = response.context["form"].non_field_errors()
    assert "Stage 'manager' of the By manager policy has nobody who could approve it" in message
    assert not ApprovalRequest.objects.exists()
    # when they save it as a draft and open it, then its page warns before they submit
    client = world.client("requester")
    saved = client.post(_url(by_manager), {"title": "Who approves?", "save_as_draft": "on"})
    problems = client.get(saved.headers["Location"]).content.decode().split('data-testid="route-problems"')[1]
    assert "Stage manager: nobody could approve this stage: submitting would be refused." in problems


@pytest.mark.django_db
def test_a_draft_keeps_its_payload_and_shows_the_route_it_would_take(
    world: World, claim: RequestType
) -> None:
    # given the requester saves a claim of 500 as a draft
    client = world.client("requester")
    response = client.post(_url(claim), {**GOOD, "payload.amount": "500", "save_as_draft": "on"})
    assert response.status_code == 302
    req = ApprovalRequest.objects.get()
    assert (req.state, req.payload["amount"]) == ("draft", 500)
    # when they open it
    html = client.get(response.headers["Location"]).content.decode()
    # then the page shows the payload with its labels
    payload = html.split('data-testid="payload"', 1)[1].split("</dl>", 1)[0]
    assert "<dt>Amount</dt><dd>500</dd>" in payload
    assert "<dt>Purpose</dt><dd>Two tickets to the trade fair</dd>" in payload
    # and the route it would take now: review by the reviewers, finance skipped and why
    route = html.split('data-testid="route-card"', 1)[1].split("</section>", 1)[0]
    assert "Route if submitted now" in html
    assert '<g data-stage="finance" data-status="skipped">' in route
    assert '<g data-stage="review">' in route
    assert "amount is 500, so amount &gt; 1000 is false" in route
