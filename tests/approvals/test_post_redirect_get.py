"""Post/redirect/get after every action, also after errors: a refused post never leaves
the browser on the address it posted to (a reload must not send it again). A plain post
is sent back to its page (303) where the error is shown once, beside what was typed; an
htmx post gets the page's content with the error, to swap in."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client
from django.utils.html import escape

from accounts.models import User
from approvals.models import ApprovalRequest, Comment, State
from approvals.services import request_act
from tests.approvals.conftest import World
from workflows.models import Handoff

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def _plain(user: User) -> Client:
    """A client that does not follow redirects (the pages' tests use one that follows 303s)."""
    client = Client()
    client.force_login(user)
    return client


def _page(req: ApprovalRequest) -> str:
    return f"/requests/{req.pk}/"


def _back(response: Any, page: str, anchor: str) -> Client:
    """Assert `response` is the 303 back to `page#anchor`."""
    assert response.status_code == 303, response.status_code
    assert response["Location"] == f"{page}#{anchor}"
    return response


def test_a_stale_action_goes_back_to_the_page_which_says_why_once(world: World) -> None:
    # given the approver loaded the page, then someone else moved the request on
    req = world.in_review
    loaded = req.version
    request_act(request_id=req.pk, action="request_changes", actor=world.user("approver"), comment="Quote?")
    request_act(request_id=req.pk, action="resubmit", actor=world.user("requester"), comment="Added")
    approver = _plain(world.user("approver"))
    # when the approver approves from the old page (no htmx)
    posted = approver.post(
        f"{_page(req)}act/", {"action": "approve", "version": loaded, "comment": "Looks fine"}
    )
    # then the browser is sent back to the page (303), not left on /act/
    _back(posted, _page(req), "problem")
    # and the page says why (with the refusal's status), keeps the comment, and offers
    # the current version
    shown = approver.get(_page(req))
    assert shown.status_code == 409
    html = shown.content.decode()
    assert f"{req.reference} changed since you loaded it" in html
    assert "Nothing was done" in html
    assert ">Looks fine</textarea>" in html
    req.refresh_from_db()
    assert f'name="version" value="{req.version}"' in html
    # and a reload shows the page plain: the refusal is said once
    again = approver.get(_page(req)).content.decode()
    assert "changed since you loaded it" not in again
    assert ">Looks fine</textarea>" not in again
    assert req.state == State.IN_REVIEW


def test_a_missing_comment_goes_back_with_the_error_on_the_comment_field(world: World) -> None:
    # given a request in review, and its approver
    req = world.in_review
    approver = _plain(world.user("approver"))
    # when he asks for changes without saying what
    posted = approver.post(
        f"{_page(req)}act/",
        {"action": "request_changes", "version": req.version, "comment": " ", "confirmed": "on"},
    )
    # then back to the form on the page, with the error beside the comment field
    _back(posted, _page(req), "act")
    page = approver.get(_page(req))
    assert page.status_code == 400
    assert page.context["form"].errors == {"comment": ["Say what should change."]}
    field = (
        page.content.decode().split('data-testid="comment-field"', 1)[1].split('data-testid="actions"', 1)[0]
    )
    assert escape("Say what should change.") in field
    req.refresh_from_db()
    assert req.state == State.IN_REVIEW


def test_an_htmx_action_refused_gets_the_pages_content_with_the_error(world: World) -> None:
    # given a request in review, and its requester (who may not decide on it)
    req = world.in_review
    # when the requester posts an approval through htmx
    response = _plain(world.user("requester")).post(
        f"{_page(req)}act/", {"action": "approve", "version": req.version, "comment": "me"}, headers=HTMX
    )
    # then the refusal's own status comes back with the page's content (no <html> frame),
    # aimed at <main> whatever the form aimed at
    assert response.status_code == 403
    html = response.content.decode()
    assert "You cannot decide on your own request." in html
    assert 'data-testid="problem"' in html
    assert "<html" not in html
    assert response["HX-Retarget"] == "main"
    assert response["HX-Reswap"] == "innerHTML"
    req.refresh_from_db()
    assert req.state == State.IN_REVIEW


def test_an_htmx_form_error_comes_back_on_its_field(world: World) -> None:
    req = world.in_review
    response = _plain(world.user("approver")).post(
        f"{_page(req)}act/",
        {"action": "approve", "version": req.version, "comment": "x" * 5001},
        headers=HTMX,
    )
    assert response.status_code == 400
    assert "comment" in response.context["form"].errors
    assert 'class="field invalid" data-testid="comment-field"' in response.content.decode()


def test_a_comment_refused_goes_back_to_the_thread_with_the_text_kept(world: World) -> None:
    # given the requester on her request's page
    req = world.in_review
    rita = _plain(world.user("requester"))
    # when she posts a message longer than allowed
    posted = rita.post(f"{_page(req)}comments/", {"body": "words " * 1000})
    # then back to the thread with the error; what she wrote is still in the box
    _back(posted, _page(req), "thread")
    html = rita.get(_page(req)).content.decode()
    thread = html.split('id="thread"', 1)[1]
    assert "words words" in thread
    assert 'class="error" role="alert"' in thread
    assert not Comment.objects.filter(request=req).exists()


def test_a_refused_claim_goes_back_to_the_page_with_the_reason(world: World) -> None:
    # given an item the approver claimed, and another member of his group
    handoff = world.claimed_handoff
    req = ApprovalRequest.objects.get(pk=handoff.object_id)
    colleague = world.user("other_approver")
    colleague.groups.add(*world.user("approver").groups.filter(name="reviewers"))
    client = _plain(colleague)
    # when the colleague tries to claim it too
    posted = client.post(f"/handoffs/{handoff.pk}/claim/", {"next": _page(req)})
    # then back to the page, which says the claim was refused and nothing changed
    _back(posted, _page(req), "problem")
    html = client.get(_page(req)).content.decode()
    assert "Claim refused:" in html
    assert "Nothing was changed." in html
    assert Handoff.objects.get(pk=handoff.pk).assignee_id == world.user("approver").pk


def test_a_new_request_refused_goes_back_to_the_form_with_what_was_typed(world: World) -> None:
    # given the requester on the new-request form
    rita = _plain(world.user("requester"))
    url = f"/requests/new/{world.request_type.slug}/"
    # when she sends it without a title
    posted = rita.post(url, {"title": "", "description": "A standing desk"})
    # then back to the same form (303), with the error and her description kept
    assert posted.status_code == 303
    assert posted["Location"] == url
    page = rita.get(url)
    assert page.context["form"].errors == {"title": ["A title is required."]}
    assert "A standing desk" in page.content.decode()
    assert not ApprovalRequest.objects.exists()


def test_a_refused_reassignment_on_the_team_view_keeps_the_filters_and_the_ticks(world: World) -> None:
    # given the manager on her team view, filtered, with an item ticked
    handoff = world.claimed_handoff
    maria = _plain(world.user("manager"))
    # when she reassigns it to nobody in particular (neither a person nor a group)
    posted = maria.post("/team/reassign/?sort=oldest", {"handoffs": [handoff.pk], "reason": "holiday"})
    # then back to the team view with its filters, the error shown, the item still ticked
    assert posted.status_code == 303
    assert posted["Location"] == "/team/?sort=oldest#team-items"
    page = maria.get("/team/?sort=oldest")
    html = page.content.decode()
    assert page.context["form"].errors
    assert f'value="{handoff.pk}" id="pick-{handoff.pk}" checked' in html
    assert Handoff.objects.get(pk=handoff.pk).closed_at is None


def test_a_refused_delegation_goes_back_to_its_form(world: World) -> None:
    alex = _plain(world.user("approver"))
    posted = alex.post("/delegations/", {"delegate": "", "reason": "Holiday in Crete"})
    assert posted.status_code == 303
    assert posted["Location"] == "/delegations/#new-delegation"
    page = alex.get("/delegations/")
    assert page.context["form"].errors
    assert "Holiday in Crete" in page.content.decode()


def test_a_huge_refused_post_is_not_kept_in_the_session(world: World) -> None:
    # given the requester, who pastes 300 KB into a comment (over its limit)
    req = world.in_review
    rita = _plain(world.user("requester"))
    posted = rita.post(f"{_page(req)}comments/", {"body": "y" * 300_000})
    # then she is sent back with the error, but the text is not carried in her session
    _back(posted, _page(req), "thread")
    assert rita.session["approvals.refused_post"]["data"] == {}
    page = rita.get(_page(req))
    thread = page.content.decode().split('id="thread"', 1)[1]
    assert 'class="error" role="alert"' in thread
    assert "yyyy" not in thread


def test_a_refusal_left_behind_does_not_surface_on_a_later_visit(world: World, monkeypatch: Any) -> None:
    # given a refused comment whose page was not opened right away
    req = world.in_review
    rita = _plain(world.user("requester"))
    rita.post(f"{_page(req)}comments/", {"body": "words " * 1000})
    # when she opens the page ten minutes later
    later = time.time() + 600
    monkeypatch.setattr(time, "time", lambda: later)
    html = rita.get(_page(req)).content.decode()
    # then the page is plain: the old error and text are gone (and out of her session)
    assert "words words" not in html
    assert "approvals.refused_post" not in rita.session
