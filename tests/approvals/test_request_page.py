"""The request page: who holds it, its history, the actions each viewer may take, and how a
refused action is shown (400 on the field, 409 as a clear message, nothing half-made)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from accounts.models import Delegation
from approvals.models import ApprovalRequest
from approvals.services import request_act
from tests.approvals.conftest import World
from tests.factories import UserFactory
from workflows.models import AuditEntry, Handoff, OutboxEvent


def _detail(req: ApprovalRequest) -> str:
    return reverse("approvals:request_detail", args=[req.pk])


def _act_url(req: ApprovalRequest) -> str:
    return reverse("approvals:request_action", args=[req.pk])


def _section(html: str, testid: str) -> str:
    """The HTML of the element marked data-testid=`testid`, up to the end of its card."""
    assert f'data-testid="{testid}"' in html, f"no {testid} on the page"
    return html.split(f'data-testid="{testid}"', 1)[1].split("</section>", 1)[0]


def _history(html: str) -> list[dict[str, str]]:
    """The history list as rows: action, actor, principal, move, comment, when."""

    def part(item: str, pattern: str) -> str:
        found = re.search(pattern, item, re.S)
        return found.group(1).strip() if found else ""

    return [
        {
            "action": part(item, r'data-action="([^"]+)"'),
            "when": part(item, r'<time datetime="([^"]+)"'),
            "actor": part(item, r'<strong class="actor">(.*?)</strong>'),
            "principal": part(item, r'<strong class="principal">(.*?)</strong>'),
            "move": part(item, r'<span class="move">(.*?)</span>'),
            "comment": part(item, r'<blockquote class="comment">(.*?)</blockquote>'),
        }
        for item in _section(html, "history").split("<li ")[1:]
    ]


def _snapshot(req: ApprovalRequest) -> tuple[object, ...]:
    req.refresh_from_db()
    return (
        req.state,
        req.version,
        AuditEntry.objects.for_instance(req).count(),
        Handoff.objects.for_instance(req).open().count(),
        OutboxEvent.objects.count(),
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "buttons"),
    [
        ("requester", ["Withdraw"]),
        ("approver", ["Approve", "Reject", "Ask for changes"]),
        ("manager", ["Cancel request"]),
        ("admin", ["Cancel request"]),
        ("auditor", []),
    ],
)
def test_each_viewer_is_offered_exactly_the_actions_they_may_take(
    world: World, role: str, buttons: list[str]
) -> None:
    # given a request in review
    req = world.in_review
    # when this person opens its page
    response = world.client(role).get(_detail(req))
    html = response.content.decode()
    # then they see the buttons of what they may do now, and no form at all when nothing
    assert response.status_code == 200
    shown = [label for _, label in response.context["actions"]]
    assert shown == buttons
    if buttons:
        actions = _section(html, "actions")
        for label in buttons:
            assert f">{label}</button>" in actions
    else:
        assert 'data-testid="actions"' not in html
        assert _act_url(req) not in html


@pytest.mark.django_db
def test_page_shows_who_holds_it_and_the_full_history(world: World) -> None:
    # given a request in review that Alex claimed
    req = world.in_review
    approver = world.client("approver")
    handoff = world.open_handoff(req)
    approver.post(reverse("approvals:handoff_claim", args=[handoff.pk]), {"next": _detail(req)})
    # when the requester looks at it while it is claimed
    html = world.client("requester").get(_detail(req)).content.decode()
    # then it shows Alex holds it for the reviewers group
    assert "Alex (from reviewers)" in _section(html, "held-by")
    # when Alex approves it with a comment (a claim moves no state: the version is unchanged)
    response = approver.post(
        _act_url(req), {"action": "approve", "version": req.version, "comment": "Within budget"}
    )
    assert response.status_code == 302
    html = world.client("requester").get(_detail(req)).content.decode()
    # then it is approved and nobody holds it any more
    assert 'data-testid="state">Approved<' in html
    assert "nobody (approved)" in _section(html, "held-by")
    # and the history lists every step: who, from what to what, and why
    rows = _history(html)
    assert [(r["action"], r["actor"], r["move"], r["comment"]) for r in rows] == [
        ("create", "Rita", "— → Draft", ""),
        ("submit", "Rita", "Draft → In review", ""),
        ("claim", "Alex", "", ""),
        ("approve", "Alex", "In review → Approved", "Within budget"),
    ]
    assert all(r["when"] for r in rows)


@pytest.mark.django_db
def test_history_names_the_person_someone_acted_for(world: World) -> None:
    # given Alex is out of office and has delegated his work to Dan
    dan = UserFactory.create(username="dan", first_name="Dan", last_name="Deputy")
    Delegation.objects.create(
        delegator=world.user("approver"), delegate=dan, starts_at=timezone.now() - timedelta(hours=1)
    )
    req = world.in_review
    # when Dan approves on Alex's behalf
    request_act(
        request_id=req.pk,
        action="approve",
        actor=dan,
        on_behalf_of=world.user("approver"),
        comment="For Alex",
    )
    # then the page's history names both of them
    html = world.client("auditor").get(_detail(req)).content.decode()
    approve = _history(html)[-1]
    assert (approve["action"], approve["actor"], approve["principal"]) == ("approve", "Dan Deputy", "Alex")
    assert "on behalf of" in html


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("action", "message"),
    [("reject", "Say why you reject it."), ("request_changes", "Say what should change.")],
)
def test_decision_without_a_required_comment_is_shown_on_the_comment_field(
    world: World, action: str, message: str
) -> None:
    # given a request in review, and its approver on its page
    req = world.in_review
    before = _snapshot(req)
    # when the approver rejects it (or asks for changes) with a blank comment
    response = world.client("approver").post(
        _act_url(req), {"action": action, "version": req.version, "comment": "   "}
    )
    # then the page answers 400 with the error on the comment field, and nothing changed
    assert response.status_code == 400
    assert response.context["form"].errors == {"comment": [message]}
    assert (
        escape(message) in _section(response.content.decode(), "comment-field").split("</div>\n    <div")[0]
    )
    assert _snapshot(req) == before
    # and the buttons are still there to try again
    assert [name for name, _ in response.context["actions"]] == ["approve", "reject", "request_changes"]


@pytest.mark.django_db
def test_a_stale_version_is_a_409_with_a_clear_message_and_the_comment_kept(world: World) -> None:
    # given the approver loaded the page, then the request moved on without him (another
    # reviewer asked for changes and the requester resubmitted: in review again, newer version)
    req = world.in_review
    loaded_version = req.version
    request_act(
        request_id=req.pk, action="request_changes", actor=world.user("approver"), comment="Add a quote"
    )
    request_act(request_id=req.pk, action="resubmit", actor=world.user("requester"), comment="Added")
    before = _snapshot(req)
    # when the approver approves from the page they loaded earlier
    response = world.client("approver").post(
        _act_url(req), {"action": "approve", "version": loaded_version, "comment": "Looks fine"}
    )
    # then it answers 409, says the request changed and nothing was done, keeps the comment,
    # and offers the form again at the current version
    assert response.status_code == 409
    html = response.content.decode()
    problem = _section(html, "problem")
    assert f"{req.reference} changed since you loaded it" in problem
    assert "Nothing was done" in problem
    assert ">Looks fine</textarea>" in html
    assert f'name="version" value="{req.version}"' in html
    assert _snapshot(req) == before


@pytest.mark.django_db
def test_an_action_from_the_wrong_state_is_a_409_and_changes_nothing(world: World) -> None:
    # given a request the approver already approved
    req = world.in_review
    approver = world.client("approver")
    assert (
        approver.post(_act_url(req), {"action": "approve", "version": 2, "comment": "ok"}).status_code == 302
    )
    req.refresh_from_db()
    before = _snapshot(req)
    # when he approves it again (a second tab, with the current version)
    response = approver.post(_act_url(req), {"action": "approve", "version": req.version, "comment": "again"})
    # then it answers 409 with a message naming the state, and nothing changes
    assert response.status_code == 409
    problem = _section(response.content.decode(), "problem")
    assert f"You cannot approve {req.reference}: it is Approved now. Nothing was done." in problem
    assert _snapshot(req) == before


@pytest.mark.django_db
def test_a_forbidden_action_is_a_403_with_the_reason(world: World) -> None:
    # given a request in review that its requester can see
    req = world.in_review
    before = _snapshot(req)
    # when the requester tries to approve their own request
    response = world.client("requester").post(
        _act_url(req), {"action": "approve", "version": req.version, "comment": "me"}
    )
    # then it answers 403 saying why, and nothing changes
    assert response.status_code == 403
    assert "You cannot decide on your own request." in _section(response.content.decode(), "problem")
    assert _snapshot(req) == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("posted", "field_name"),
    [
        ({"action": "approve", "comment": "ok"}, "version"),
        ({"action": "launch", "version": "2"}, "action"),
        ({"action": "approve", "version": "2", "comment": "x" * 5001}, "comment"),
    ],
    ids=["no version", "unknown action", "comment too long"],
)
def test_a_malformed_action_post_is_a_400_naming_the_field(
    world: World, posted: dict[str, str], field_name: str
) -> None:
    # given a request in review
    req = world.in_review
    before = _snapshot(req)
    # when the approver posts a malformed action
    response = world.client("approver").post(_act_url(req), posted)
    # then it answers 400 naming the field, and nothing changes
    assert response.status_code == 400
    assert field_name in response.context["form"].errors
    assert _snapshot(req) == before


@pytest.mark.django_db
def test_resubmission_with_too_long_a_title_is_shown_on_the_title_field(world: World) -> None:
    # given a request sent back for changes
    req = world.changes_requested
    before = _snapshot(req)
    # when the requester resubmits it with a 201-character title
    response = world.client("requester").post(
        _act_url(req), {"action": "resubmit", "version": req.version, "title": "t" * 201}
    )
    # then it answers 400 with the error on the title, and nothing changes
    assert response.status_code == 400
    assert "title" in response.context["form"].errors
    assert _snapshot(req) == before


@pytest.mark.django_db
def test_a_double_submit_with_the_same_form_acts_once(world: World) -> None:
    # given the approver's page with its one-time idempotency key
    req = world.in_review
    key = world.client("approver").get(_detail(req)).context["idempotency_key"]
    posted = {"action": "approve", "version": req.version, "comment": "ok", "idempotency_key": key}
    # when the same form is posted twice (a double click)
    first = world.client("approver").post(_act_url(req), posted)
    second = world.client("approver").post(_act_url(req), posted)
    # then both land on the page, and the request was approved once
    assert (first.status_code, second.status_code) == (302, 302)
    assert AuditEntry.objects.for_instance(req).filter(action="approve").count() == 1


@pytest.mark.django_db
def test_the_request_page_offers_claim_and_release_to_group_members(world: World) -> None:
    # given a request waiting for the reviewers group
    req = world.in_review
    handoff = world.open_handoff(req)
    claim_url = reverse("approvals:handoff_claim", args=[handoff.pk])
    release_url = reverse("approvals:handoff_unclaim", args=[handoff.pk])
    approver, requester = world.client("approver"), world.client("requester")
    # when the approver opens it, then Claim is offered to him but not to the requester
    assert claim_url in approver.get(_detail(req)).content.decode()
    assert claim_url not in requester.get(_detail(req)).content.decode()
    # when he claims it from the page
    response = approver.post(claim_url, {"next": _detail(req)})
    # then he is back on the page, shown as holder, with Release offered
    assert response.headers["Location"] == _detail(req)
    html = approver.get(_detail(req)).content.decode()
    assert "Alex (from reviewers)" in _section(html, "held-by")
    assert release_url in html
    # and a manager may release it for him, from the same page
    assert release_url in world.client("manager").get(_detail(req)).content.decode()
    assert world.client("manager").post(release_url, {"next": _detail(req)}).status_code == 302
    assert Handoff.objects.get(pk=handoff.pk).assignee_id is None


@pytest.mark.django_db
def test_an_open_redirect_through_next_is_refused(world: World) -> None:
    # given a request waiting for the reviewers group
    handoff = world.open_handoff(world.in_review)
    # when a claim is posted with an off-site "next"
    response = world.client("approver").post(
        reverse("approvals:handoff_claim", args=[handoff.pk]), {"next": "//evil.example/"}
    )
    # then it goes to the inbox instead
    assert response.headers["Location"] == reverse("approvals:inbox")
