"""Every page and POST endpoint against every role: who gets in, who is refused, who sees nothing.

Reading the table: one row per endpoint, one column per role. 302 on a POST means it
worked (or, for anonymous, was sent to log in); 403 is a visible refusal; 404 means
the person may not know the request exists.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from accounts.models import Delegation, User
from approvals.delegations import delegation_create
from approvals.models import ApprovalRequest
from tests.approvals.conftest import ROLES, World
from tests.factories import RequestTypeFactory, UserFactory
from workflows.models import AuditEntry, OutboxEvent


@dataclass
class Call:
    method: str
    url: str
    data: dict[str, Any] = field(default_factory=dict)
    # The request a POST may change; it must stay untouched unless the call succeeds.
    target: ApprovalRequest | None = None
    # Where a successful POST sends the browser.
    success_url: str | None = None
    # For a POST that changes something other than a request: a fingerprint of it, which
    # must change exactly when the call succeeds.
    state: Callable[[], Any] | None = None


def _act(
    req_attr: str, action: str, comment: str = "", *, confirmed: bool = False
) -> Callable[[World], Call]:
    """A post of `action`; `confirmed` as sent by the confirmation step of irreversible ones."""

    def build(world: World) -> Call:
        req: ApprovalRequest = getattr(world, req_attr)
        data = {"action": action, "version": req.version, "comment": comment}
        if confirmed:
            data["confirmed"] = "on"
        detail = reverse("approvals:request_detail", args=[req.pk])
        return Call("post", reverse("approvals:request_action", args=[req.pk]), data, req, detail)

    return build


def _claim(world: World) -> Call:
    req = world.in_review
    handoff = world.open_handoff(req)
    url = reverse("approvals:handoff_claim", args=[handoff.pk])
    return Call("post", url, {"next": "/inbox/"}, req, "/inbox/")


def _unclaim(world: World) -> Call:
    handoff = world.claimed_handoff
    req = ApprovalRequest.objects.get(pk=handoff.object_id)
    url = reverse("approvals:handoff_unclaim", args=[handoff.pk])
    return Call("post", url, {"next": "/inbox/"}, req, "/inbox/")


def _new_url(world: World) -> str:
    return reverse("approvals:request_new_of_type", args=[world.request_type.slug])


def _new_post(world: World) -> Call:
    return Call("post", _new_url(world), {"title": "A chair", "description": ""})


def _edit(world: World, method: str) -> Call:
    req = world.draft
    url = reverse("approvals:request_edit", args=[req.pk])
    data = (
        {"title": "A better draft", "version": req.version, "save_as_draft": "on"} if method == "post" else {}
    )
    return Call(
        method,
        url,
        data,
        req if method == "post" else None,
        reverse("approvals:request_detail", args=[req.pk]),
    )


def _comment(world: World) -> Call:
    req = world.in_review
    url = reverse("approvals:request_comment", args=[req.pk])
    return Call(
        "post",
        url,
        {"body": "Is there a cheaper one?"},
        req,
        reverse("approvals:request_detail", args=[req.pk]) + "#thread",
    )


def _download(world: World) -> Call:
    return Call("get", reverse("approvals:attachment_download", args=[world.attachment.pk]))


def _get(name: str) -> Callable[[World], Call]:
    return lambda world: Call("get", reverse(name))


def _reassign(*, from_team: bool) -> Callable[[World], Call]:
    def build(world: World) -> Call:
        req = world.in_review
        data = {"handoffs": [world.open_handoff(req).pk], "to_group": "finance", "reason": "Finance knows it"}
        if from_team:
            return Call("post", reverse("approvals:team_reassign"), data, req, reverse("approvals:team"))
        detail = reverse("approvals:request_detail", args=[req.pk])
        return Call("post", reverse("approvals:request_reassign", args=[req.pk]), data, req, detail)

    return build


def _deputy() -> User:
    return UserFactory.create(username="dan", first_name="Dan", last_name="Deputy")


def _delegation_post(delegator: str | None) -> Callable[[World], Call]:
    def build(world: World) -> Call:
        _deputy()
        today = timezone.localdate()
        data = {
            "delegate": "dan",
            "starts_at": today.isoformat(),
            "ends_at": (today + timedelta(days=3)).isoformat(),
            "coverage": "all",
            "reason": "Holiday",
        }
        if delegator:
            data["delegator"] = world.user(delegator).username
        url = reverse("approvals:delegations")
        return Call(
            "post", url, data, success_url=url, state=lambda: sorted(Delegation.objects.values_list("pk"))
        )

    return build


def _revoke(method: str) -> Callable[[World], Call]:
    def build(world: World) -> Call:
        alex = world.user("approver")
        now = timezone.now()
        delegation = delegation_create(
            actor=alex, delegator=alex, delegate=_deputy(), starts_at=now, ends_at=now + timedelta(days=3)
        )
        url = reverse("approvals:delegation_revoke", args=[delegation.pk])

        def state() -> Any:
            return Delegation.objects.get(pk=delegation.pk).revoked_at

        return Call(method, url, success_url=reverse("approvals:delegations"), state=state)

    return build


ENDPOINTS: dict[str, Callable[[World], Call]] = {
    "home": _get("approvals:home"),
    "inbox": _get("approvals:inbox"),
    "notifications": _get("approvals:notifications"),
    "my_requests": _get("approvals:my_requests"),
    "all_requests": _get("approvals:all_requests"),
    "new_request GET": _get("approvals:request_new"),
    "new_request POST (list)": lambda w: Call("post", reverse("approvals:request_new")),
    "new_request form GET": lambda w: Call("get", _new_url(w)),
    "new_request POST": _new_post,
    "request_detail": lambda w: Call("get", reverse("approvals:request_detail", args=[w.in_review.pk])),
    "approve": _act("in_review", "approve", "Fine"),
    "reject": _act("in_review", "reject", "Too dear", confirmed=True),
    "request_changes": _act("in_review", "request_changes", "Add a quote"),
    "submit (draft)": _act("draft", "submit"),
    "resubmit (changes requested)": _act("changes_requested", "resubmit", "Quote added"),
    "withdraw": _act("in_review", "withdraw", confirmed=True),
    "cancel": _act("in_review", "cancel", "No budget", confirmed=True),
    "reject unconfirmed (asks first)": _act("in_review", "reject", "Too dear"),
    "edit draft GET": lambda w: _edit(w, "get"),
    "edit draft POST": lambda w: _edit(w, "post"),
    "comment POST": _comment,
    "attachment download": _download,
    "claim": _claim,
    "unclaim (claimed by approver)": _unclaim,
    "team": _get("approvals:team"),
    "team reassign POST": _reassign(from_team=True),
    "request reassign POST": _reassign(from_team=False),
    "delegations": _get("approvals:delegations"),
    "delegation POST (own)": _delegation_post(None),
    "delegation POST (for Alex)": _delegation_post("approver"),
    "delegation revoke GET (Alex's)": _revoke("get"),
    "delegation revoke POST (Alex's)": _revoke("post"),
    "login GET": _get("login"),
    "logout POST": lambda w: Call("post", reverse("logout")),
    "admin index": _get("admin:index"),
}

# fmt: off
#                                  anonymous requester approver other_appr manager auditor admin outsider
MATRIX: dict[str, tuple[int, ...]] = {
    "home":                          (302, 200, 200, 200, 200, 200, 200, 200),
    "inbox":                         (302, 200, 200, 200, 200, 200, 200, 200),
    "notifications":                 (302, 200, 200, 200, 200, 200, 200, 200),
    "my_requests":                   (302, 200, 200, 200, 200, 200, 200, 200),
    "all_requests":                  (302, 403, 403, 403, 200, 200, 200, 403),
    "new_request GET":               (302, 200, 403, 403, 403, 403, 200, 403),
    "new_request POST (list)":       (302, 405, 405, 405, 405, 405, 405, 405),
    "new_request form GET":          (302, 200, 403, 403, 403, 403, 200, 403),
    "new_request POST":              (302, 302, 403, 403, 403, 403, 302, 403),
    "request_detail":                (302, 200, 200, 404, 200, 200, 200, 404),
    "approve":                       (302, 403, 302, 404, 403, 403, 403, 404),
    "reject":                        (302, 403, 302, 404, 403, 403, 403, 404),
    "request_changes":               (302, 403, 302, 404, 403, 403, 403, 404),
    "submit (draft)":                (302, 302, 404, 404, 403, 403, 403, 404),
    "resubmit (changes requested)":  (302, 302, 403, 404, 403, 403, 403, 404),
    "withdraw":                      (302, 302, 403, 404, 403, 403, 403, 404),
    "cancel":                        (302, 403, 403, 404, 302, 403, 302, 404),
    "reject unconfirmed (asks first)": (302, 403, 200, 404, 403, 403, 403, 404),
    "edit draft GET":                (302, 200, 404, 404, 403, 403, 403, 404),
    "edit draft POST":               (302, 302, 404, 404, 403, 403, 403, 404),
    "comment POST":                  (302, 302, 302, 404, 302, 403, 302, 404),
    "attachment download":           (302, 200, 200, 404, 200, 200, 200, 404),
    "claim":                         (302, 403, 302, 404, 403, 403, 403, 404),
    "unclaim (claimed by approver)": (302, 403, 302, 404, 302, 403, 302, 404),
    "team":                          (302, 403, 403, 403, 200, 403, 200, 403),
    "team reassign POST":            (302, 403, 403, 403, 302, 403, 302, 403),
    "request reassign POST":         (302, 403, 403, 404, 302, 403, 302, 404),
    "delegations":                   (302, 200, 200, 200, 200, 200, 200, 200),
    "delegation POST (own)":         (302, 302, 302, 302, 302, 302, 302, 302),
    "delegation POST (for Alex)":    (302, 403, 302, 403, 302, 403, 302, 403),
    "delegation revoke GET (Alex's)": (302, 404, 200, 404, 200, 403, 200, 404),
    "delegation revoke POST (Alex's)": (302, 404, 302, 404, 302, 403, 302, 404),
    "login GET":                     (200, 200, 200, 200, 200, 200, 200, 200),
    "logout POST":                   (302, 302, 302, 302, 302, 302, 302, 302),
    "admin index":                   (302, 302, 302, 302, 302, 302, 200, 302),
}
# fmt: on


def _cases() -> list[Any]:
    assert set(MATRIX) == set(ENDPOINTS), "every endpoint needs a row in the table"
    return [
        pytest.param(endpoint, role, status, id=f"{endpoint}-{role}")
        for endpoint, statuses in MATRIX.items()
        for role, status in zip(ROLES, statuses, strict=True)
    ]


def _fingerprint(req: ApprovalRequest) -> tuple[Any, ...]:
    req.refresh_from_db()
    return (req.state, req.version, req.audit_seq, AuditEntry.objects.for_instance(req).count())


@pytest.mark.django_db
@pytest.mark.parametrize(("endpoint", "role", "expected"), _cases())
def test_endpoint_answers_each_role(world: World, endpoint: str, role: str, expected: int) -> None:
    # given the endpoint's request (made in the state it needs) and a client of this role
    call = ENDPOINTS[endpoint](world)
    client = world.client(role)
    before = _fingerprint(call.target) if call.target is not None else None
    outbox_before = OutboxEvent.objects.count()
    state_before = call.state() if call.state is not None else None

    # when the role calls it
    response = getattr(client, call.method)(call.url, call.data)

    # then it answers as the table says
    assert response.status_code == expected, response.content.decode()[:2000]
    location = response.headers.get("Location", "")
    if role == "anonymous" and expected == 302 and endpoint != "logout POST":
        login = reverse("admin:login") if endpoint == "admin index" else reverse("login")
        assert location.startswith(f"{login}?next="), location
    succeeded = role != "anonymous" and call.method == "post" and expected == 302
    if call.target is not None:
        # and a POST changes its request only when it succeeds: refusals leave nothing behind
        changed = _fingerprint(call.target) != before
        assert changed is succeeded
        if succeeded:
            assert location == call.success_url
        else:
            assert OutboxEvent.objects.count() == outbox_before
    if call.state is not None:
        # and a POST changes what it is about only when it succeeds
        assert (call.state() != state_before) is succeeded
        if succeeded:
            assert location == call.success_url
    if endpoint == "new_request POST":
        created = ApprovalRequest.objects.filter(title="A chair")
        assert created.exists() is succeeded
        if succeeded:
            assert location == reverse("approvals:request_detail", args=[created.get().pk])


@pytest.mark.django_db
@pytest.mark.parametrize("role", ROLES[1:])
def test_nav_links_match_what_each_role_may_open(world: World, role: str) -> None:
    # given a logged-in person of this role
    client = world.client(role)
    # when they open the home page
    html = client.get(reverse("approvals:home")).content.decode()
    # then "All requests" is offered exactly to those who may see it, and "New request" to
    # those whose role is to submit
    sees_all = role in {"manager", "auditor", "admin"}
    assert (reverse("approvals:all_requests") in html) is sees_all
    may_submit = role in {"requester", "admin"}
    assert ('data-testid="nav-new"' in html) is may_submit
    # and the team view to those who manage, delegations to everyone
    assert (reverse("approvals:team") in html) is (role in {"manager", "admin"})
    assert reverse("approvals:delegations") in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("approvals:request_action", "request"),
        ("approvals:handoff_claim", "handoff"),
        ("approvals:handoff_unclaim", "handoff"),
        ("logout", None),
    ],
)
def test_post_endpoints_refuse_get(world: World, name: str, args: str | None) -> None:
    # given a logged-in approver and a request in review
    req = world.in_review
    pk = {"request": req.pk, "handoff": world.open_handoff(req).pk, None: None}[args]
    url = reverse(name, args=[pk] if pk is not None else [])
    # when they GET an endpoint that only takes POST
    response = world.client("approver").get(url)
    # then it answers 405 and changes nothing
    assert response.status_code == 405
    assert _fingerprint(req)[0] == "in_review"


@pytest.mark.django_db
def test_unknown_request_and_handoff_answer_404(world: World) -> None:
    # given an admin, who may see everything
    client = world.client("admin")
    # when they ask for a request or handoff that does not exist
    # then every endpoint answers 404
    assert client.get(reverse("approvals:request_detail", args=[999999])).status_code == 404
    url = reverse("approvals:request_action", args=[999999])
    assert client.post(url, {"action": "cancel", "version": 1}).status_code == 404
    assert client.post(reverse("approvals:handoff_claim", args=[999999])).status_code == 404
    assert client.post(reverse("approvals:handoff_unclaim", args=[999999])).status_code == 404


# --- login / logout -------------------------------------------------------------------


@pytest.mark.django_db
def test_login_with_the_right_password_opens_home_and_logout_ends_the_session(world: World) -> None:
    # given a person with a password and a fresh browser
    client = Client()
    # when they log in with the wrong password
    wrong = client.post(reverse("login"), {"username": "rita", "password": "nope"})
    # then the form says so and they stay anonymous
    assert wrong.status_code == 200
    assert wrong.context["form"].non_field_errors()
    assert client.get(reverse("approvals:home")).status_code == 302
    # when they log in with the right one
    right = client.post(reverse("login"), {"username": "rita", "password": "pw"})
    # then they land on home, logged in
    assert right.status_code == 302
    assert right.headers["Location"] == reverse("approvals:home")
    assert client.get(reverse("approvals:home")).status_code == 200
    # when they log out
    assert client.post(reverse("logout")).status_code == 302
    # then home sends them to log in again
    assert client.get(reverse("approvals:home")).headers["Location"].startswith(reverse("login"))


# --- CSRF -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_post_without_csrf_token_is_refused_and_changes_nothing(world: World) -> None:
    # given a logged-in requester and approver whose browsers enforce CSRF checks
    req = world.in_review
    requester = Client(enforce_csrf_checks=True)
    requester.force_login(world.user("requester"))
    approver = Client(enforce_csrf_checks=True)
    approver.force_login(world.user("approver"))
    before = _fingerprint(req)
    # when they post without the token
    new = requester.post(_new_url(world), {"title": "Sneaky"})
    act = approver.post(
        reverse("approvals:request_action", args=[req.pk]),
        {"action": "approve", "version": req.version, "comment": "ok"},
    )
    claim = approver.post(reverse("approvals:handoff_claim", args=[world.open_handoff(req).pk]))
    # then every POST is refused with 403 and nothing was made or changed
    assert (new.status_code, act.status_code, claim.status_code) == (403, 403, 403)
    assert not ApprovalRequest.objects.filter(title="Sneaky").exists()
    assert _fingerprint(req) == before
    assert world.open_handoff(req).assignee_id is None


@pytest.mark.django_db
def test_post_with_the_page_csrf_token_is_accepted(world: World) -> None:
    # given a requester whose browser enforces CSRF and who opened the form (getting the token)
    client = Client(enforce_csrf_checks=True)
    client.force_login(world.user("requester"))
    client.get(_new_url(world))
    token = client.cookies["csrftoken"].value
    # when they post the form with the token
    response = client.post(_new_url(world), {"title": "With token", "csrfmiddlewaretoken": token})
    # then the request is created
    assert response.status_code == 302
    assert ApprovalRequest.objects.filter(title="With token", state="in_review").exists()


# --- the new-request form ----------------------------------------------------------------
# (the payload fields built from a type's schema: tests/approvals/test_payload_forms.py)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "field_name", "message"),
    [
        ({"title": ""}, "title", "A title is required."),
        ({"title": "   "}, "title", "A title is required."),
        ({"title": "x" * 201}, "title", "At most 200 characters (got 201)."),
    ],
    ids=["title missing", "title blank", "title too long"],
)
def test_new_request_form_errors_name_the_field(
    world: World, data: dict[str, str], field_name: str, message: str
) -> None:
    # given a requester on the new-request form of a type
    client = world.client("requester")
    posted = {"title": "A lamp", **data}
    # when they post it with one bad field
    response = client.post(_new_url(world), posted)
    # then the page answers 400 with the error on that field, in the page next to it
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert list(errors) == [field_name]
    assert message in errors[field_name][0]
    html = response.content.decode()
    field_html = html.split(f'for="id_{field_name}"', 1)[1].split('<div class="field', 1)[0]
    assert escape(errors[field_name][0]) in field_html
    # and no request was created
    assert not ApprovalRequest.objects.exists()


@pytest.mark.django_db
def test_a_type_the_requester_may_not_submit_is_refused_and_not_listed(world: World) -> None:
    # given a type closed to requesters
    closed = RequestTypeFactory.create(slug="secret", name="Secret", open_to_requesters=False)
    client = world.client("requester")
    # when the requester lists the types, then it is not offered
    listed = client.get(reverse("approvals:request_new"))
    assert [t.slug for t in listed.context["types"]] == ["general"]
    assert "Secret" not in listed.content.decode()
    # when they open its form or post it anyway
    url = reverse("approvals:request_new_of_type", args=[closed.slug])
    opened = client.get(url)
    posted = client.post(url, {"title": "Let me in"})
    # then both are refused with 403 saying why, and nothing is created
    assert (opened.status_code, posted.status_code) == (403, 403)
    assert "You may not submit Secret requests." in posted.content.decode()
    assert not ApprovalRequest.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("slug", ["nope", "retired"])
def test_an_unknown_or_retired_type_answers_404(world: World, slug: str) -> None:
    # given a retired (inactive) type the requester could once submit
    RequestTypeFactory.create(slug="retired", name="Retired", is_active=False)
    # when the requester opens the form of an unknown or retired type
    response = world.client("requester").get(reverse("approvals:request_new_of_type", args=[slug]))
    # then there is no such form
    assert response.status_code == 404


@pytest.mark.django_db
def test_save_as_draft_creates_a_draft_the_requester_can_submit_later(world: World) -> None:
    # given a requester
    client = world.client("requester")
    # when they save a new request as a draft
    response = client.post(_new_url(world), {"title": "Later", "save_as_draft": "on"})
    # then it is a draft, offered to be submitted, and waits for nobody
    req = ApprovalRequest.objects.get(title="Later")
    assert req.state == "draft"
    page = client.get(response.headers["Location"])
    assert [name for name, _ in page.context["actions"]] == ["submit", "withdraw"]
    assert "saved as a draft" in page.content.decode()
    assert not page.context["page"].holders
