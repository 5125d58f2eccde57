"""The request page as a workspace: confirmation before what cannot be undone, a reason
to cancel, why no button is offered, the change request first, drafts edited, and the
thread with its files."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from accounts.models import Delegation
from approvals.lifecycle import WhyNot, action_options, request_why_not
from approvals.models import ApprovalRequest, Attachment, RequestRevision
from approvals.services import request_act
from tests.approvals.conftest import World
from tests.factories import RequestTypeFactory, UserFactory, make_request
from workflows import errors
from workflows.models import AuditEntry, Handoff
from workflows.services import handoff_claim

pytestmark = pytest.mark.django_db


def _act_url(req: ApprovalRequest) -> str:
    return reverse("approvals:request_action", args=[req.pk])


def _detail(req: ApprovalRequest) -> str:
    return reverse("approvals:request_detail", args=[req.pk])


def _state(req: ApprovalRequest) -> tuple[str, int, int]:
    req.refresh_from_db()
    return req.state, req.version, req.audit_seq


# --- confirmation ------------------------------------------------------------------------


def test_a_reject_asks_first_and_carries_the_comment_to_the_confirmation(world: World) -> None:
    # given a request in review and its approver
    req = world.in_review
    before = _state(req)
    # when the approver rejects it from the page
    response = world.client("approver").post(
        _act_url(req), {"action": "reject", "version": req.version, "comment": "Too dear"}
    )
    # then a confirmation step answers, saying it cannot be undone, with the comment kept
    # and the action and version carried; nothing has changed yet
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="confirm"' in html
    assert "cannot be undone" in html
    assert ">Too dear</textarea>" in html
    assert 'name="action" value="reject"' in html
    assert f'name="version" value="{req.version}"' in html
    assert 'name="confirmed" value="on"' in html
    assert _state(req) == before


def test_a_confirmed_reject_is_taken(world: World) -> None:
    req = world.in_review
    response = world.client("approver").post(
        _act_url(req), {"action": "reject", "version": req.version, "comment": "Too dear", "confirmed": "on"}
    )
    assert response.status_code == 302
    assert _state(req)[0] == "rejected"


def test_an_approval_needs_no_confirmation(world: World) -> None:
    req = world.in_review
    response = world.client("approver").post(_act_url(req), {"action": "approve", "version": req.version})
    assert response.status_code == 302
    assert _state(req)[0] == "approved"


def test_a_cancel_needs_a_reason(world: World) -> None:
    # given a request in review and a manager who confirms a cancel without a reason
    req = world.in_review
    before = _state(req)
    response = world.client("manager").post(
        _act_url(req), {"action": "cancel", "version": req.version, "comment": " ", "confirmed": "on"}
    )
    # then it is refused on the comment field and nothing changed
    assert response.status_code == 400
    assert response.context["form"].errors == {"comment": ["Say why you cancel it."]}
    assert _state(req) == before


def test_the_cancel_confirmation_asks_for_the_reason(world: World) -> None:
    req = world.in_review
    response = world.client("manager").post(_act_url(req), {"action": "cancel", "version": req.version})
    html = response.content.decode()
    assert response.status_code == 200
    assert "Say why you cancel it." in html
    assert "Reason" in html


def test_a_withdraw_asks_first(world: World) -> None:
    req = world.in_review
    before = _state(req)
    response = world.client("requester").post(_act_url(req), {"action": "withdraw", "version": req.version})
    assert response.status_code == 200
    assert "withdrawn" in response.content.decode()
    assert _state(req) == before


# --- why not -----------------------------------------------------------------------------


def _why(world: World, req: ApprovalRequest, role: str) -> str | None:
    response = world.client(role).get(_detail(req))
    assert response.status_code == 200
    why = response.context["page"].why_not
    if why is not None:
        # the page shows it, naming the check
        assert f'data-code="{why.code}"' in response.content.decode()
    return why.code if why else None


def test_nobody_who_can_act_is_told_why_not(world: World) -> None:
    req = world.in_review
    assert _why(world, req, "approver") is None  # may decide
    assert _why(world, req, "requester") is None  # may withdraw
    assert _why(world, req, "manager") is None  # may cancel


def test_a_closed_request_says_so(world: World) -> None:
    req = world.in_review
    request_act(request_id=req.pk, action="approve", actor=world.user("approver"))
    assert _why(world, req, "approver") == WhyNot.CLOSED
    assert _why(world, req, "auditor") == WhyNot.CLOSED


def test_a_request_back_with_its_requester_says_whom_it_waits_for(world: World) -> None:
    req = world.changes_requested
    assert _why(world, req, "approver") == WhyNot.WITH_REQUESTER


def test_someone_who_does_not_hold_it_is_told_where_it_waits(world: World) -> None:
    req = world.in_review
    response = world.client("auditor").get(_detail(req))
    why = response.context["page"].why_not
    assert why.code == WhyNot.NOT_YOUR_STAGE
    assert "stage review" in why.message
    assert "reviewers" in why.message


def test_a_claim_by_someone_else_is_named(world: World) -> None:
    # given two approvers of the group, one of whom claimed the item
    colleague = UserFactory.create(username="cole", first_name="Cole", last_name="", roles=["approvers"])
    colleague.groups.add(*world.user("approver").groups.filter(name="reviewers"))
    req = world.in_review
    handoff_claim(handoff_id=world.open_handoff(req).pk, actor=colleague)
    # when the other opens it / then they are told who claimed it
    response = world.client("approver").get(_detail(req))
    why = response.context["page"].why_not
    assert why.code == WhyNot.CLAIMED_BY_OTHER
    assert "Cole claimed it from reviewers" in why.message


def test_a_decision_already_taken_is_named() -> None:
    # given a stage two of a group must approve, and one of them who approved
    first, second = UserFactory.create(roles=["approvers"]), UserFactory.create(roles=["approvers"])
    group = first.groups.create(name="board")
    second.groups.add(group)
    request_type = RequestTypeFactory.create(
        policy={
            "stages": [{"name": "board", "approvers": {"groups": ["board"]}, "rule": "quorum", "quorum": 2}]
        }
    )
    req = make_request(requester=UserFactory.create(roles=["requesters"]), request_type=request_type)
    request_act(request_id=req.pk, action="approve", actor=first)
    req.refresh_from_db()
    # when the first asks why they have nothing to do
    open_handoffs = list(Handoff.objects.for_instance(req).open())
    options = action_options(request=req, user=first, open_handoffs=open_handoffs)
    why = request_why_not(request=req, user=first, open_handoffs=open_handoffs, options=options)
    # then it is their decision already taken (the second still may decide)
    assert why is not None
    assert why.code == WhyNot.ALREADY_DECIDED


def test_an_ended_delegation_is_named(world: World) -> None:
    # given the approver's item claimed for themselves, and a delegation from them to the
    # auditor that was revoked an hour ago
    req = world.in_review
    handoff_claim(handoff_id=world.open_handoff(req).pk, actor=world.user("approver"))
    Delegation.objects.create(
        delegator=world.user("approver"),
        delegate=world.user("auditor"),
        starts_at=timezone.now() - timedelta(days=2),
        revoked_at=timezone.now() - timedelta(hours=1),
    )
    # when the auditor asks why they cannot act / then the ended delegation is named
    open_handoffs = list(Handoff.objects.for_instance(req).open())
    auditor = world.user("auditor")
    options = action_options(request=req, user=auditor, open_handoffs=open_handoffs)
    why = request_why_not(request=req, user=auditor, open_handoffs=open_handoffs, options=options)
    assert why is not None
    assert why.code == WhyNot.DELEGATION_ENDED
    assert "Alex was revoked" in why.message


# --- the change request first --------------------------------------------------------------


def test_the_change_request_is_shown_first_to_the_requester(world: World) -> None:
    req = world.changes_requested
    html = world.client("requester").get(_detail(req)).content.decode()
    # then the change request comes before everything but the request's own card
    assert html.index('data-testid="change-request"') < html.index('id="act"')
    assert html.index('data-testid="change-request"') < html.index('id="route"')
    assert "Changes asked of you" in html
    assert "Add a quote" in html
    assert "stage <strong>review</strong>" in html


def test_no_change_request_is_shown_once_resubmitted(world: World) -> None:
    req = world.changes_requested
    request_act(request_id=req.pk, action="resubmit", actor=world.user("requester"))
    html = world.client("requester").get(_detail(req)).content.decode()
    assert 'data-testid="change-request"' not in html


# --- drafts --------------------------------------------------------------------------------


def _edit_url(req: ApprovalRequest) -> str:
    return reverse("approvals:request_edit", args=[req.pk])


def test_a_draft_is_edited_and_stays_a_draft(world: World) -> None:
    # given a draft and its requester on its edit form, prefilled
    req = world.draft
    client = world.client("requester")
    form = client.get(_edit_url(req))
    assert form.status_code == 200
    assert 'value="A draft"' in form.content.decode()
    # when they change the title and save the draft
    response = client.post(
        _edit_url(req),
        {
            "title": "A better draft",
            "description": "With a quote",
            "version": req.version,
            "save_as_draft": "on",
        },
    )
    # then it is still a draft, with the new content, in its first revision too
    assert response.status_code == 302
    req.refresh_from_db()
    assert (req.state, req.title, req.description) == ("draft", "A better draft", "With a quote")
    first = RequestRevision.objects.get(request=req, number=1)
    assert (first.title, first.description) == ("A better draft", "With a quote")
    # and the history records the edit with what changed
    entry = AuditEntry.objects.for_instance(req).get(action="edit")
    assert entry.actor == world.user("requester")
    assert {c["field"] for c in entry.data["revision"]["diff"]} == {"title", "description"}
    assert "edited the draft" in client.get(_detail(req)).content.decode()


def test_a_draft_is_saved_and_submitted_in_one_go(world: World) -> None:
    req = world.draft
    response = world.client("requester").post(_edit_url(req), {"title": "Ready now", "version": req.version})
    assert response.status_code == 302
    req.refresh_from_db()
    assert (req.state, req.title) == ("in_review", "Ready now")
    assert RequestRevision.objects.get(request=req, number=1).title == "Ready now"


def test_a_bad_draft_edit_names_the_field_and_changes_nothing(world: World) -> None:
    req = world.draft
    before = _state(req)
    response = world.client("requester").post(
        _edit_url(req), {"title": "", "version": req.version, "save_as_draft": "on"}
    )
    assert response.status_code == 400
    assert response.context["form"].errors["title"] == ["A title is required."]
    assert _state(req) == before


def test_a_stale_draft_edit_is_refused(world: World) -> None:
    req = world.draft
    stale = req.version
    request_act(request_id=req.pk, action="edit", actor=world.user("requester"), data={"title": "Elsewhere"})
    response = world.client("requester").post(
        _edit_url(req), {"title": "Mine", "version": stale, "save_as_draft": "on"}
    )
    assert response.status_code == 409
    req.refresh_from_db()
    assert req.title == "Elsewhere"


def test_only_drafts_are_edited(world: World) -> None:
    req = world.in_review
    assert world.client("requester").get(_edit_url(req)).status_code == 403
    with pytest.raises(errors.TransitionNotAllowed, match="while it is in_review"):
        request_act(request_id=req.pk, action="edit", actor=world.user("requester"), data={"title": "x"})


def test_the_edit_link_is_offered_to_the_drafts_requester_only(world: World) -> None:
    req = world.draft
    assert 'data-testid="edit-draft"' in world.client("requester").get(_detail(req)).content.decode()
    assert 'data-testid="edit-draft"' not in world.client("manager").get(_detail(req)).content.decode()


# --- the thread ----------------------------------------------------------------------------


def _comment_url(req: ApprovalRequest) -> str:
    return reverse("approvals:request_comment", args=[req.pk])


def test_a_comment_with_a_file_is_on_the_thread_and_in_the_history(world: World) -> None:
    # given a request in review
    req = world.in_review
    client = world.client("approver")
    upload = SimpleUploadedFile("quote.pdf", b"%PDF-1.4 a quote", content_type="application/pdf")
    # when the approver posts a comment with a file
    response = client.post(_comment_url(req), {"body": "Here is the quote", "attachments": [upload]})
    # then they are sent back to the thread, which shows both
    assert response.status_code == 302
    assert response["Location"].endswith("#thread")
    html = client.get(_detail(req)).content.decode()
    thread = html[html.index('data-testid="thread"') :]
    assert "Here is the quote" in thread
    attachment = Attachment.objects.get(request=req)
    assert reverse("approvals:attachment_download", args=[attachment.pk]) in thread
    # and the history lists the file, linked
    history = html[html.index('data-testid="history"') :]
    assert "quote.pdf" in history
    assert reverse("approvals:attachment_download", args=[attachment.pk]) in history


def test_a_file_downloads_as_an_attachment_never_inline(world: World) -> None:
    attachment = world.attachment
    response = world.client("approver").get(reverse("approvals:attachment_download", args=[attachment.pk]))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert 'filename="quote.txt"' in response["Content-Disposition"]
    assert response["Content-Type"] == "text/plain"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == b"Desk: 240 EUR\n"  # type: ignore[attr-defined]


def test_a_file_of_the_wrong_kind_is_refused_on_its_field(world: World) -> None:
    req = world.in_review
    before = _state(req)
    upload = SimpleUploadedFile("page.png", b"<html><script>alert(1)</script>", content_type="image/png")
    response = world.client("requester").post(_comment_url(req), {"body": "see", "attachments": [upload]})
    assert response.status_code == 400
    assert response.context["comment_form"].errors["attachments"] == [
        "page.png: its content is not a png file."
    ]
    assert _state(req) == before
    assert not Attachment.objects.exists()


def test_an_empty_post_is_refused(world: World) -> None:
    req = world.in_review
    response = world.client("requester").post(_comment_url(req), {"body": "  "})
    assert response.status_code == 400
    assert response.context["comment_form"].errors["body"] == ["Write something, or add a file."]


def test_an_auditor_reads_the_thread_but_has_no_form(world: World) -> None:
    req = world.in_review
    world.attachment  # noqa: B018  (a post on the thread)
    html = world.client("auditor").get(_detail(req)).content.decode()
    assert "quote.txt" in html
    assert 'data-testid="comment-form"' not in html
