"""Administering request types and policy versions in the Django admin: the pages, the
YAML editing, publishing, copying, simulating, and that published versions never change."""

from __future__ import annotations

import json
from html import unescape
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import User
from approvals.demo import demo_load
from approvals.models import PolicyVersion, RequestType
from approvals.publishing import policy_draft_create
from approvals.services import request_act
from tests.factories import (
    GroupFactory,
    RequestTypeFactory,
    UserFactory,
    make_approver,
    make_request,
    make_requester,
)

pytestmark = pytest.mark.django_db

LIFECYCLE_SVG = 'aria-label="Request lifecycle"'
SCHEMA = {"type": "object", "properties": {"amount": {"type": "number"}, "note": {"type": "string"}}}
GOOD_POLICY = """\
stages:
  - name: review
    approvers: {groups: [reviewers]}
    rule: any
  - name: finance
    when: {field: amount, op: gt, value: 1000}
    approvers: {groups: [reviewers]}
"""


def url(name: str, *args: Any) -> str:
    return reverse(f"admin:approvals_{name}", args=args)


def text(response: Any) -> str:
    return unescape(response.content.decode())


@pytest.fixture
def admin_user() -> User:
    return UserFactory.create(username="ada", is_staff=True, is_superuser=True)


@pytest.fixture
def admin_client(admin_user: User) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def reviewers() -> Any:
    group = GroupFactory.create(name="reviewers")
    make_approver(group, username="alex")
    return group


@pytest.fixture
def general(reviewers: Any) -> RequestType:
    """A type with a payload schema and its first policy, v1, published (one review stage)."""
    return RequestTypeFactory.create(
        slug="general", name="General", approver_group=reviewers, payload_schema=SCHEMA
    )


def draft(request_type: RequestType, document: dict[str, Any]) -> PolicyVersion:
    return policy_draft_create(request_type=request_type, document=document, actor=None)


# --- permissions -------------------------------------------------------------------------------


def test_staff_without_permissions_are_refused_everywhere(general):
    # given a staff member with no admin permissions, and a draft
    version = draft(general, {"stages": [{"name": "review", "approvers": {"groups": ["reviewers"]}}]})
    client = Client()
    client.force_login(UserFactory.create(username="stan", is_staff=True))

    # when they open or post to any of the policy pages, then each answers 403
    for method, address in [
        ("get", url("requesttype_change", general.pk)),
        ("get", url("policyversion_changelist")),
        ("get", url("policyversion_add")),
        ("get", url("policyversion_change", version.pk)),
        ("post", url("policyversion_publish", version.pk)),
        ("post", url("policyversion_new_draft", version.pk)),
        ("get", url("policyversion_simulate", version.pk)),
    ]:
        assert getattr(client, method)(address).status_code == 403, address
    # and nothing was published or copied
    version.refresh_from_db()
    assert version.status == "draft"
    assert general.policy_versions.count() == 2


# --- request types -----------------------------------------------------------------------------


def test_request_type_page_shows_its_policy_versions_diagrams_and_object_permissions(admin_client, general):
    # when the type's page is opened
    response = admin_client.get(url("requesttype_change", general.pk))

    # then it shows the lifecycle and the current policy's route as inline SVG
    assert response.status_code == 200
    page = text(response)
    assert LIFECYCLE_SVG in page
    assert 'data-stage="review"' in page
    # and links to the current version, lists the versions and offers a new draft
    current = url("policyversion_change", general.current_policy_id)
    assert f'<a href="{current}">General v1</a>' in page
    assert "Published (current)" in page
    assert url("policyversion_add") + f"?request_type={general.pk}" in page
    # and keeps guardian's object permissions (who may submit)
    assert url("requesttype_permissions", general.pk) in page
    # and the current policy is not a form field: it changes only by publishing
    assert 'name="current_policy"' not in page


def test_request_type_add_page_renders_with_the_lifecycle(admin_client):
    response = admin_client.get(url("requesttype_add"))
    assert response.status_code == 200
    assert LIFECYCLE_SVG in text(response)


