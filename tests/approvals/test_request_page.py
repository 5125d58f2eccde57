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
from approvals.models import ApprovalRequest, RequestType
from approvals.services import request_act
from tests.approvals.conftest import World
from tests.factories import RequestTypeFactory, UserFactory, make_request, publish_policy
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
        _act_url(req), {"action": action, "version": req.version, "comment": "   ", "confirmed": "on"}
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


# --- payload, route, decisions and revisions ---------------------------------------------

CLAIM_SCHEMA = {
    "type": "object",
    "required": ["amount"],
    "properties": {
        "amount": {"type": "number", "title": "Amount", "exclusiveMinimum": 0},
        "note": {"type": "string", "title": "Note", "maxLength": 100},
    },
}
CLAIM_POLICY = {
    "stages": [
        {"name": "review", "approvers": {"groups": ["reviewers"]}, "rule": "any", "sla": "2d"},
        {
            "name": "finance",
            "when": {"field": "amount", "op": "gt", "value": 1000},
            "approvers": {"groups": ["finance"]},
            "rule": "any",
        },
        {
            "name": "board",
            "when": {"field": "amount", "op": "gt", "value": 10000},
            "approvers": {"users": ["ada"]},
            "rule": "any",
        },
    ]
}


@pytest.fixture
def claim_type(world: World) -> RequestType:
    """Reviewers first; above 1,000 also finance (Fiona); above 10,000 also the board (Ada)."""
    return RequestTypeFactory.create(
        slug="claim", name="Claim", payload_schema=CLAIM_SCHEMA, policy=CLAIM_POLICY
    )


def _claim(
    world: World, request_type: RequestType, amount: float, title: str = "Fair tickets"
) -> ApprovalRequest:
    return make_request(
        requester=world.user("requester"),
        request_type=request_type,
        title=title,
        payload={"amount": amount, "note": "second class"},
    )


def _stage_status(html: str) -> dict[str, str]:
    """Each stage of the route diagram with its data-status ('' when not reached)."""
    route = _section(html, "route")
    return dict(re.findall(r'<g data-stage="([^"]+)"(?: data-status="([^"]*)")?>', route))


def _decisions(html: str) -> dict[str, list[tuple[str, ...]]]:
    """The decisions table by revision: (stage, decided by, on behalf of, decision, comment)."""
    table = _section(html, "decisions").split("</table>", 1)[0]
    found: dict[str, list[tuple[str, ...]]] = {}
    for revision, body in re.findall(r'<tbody data-revision="(\d+)">(.*?)</tbody>', table, re.S):
        rows = []
        for row in re.findall(r"<tr data-decision=.*?</tr>", body, re.S):
            cells = re.findall(r'<td class="(stage|actor|principal|outcome|comment)">(.*?)</td>', row, re.S)
            rows.append(tuple(re.sub(r"<[^>]+>", "", text).strip() for _, text in cells))
        found[revision] = rows
    return found


@pytest.mark.django_db
def test_the_page_shows_the_payload_with_its_labels_and_the_policy_version(
    world: World, claim_type: RequestType
) -> None:
    # given a claim of 4,200 in review
    req = _claim(world, claim_type, 4200)
    # when the requester opens it
    html = world.client("requester").get(_detail(req)).content.decode()
    # then the payload is listed with the schema's labels
    payload = _section(html, "payload").split("</dl>", 1)[0]
    assert re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", payload) == [
        ("Amount", "4,200"),  # thousands separated
        ("Note", "second class"),
    ]
    # and the page says which version of the policy it follows
    assert "Follows <strong>Claim v1</strong>" in _section(html, "policy-version")


@pytest.mark.django_db
def test_the_route_marks_the_current_stage_then_met_and_skipped_stages(
    world: World, claim_type: RequestType
) -> None:
    # given a claim of 4,200: review, then finance; the board (above 10,000) does not apply
    req = _claim(world, claim_type, 4200)
    client = world.client("requester")
    # when it waits for the reviewers
    html = client.get(_detail(req)).content.decode()
    # then the route highlights review as current, and nothing else is marked yet
    assert _stage_status(html) == {"review": "current", "finance": "", "board": ""}
    steps = _section(html, "route-steps")
    assert "waiting for reviewers" in steps
    assert "will be skipped: amount is 4200, so amount &gt; 10000 is false" in steps
    # and the lifecycle diagram highlights "In review"
    lifecycle = _section(html, "lifecycle")
    assert '<g data-state="in_review" data-current="true">' in lifecycle
    assert lifecycle.count('data-current="true"') == 1
    # when Alex approves for the reviewers
    request_act(request_id=req.pk, action="approve", actor=world.user("approver"), comment="Fine")
    html = client.get(_detail(req)).content.decode()
    # then review is met (by Alex) and finance is current
    assert _stage_status(html) == {"review": "met", "finance": "current", "board": ""}
    assert "approved by Alex" in _section(html, "route-steps")
    # when Fiona approves for finance
    request_act(request_id=req.pk, action="approve", actor=world.user("other_approver"), comment="Paid")
    html = client.get(_detail(req)).content.decode()
    # then it is approved, with both stages met and the board skipped, saying why
    assert _stage_status(html) == {"review": "met", "finance": "met", "board": "skipped"}
    assert "amount is 4200, so amount &gt; 10000 is false" in _section(html, "route-steps")
    assert '<g data-state="approved" data-current="true">' in _section(html, "lifecycle")
    # and the history says where each step led, and why the board was skipped
    history = _section(html, "history")
    assert "(in stage review; now in stage finance)" in history
    assert "(in stage finance; stage board skipped: amount is 4200, so amount &gt; 10000 is false)" in history