def form_data(request_type: RequestType, **changes: Any) -> dict[str, Any]:
    data = {
        "name": request_type.name,
        "slug": request_type.slug,
        "description": request_type.description,
        "is_active": "on",
        "payload_schema": json.dumps(request_type.payload_schema),
    }
    return {**data, **changes}


@pytest.mark.parametrize(
    ("schema", "error"),
    [
        ('{"type": "array"}', "the payload schema must describe an object (type: object)"),
        ('{"type": "object", "properties": {"a": {"type": "strng"}}}', "properties/a/type:"),
        ('{"type": "object",', "Enter a valid JSON."),
        ("[1, 2]", "the payload schema must be a JSON object"),
    ],
)
def test_request_type_payload_schema_problems_are_errors_on_that_field(admin_client, general, schema, error):
    # when a bad schema is saved
    response = admin_client.post(
        url("requesttype_change", general.pk), form_data(general, payload_schema=schema)
    )

    # then the page comes back with the problem beside the schema field, and nothing is saved
    assert response.status_code == 200
    assert error in text(response)
    assert "payload_schema" in response.context["adminform"].form.errors
    general.refresh_from_db()
    assert general.payload_schema == SCHEMA


def test_request_type_schema_change_is_saved_and_warns_when_the_current_policy_no_longer_fits(
    admin_client, reviewers
):
    # given a type whose current policy has a condition on amount
    finance_stage = {
        "name": "finance",
        "when": {"field": "amount", "op": "gt", "value": 5},
        "approvers": {"groups": ["reviewers"]},
    }
    request_type = RequestTypeFactory.create(
        slug="claims",
        name="Claims",
        approver_group=reviewers,
        payload_schema=SCHEMA,
        policy={"stages": [finance_stage]},
    )

    # when the schema is changed to one without amount
    new_schema = {"type": "object", "properties": {"note": {"type": "string"}}}
    response = admin_client.post(
        url("requesttype_change", request_type.pk),
        form_data(request_type, payload_schema=json.dumps(new_schema)),
        follow=True,
    )

    # then it is saved, with a warning naming the condition that no longer fits
    assert response.status_code == 200
    request_type.refresh_from_db()
    assert request_type.payload_schema == new_schema
    assert "condition on 'amount': the payload schema has no such field" in text(response)


# --- policy versions: drafting -------------------------------------------------------------------


def test_policy_version_add_page_offers_a_starting_policy(admin_client, general):
    response = admin_client.get(url("policyversion_add") + f"?request_type={general.pk}")
    assert response.status_code == 200
    assert "stages:\n  - name: review" in text(response)


@pytest.mark.parametrize(
    ("document", "errors"),
    [
        ("stages: [\n  - name: review\n", ["Not valid YAML: line 2, column 3:"]),
        ("- just\n- a list\n", ["A policy is a mapping with 'stages'"]),
        (
            "stages:\n  - name: review\n    approvers: {groups: [reviewers]}\n    rule: most\n    sla: soon\n",
            [
                "stage 1 'review': 'rule' must be one of any, all, quorum (got 'most')",
                "stage 1 'review': 'sla' must be a duration such as 30m, 4h, 2d or P2DT4H (got 'soon')",
            ],
        ),
        ("", ["This field is required."]),
    ],
)
def test_policy_version_add_shows_yaml_and_structure_problems_as_form_errors(
    admin_client, general, document, errors
):
    # when a draft with a broken document is added
    response = admin_client.post(url("policyversion_add"), {"request_type": general.pk, "document": document})

    # then the form comes back (never a 500) with each problem as its own error line
    assert response.status_code == 200
    form_errors = response.context["adminform"].form.errors["document"]
    for expected in errors:
        assert any(e.startswith(expected) for e in form_errors), (expected, form_errors)
    assert len(form_errors) == len(errors)
    # and no version was made
    assert general.policy_versions.count() == 1


def test_policy_version_add_makes_a_draft_numbered_after_the_last(admin_client, admin_user, general):
    # when a good document is added
    response = admin_client.post(
        url("policyversion_add"), {"request_type": general.pk, "document": GOOD_POLICY}
    )

    # then it is draft v2, made by the admin, and the browser goes on to its page
    version = general.policy_versions.get(number=2)
    assert response.status_code == 302
    assert version.status == "draft"
    assert version.created_by == admin_user
    assert version.source == "admin"
    assert version.document["stages"][1]["when"] == {"field": "amount", "op": "gt", "value": 1000}
    general.refresh_from_db()
    assert general.current_policy.number == 1


def test_a_pasted_policy_file_keeps_only_the_policy_and_must_be_for_this_type(admin_client, general):
    # when a whole policy file for another type is pasted
    other = "request_type: expense\n" + GOOD_POLICY
    response = admin_client.post(url("policyversion_add"), {"request_type": general.pk, "document": other})
    # then it is refused
    assert response.status_code == 200
    assert "request_type: this document is for 'expense', not 'general'" in text(response)

    # when the file is for this type
    mine = "request_type: {slug: general, name: General}\n" + GOOD_POLICY
    admin_client.post(url("policyversion_add"), {"request_type": general.pk, "document": mine})
    # then the draft holds the policy alone
    assert set(general.policy_versions.get(number=2).document) == {"stages"}


def test_draft_page_shows_its_route_its_problems_and_the_buttons(admin_client, general):
    # given a draft naming a group that does not exist
    version = draft(general, {"stages": [{"name": "legal", "approvers": {"groups": ["lawyers"]}}]})

    # when its page is opened
    response = admin_client.get(url("policyversion_change", version.pk))

    # then it shows the route, each publish-time problem, and the publish, copy and simulate buttons
    page = text(response)
    assert response.status_code == 200
    assert 'data-stage="legal"' in page
    assert "<li>stage 1 'legal': group 'lawyers' does not exist</li>" in page
    assert url("policyversion_publish", version.pk) in page
    assert url("policyversion_new_draft", version.pk) in page
    assert url("policyversion_simulate", version.pk) in page
    # and the document is editable as YAML
    assert 'name="document"' in page
    assert "- name: legal" in page


def test_draft_without_problems_is_ready_to_publish_and_can_be_edited(admin_client, general):
    version = draft(general, {"stages": [{"name": "review", "approvers": {"groups": ["reviewers"]}}]})
    checksum_before = version.checksum
    assert "Ready to publish: no problems found." in text(
        admin_client.get(url("policyversion_change", version.pk))
    )

    # when its document is edited
    response = admin_client.post(url("policyversion_change", version.pk), {"document": GOOD_POLICY})

    # then the draft holds the new document, still a draft of the same number, and its checksum follows
    assert response.status_code == 302
    version.refresh_from_db()
    assert [s["name"] for s in version.document["stages"]] == ["review", "finance"]
    assert (version.number, version.status) == (2, "draft")
    assert version.checksum != checksum_before