@pytest.mark.django_db
def test_a_small_claim_skips_both_conditional_stages_and_a_reject_fails_its_stage(
    world: World, claim_type: RequestType
) -> None:
    # given a claim of 500 approved by the reviewers, and a claim of 2,000 rejected by finance
    small = _claim(world, claim_type, 500, title="Small")
    request_act(request_id=small.pk, action="approve", actor=world.user("approver"), comment="ok")
    large = _claim(world, claim_type, 2000, title="Large")
    request_act(request_id=large.pk, action="approve", actor=world.user("approver"), comment="ok")
    request_act(request_id=large.pk, action="reject", actor=world.user("other_approver"), comment="No budget")
    client = world.client("auditor")
    # when the auditor opens each
    small_html = client.get(_detail(small)).content.decode()
    large_html = client.get(_detail(large)).content.decode()
    # then the small one went straight to approved past two skipped stages
    assert _stage_status(small_html) == {"review": "met", "finance": "skipped", "board": "skipped"}
    # and the large one failed in finance, rejected by Fiona, never reaching the board
    assert _stage_status(large_html) == {"review": "met", "finance": "failed", "board": ""}
    assert "rejected by Fiona" in _section(large_html, "route-steps")
    assert '<g data-state="rejected" data-current="true">' in _section(large_html, "lifecycle")


@pytest.mark.django_db
def test_the_decisions_table_groups_decisions_by_revision_and_names_who_acted_for_whom(
    world: World, claim_type: RequestType
) -> None:
    # given a claim of 4,200 that Alex sent back for changes, was resubmitted, then approved
    # by Dan on Alex's behalf (Alex is out) and by Fiona for finance
    req = _claim(world, claim_type, 4200)
    alex = world.user("approver")
    request_act(request_id=req.pk, action="request_changes", actor=alex, comment="Add the receipt")
    request_act(
        request_id=req.pk,
        action="resubmit",
        actor=world.user("requester"),
        data={"description": "Receipt attached"},
    )
    dan = UserFactory.create(username="dan", first_name="Dan", last_name="Deputy")
    Delegation.objects.create(delegator=alex, delegate=dan, starts_at=timezone.now() - timedelta(hours=1))
    request_act(request_id=req.pk, action="approve", actor=dan, on_behalf_of=alex, comment="For Alex")
    request_act(request_id=req.pk, action="approve", actor=world.user("other_approver"), comment="Paid")
    # when the auditor opens it
    html = world.client("auditor").get(_detail(req)).content.decode()
    # then each decision is listed under its revision: stage, who, for whom, what, why
    assert _decisions(html) == {
        "1": [("review", "Alex", "—", "Asked for changes", "Add the receipt")],
        "2": [
            ("review", "Dan Deputy", "Alex", "Approved", "For Alex"),
            ("finance", "Fiona", "—", "Approved", "Paid"),
        ],
    }


@pytest.mark.django_db
def test_a_change_request_loop_through_the_pages_stores_and_shows_the_diff(
    world: World, claim_type: RequestType
) -> None:
    # given a claim of 4,200 that Alex sent back for changes
    req = _claim(world, claim_type, 4200)
    alex, rita = world.client("approver"), world.client("requester")
    asked = alex.post(
        _act_url(req), {"action": "request_changes", "version": req.version, "comment": "Too dear"}
    )
    assert asked.status_code == 302
    req.refresh_from_db()
    # when the requester opens it, then the resubmit form carries the payload, prefilled
    page = rita.get(_detail(req)).content.decode()
    fields = _section(page, "resubmit-payload")
    assert 'name="payload.amount" value="4200"' in fields
    assert 'name="payload.note" value="second class"' in fields
    assert 'name="payload_fields"' in fields
    # when she resubmits with a lower amount, a new title and the note cleared
    response = rita.post(
        _act_url(req),
        {
            "action": "resubmit",
            "version": req.version,
            "comment": "Cheaper train",
            "title": "Fair tickets, cheaper",
            "description": "",
            "payload_fields": "1",
            "payload.amount": "950.5",
            "payload.note": "",
        },
    )
    # then it is in review again as revision 2 with the new payload
    assert response.status_code == 302, response.content.decode()[:3000]
    req.refresh_from_db()
    assert (req.state, req.revision, req.payload) == ("in_review", 2, {"amount": 950.5})
    # and the stored diff names each change
    revision = req.revisions.get(number=2)
    assert revision.diff == [
        {"field": "title", "before": "Fair tickets", "after": "Fair tickets, cheaper"},
        {"field": "payload.amount", "before": 4200, "after": 950.5},
        {"field": "payload.note", "before": "second class", "after": None},
    ]
    # and the page shows it, with the schema's labels, before → after
    html = rita.get(_detail(req)).content.decode()
    diff = _section(html, "diff-2").split("</table>", 1)[0]
    rows = re.findall(
        r'<tr data-field="([^"]+)"><td class="label">(.*?)</td><td class="before"><del>(.*?)</del></td>'
        r'<td aria-hidden="true">→</td><td class="after"><ins>(.*?)</ins></td></tr>',
        diff,
    )
    assert rows == [
        ("title", "Title", "Fair tickets", "Fair tickets, cheaper"),
        ("payload.amount", "Amount", "4,200", "950.5"),
        ("payload.note", "Note", "second class", "—"),
    ]
    # and the route starts over for revision 2: review is current again, and with 950.5
    # finance will be skipped this time
    assert _stage_status(html)["review"] == "current"
    assert "will be skipped: amount is 950.5" in _section(html, "route-steps")