def test_a_draft_can_be_deleted(admin_client, general):
    version = draft(general, {"stages": [{"name": "review", "approvers": {"groups": ["reviewers"]}}]})
    response = admin_client.post(url("policyversion_delete", version.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not PolicyVersion.objects.filter(pk=version.pk).exists()


# --- publishing ----------------------------------------------------------------------------------


def test_publishing_a_draft_with_problems_is_refused_and_publishes_nothing(admin_client, general):
    # given a draft with two problems
    version = draft(
        general,
        {
            "stages": [
                {"name": "legal", "approvers": {"groups": ["lawyers"]}},
                {
                    "name": "cfo",
                    "approvers": {"users": ["carl"]},
                    "when": {"field": "total", "op": "gt", "value": 1},
                },
            ]
        },
    )

    # when it is published
    response = admin_client.post(url("policyversion_publish", version.pk), follow=True)

    # then every problem is shown as an error, and nothing changed
    page = text(response)
    assert "General v2 was not published: 3 problem(s)." in page
    assert "stage 1 'legal': group 'lawyers' does not exist" in page
    assert "stage 2 'cfo': user 'carl' does not exist or is not active" in page
    assert "stage 2 'cfo': condition on 'total': the payload schema has no such field" in page
    version.refresh_from_db()
    general.refresh_from_db()
    assert version.status == "draft"
    assert general.current_policy.number == 1


def test_publishing_a_good_draft_makes_it_current_and_points_at_requests_in_flight(
    admin_client, admin_user, general, reviewers
):
    # given a request in flight under v1, and a good draft v2
    make_request(requester=make_requester(username="rita"), request_type=general, payload={"amount": 5})
    version = draft(general, {"stages": [{"name": "review", "approvers": {"groups": ["reviewers"]}}]})

    # when it is published
    response = admin_client.post(url("policyversion_publish", version.pk), follow=True)

    # then it is the type's current version, published by the admin
    general.refresh_from_db()
    version.refresh_from_db()
    assert general.current_policy == version
    assert version.status == "published"
    assert version.published_by == admin_user
    page = text(response)
    assert "General v2 is published: new requests of this type follow it." in page
    # and the admin is told how to move the request still on v1
    assert "1 request(s) in flight keep their earlier version" in page
    assert "manage.py policy_move --type general --to 2" in page


def test_publish_only_answers_post(admin_client, general):
    version = draft(general, {"stages": [{"name": "review", "approvers": {"groups": ["reviewers"]}}]})
    assert admin_client.get(url("policyversion_publish", version.pk)).status_code == 405
    version.refresh_from_db()
    assert version.status == "draft"


# --- published versions never change -------------------------------------------------------------


def test_a_published_version_is_read_only_and_cannot_be_deleted(admin_client, general):
    version = general.current_policy
    before = (version.document, version.checksum)

    # when its page is opened, then it says why it cannot change, shows the YAML, and offers no save or publish
    response = admin_client.get(url("policyversion_change", version.pk))
    page = text(response)
    assert response.status_code == 200
    assert "Published versions never change and cannot be deleted" in page
    assert 'name="document"' not in page
    assert 'name="_save"' not in page
    assert url("policyversion_publish", version.pk) not in page
    assert url("policyversion_new_draft", version.pk) in page
    assert 'data-stage="review"' in page

    # when it is changed or deleted anyway, then each is forbidden
    assert (
        admin_client.post(url("policyversion_change", version.pk), {"document": GOOD_POLICY}).status_code
        == 403
    )
    assert admin_client.get(url("policyversion_delete", version.pk)).status_code == 403
    assert admin_client.post(url("policyversion_delete", version.pk), {"post": "yes"}).status_code == 403
    # and the list offers no bulk delete (it would bypass the model's refusal)
    changelist = admin_client.get(url("policyversion_changelist"))
    assert "delete_selected" not in text(changelist)
    # and publishing it again says so
    again = admin_client.post(url("policyversion_publish", version.pk), follow=True)
    assert "General v1 is already published." in text(again)
    version.refresh_from_db()
    assert (version.document, version.checksum) == before


def test_new_draft_from_a_version_copies_its_document(admin_client, admin_user, general):
    v1 = general.current_policy

    # when a new draft is made from v1
    response = admin_client.post(url("policyversion_new_draft", v1.pk))

    # then v2 is a draft with v1's document, and the admin lands on its page
    v2 = general.policy_versions.get(number=2)
    assert response.status_code == 302
    assert response["Location"] == url("policyversion_change", v2.pk)
    assert (v2.status, v2.document, v2.created_by, v2.source) == (
        "draft",
        v1.document,
        admin_user,
        "admin, from v1",
    )


# --- simulation ----------------------------------------------------------------------------------


@pytest.fixture
def demo() -> dict[str, Any]:
    demo_load()
    expense = RequestType.objects.get(slug="expense")
    return {"expense": expense, "rita": User.objects.get(username="rita")}


def test_simulate_shows_the_route_with_skipped_stages_and_why(admin_client, demo):
    version = demo["expense"].current_policy
    address = url("policyversion_simulate", version.pk)
    # given the simulation page
    empty = admin_client.get(address)
    assert empty.status_code == 200
    assert 'data-stage="finance"' in text(empty)

    # when a small claim by rita is simulated
    response = admin_client.post(
        address,
        {"requester": demo["rita"].pk, "payload": '{"amount": 500, "currency": "EUR", "purpose": "Lunch"}'},
    )

    # then the route lists her manager, and finance and the CFO skipped with the reason
    page = text(response)
    assert response.status_code == 200
    assert "<li>1. manager: Maria Manager; any one of them</li>" in page
    assert "<li>2. finance: skipped (amount is 500, so amount > 1000 is false)</li>" in page
    assert "<li>3. cfo: skipped (amount is 500, so amount > 10000 is false)</li>" in page
    # and the diagram greys both skipped stages, with the reason beneath
    assert page.count('data-status="skipped"') == 2
    assert '<g data-stage="finance" data-status="skipped">' in page
    assert "amount is 500, so amount > 1000 is false" in page.split('data-stage="finance"')[1]
    assert "Submitting this payload would be refused" not in page

    # when the payload lacks required fields, then the route is still shown, with what the form would refuse
    response = admin_client.post(address, {"requester": demo["rita"].pk, "payload": '{"amount": 20000}'})
    page = text(response)
    assert "<li>3. cfo: Carl Chief-Financial; any one of them</li>" in page
    assert "<li>payload.currency: This field is required.</li>" in page


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        ("{amount: 1}", "Not valid JSON: Expecting property name enclosed in double quotes"),
        ("[1, 2]", "The payload must be a JSON object"),
        ("", "This field is required."),
    ],
)
def test_simulate_refuses_a_payload_that_is_not_a_json_object(admin_client, demo, payload, error):
    version = demo["expense"].current_policy
    response = admin_client.post(
        url("policyversion_simulate", version.pk), {"requester": demo["rita"].pk, "payload": payload}
    )
    assert response.status_code == 200
    assert error in text(response)
    assert 'data-status="skipped"' not in text(response)