@pytest.mark.django_db
def test_a_resubmission_with_a_bad_payload_is_a_400_on_the_field_and_changes_nothing(
    world: World, claim_type: RequestType
) -> None:
    # given a claim sent back for changes
    req = _claim(world, claim_type, 4200)
    request_act(request_id=req.pk, action="request_changes", actor=world.user("approver"), comment="Fix it")
    req.refresh_from_db()
    before = _snapshot(req)
    rita = world.client("requester")
    base = {"action": "resubmit", "version": req.version, "payload_fields": "1", "payload.note": "x"}
    # when she resubmits an amount that is not a number, then one the schema refuses
    typed = rita.post(_act_url(req), {**base, "payload.amount": "a lot"})
    refused = rita.post(_act_url(req), {**base, "payload.amount": "-1"})
    # then both answer 400 with the message on the amount, keeping what she typed
    assert typed.status_code == refused.status_code == 400
    assert typed.context["form"].errors == {"payload.amount": ["Must be a number."]}
    assert refused.context["form"].errors == {"payload.amount": ["Must be more than 0."]}
    block = _section(refused.content.decode(), "resubmit-payload")
    assert 'name="payload.amount" value="-1"' in block
    assert "Must be more than 0." in block.split('data-field="payload.amount"', 1)[1]
    # and nothing changed
    assert _snapshot(req) == before
    assert req.revisions.count() == 1


@pytest.mark.django_db
def test_a_resubmission_without_the_payload_inputs_keeps_the_payload(
    world: World, claim_type: RequestType
) -> None:
    # given a claim sent back for changes
    req = _claim(world, claim_type, 4200)
    request_act(request_id=req.pk, action="request_changes", actor=world.user("approver"), comment="Retitle")
    req.refresh_from_db()
    # when the requester resubmits a new title only (no payload inputs posted)
    response = world.client("requester").post(
        _act_url(req), {"action": "resubmit", "version": req.version, "title": "Better title"}
    )
    # then the payload is unchanged and only the title is in the diff
    assert response.status_code == 302
    req.refresh_from_db()
    assert req.payload == {"amount": 4200, "note": "second class"}
    assert req.revisions.get(number=2).diff == [
        {"field": "title", "before": "Fair tickets", "after": "Better title"}
    ]


@pytest.mark.django_db
def test_the_resubmit_payload_inputs_are_only_offered_to_the_requester_when_changes_are_asked(
    world: World, claim_type: RequestType
) -> None:
    # given a claim in review
    req = _claim(world, claim_type, 4200)
    # when the requester or the approver opens it, then no payload inputs are offered
    assert (
        'data-testid="resubmit-payload"' not in world.client("requester").get(_detail(req)).content.decode()
    )
    assert 'data-testid="resubmit-payload"' not in world.client("approver").get(_detail(req)).content.decode()
    # when changes are asked, then only the requester gets them
    request_act(request_id=req.pk, action="request_changes", actor=world.user("approver"), comment="Fix")
    assert 'data-testid="resubmit-payload"' in world.client("requester").get(_detail(req)).content.decode()
    assert 'data-testid="resubmit-payload"' not in world.client("manager").get(_detail(req)).content.decode()


@pytest.mark.django_db
def test_a_request_keeps_its_policy_version_and_the_page_says_a_newer_one_is_current(
    world: World, claim_type: RequestType
) -> None:
    # given a claim submitted under v1, then a v2 of the policy without the board stage
    req = _claim(world, claim_type, 4200)
    publish_policy(request_type=claim_type, document={"stages": CLAIM_POLICY["stages"][:2]})
    # when the requester opens it
    html = world.client("requester").get(_detail(req)).content.decode()
    # then it still follows v1 (its diagram still has the board) and says v2 is current now
    version = _section(html, "policy-version")
    assert "Follows <strong>Claim v1</strong>" in version
    assert "version 2 is current now" in version
    assert "board" in _stage_status(html)