# --- requests ------------------------------------------------------------------------------------


def test_request_page_shows_revisions_decisions_and_diagrams_read_only(admin_client, demo):
    # given the demo's team offsite claim: the manager approved, finance is next
    offsite = demo["expense"].requests.get(title="Team offsite")

    # when its admin page is opened
    response = admin_client.get(url("approvalrequest_change", offsite.pk))

    # then it shows the revision, maria's decision, and where it stands on both diagrams
    page = text(response)
    assert response.status_code == 200
    assert "Good value." in page
    assert "first submission" in page
    assert '<g data-state="in_review" data-current="true">' in page
    assert '<g data-stage="manager" data-status="met">' in page
    assert '<g data-stage="finance" data-status="current">' in page
    # (the CFO stage is not reached yet: its skip is foreseen, and recorded when reached)
    assert '<g data-stage="cfo">' in page
    assert "will be skipped: amount is 4200" in page
    # and nothing can be changed there
    assert 'name="_save"' not in page
    assert admin_client.post(url("approvalrequest_change", offsite.pk), {}).status_code == 403


def test_request_page_lists_every_decision_and_the_final_state(admin_client, demo):
    # given finance approves the offsite claim
    offsite = demo["expense"].requests.get(title="Team offsite")
    request_act(
        request_id=offsite.pk, action="approve", actor=User.objects.get(username="fiona"), comment="Paid"
    )

    # when the request is opened, then both decisions are listed, and it shows as approved
    page = text(admin_client.get(url("approvalrequest_change", offsite.pk)))
    assert "Good value." in page
    assert "Paid" in page
    assert '<g data-state="approved" data-current="true">' in page
