"""The list pages: keyset paging, a constant number of queries, the state filter."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals.models import ApprovalRequest
from approvals.services import request_act
from tests.approvals.conftest import World, client_for
from tests.factories import RequestTypeFactory, UserFactory, make_request
from workflows.models import Handoff

PAGE = 50


def _make(world: World, n: int, start: int = 0) -> list[ApprovalRequest]:
    return [world.new_request(title=f"Request {start + i}") for i in range(n)]


def _queries(client, url: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


def _shown(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'<tr[^>]* data-request="(\d+)"', response.content.decode())]


def _next_link(response) -> str | None:
    """The href of the page's link to its next page (unescaped), if it has one."""
    found = re.search(r'<a href="([^"]+)"[^>]*rel="next"', response.content.decode())
    return html.unescape(found.group(1)) if found else None


LISTS = [
    # page, who reads it
    ("approvals:inbox", "approver"),
    ("approvals:my_requests", "requester"),
    ("approvals:all_requests", "manager"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("page", "role"), LISTS)
def test_list_pages_by_keyset_in_a_constant_number_of_queries(world: World, page: str, role: str) -> None:
    # given five requests in review, and a person who sees them on this page
    client = world.client(role)
    url = reverse(page)
    made = _make(world, 5)
    client.get(url)  # the first request warms the session and permission caches
    # when the page lists five rows, and then a full page of fifty (of 57)
    five = _queries(client, url)
    made += _make(world, PAGE + 2, start=5)
    fifty = _queries(client, url)
    # then both run the same number of queries
    assert fifty == five, f"{page}: {five} queries for 5 rows, {fifty} for 50"
    assert fifty <= 12
    # when the person reads the first page and follows its link to the next
    first = client.get(url)
    assert len(_shown(first)) == PAGE
    link = _next_link(first)
    assert link is not None, "a full page links to the next one"
    second = client.get(url + link)
    # then the two pages hold every request once (the inbox oldest first, the others newest
    # first) and the last page links nowhere
    shown = _shown(first) + _shown(second)
    expected = [r.pk for r in made]
    assert shown == (expected if page == "approvals:inbox" else expected[::-1])
    assert _next_link(second) is None


@pytest.mark.django_db
def test_all_requests_filters_by_state_and_keeps_the_filter_when_paging(world: World) -> None:
    # given requests in several states
    approved = [world.new_request(title=f"Approved {i}") for i in range(PAGE + 2)]
    for req in approved:
        request_act(request_id=req.pk, action="approve", actor=world.user("approver"), comment="ok")
    in_review = world.new_request(title="Still waiting")
    client = world.client("auditor")
    # when an auditor lists the approved ones
    first = client.get(reverse("approvals:all_requests"), {"state": "approved"})
    # then only approved requests are shown, newest first, and the next page keeps the filter
    assert first.status_code == 200
    assert _shown(first) == [r.pk for r in approved[::-1][:PAGE]]
    older = re.search(r'href="\?state=approved&amp;before=(\d+)"', first.content.decode())
    assert older is not None
    second = client.get(reverse("approvals:all_requests"), {"state": "approved", "before": older.group(1)})
    assert _shown(second) == [r.pk for r in approved[::-1][PAGE:]]
    # and without the filter, every request is listed, newest first
    assert _shown(client.get(reverse("approvals:all_requests")))[0] == in_review.pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field_name", "message"),
    [
        ({"state": "bogus"}, "state", "Unknown state &#x27;bogus&#x27;"),
        ({"state": "<script>"}, "state", "Unknown state &#x27;&lt;script&gt;&#x27;"),
        ({"before": "abc"}, "before", "The page position must be a request number."),
        ({"before": "0"}, "before", "greater than or equal to 1"),
    ],
)
def test_all_requests_with_a_bad_filter_answers_400_naming_it(
    world: World, query: dict[str, str], field_name: str, message: str
) -> None:
    # given some requests and a manager
    world.new_request()
    # when the manager asks for an unknown state or a malformed page position
    response = world.client("manager").get(reverse("approvals:all_requests"), query)
    # then the page answers 400 (not 500) and says which filter is wrong and why
    assert response.status_code == 400
    assert list(response.context["form"].errors) == [field_name]
    assert message in response.content.decode()
    assert _shown(response) == []


@pytest.mark.django_db
def test_inbox_rows_can_be_claimed_and_released_and_show_who_holds_them(world: World) -> None:
    # given a request waiting for the reviewers group
    req = world.in_review
    alex = world.client("approver")
    colleague = UserFactory.create(
        username="bea", first_name="Bea", member_of=list(world.user("approver").groups.all())
    )
    bea = client_for(colleague)
    inbox = reverse("approvals:inbox")
    # when Alex opens the inbox
    html = alex.get(inbox).content.decode()
    handoff = world.open_handoff(req)
    # then the row is held by the group and offers Claim
    assert "reviewers" in html
    assert reverse("approvals:handoff_claim", args=[handoff.pk]) in html
    # when Alex claims it from the inbox
    claimed = alex.post(reverse("approvals:handoff_claim", args=[handoff.pk]), {"next": inbox})
    # then he is sent back to the inbox, which shows him as holder and offers Release
    assert claimed.status_code == 302
    assert claimed.headers["Location"] == inbox
    html = alex.get(inbox).content.decode()
    assert "Alex" in html.split('data-testid="holder"')[1].split("</td>")[0]
    assert reverse("approvals:handoff_unclaim", args=[handoff.pk]) in html
    # and his colleague's inbox no longer offers it
    assert f'data-request="{req.pk}"' not in bea.get(inbox).content.decode()
    # when the colleague tries to claim it anyway
    late = bea.post(reverse("approvals:handoff_claim", args=[handoff.pk]), {"next": inbox})
    # then the request page answers 409 and says who holds it; nothing changes
    assert late.status_code == 409
    assert "already claimed by Alex" in late.content.decode()
    assert Handoff.objects.get(pk=handoff.pk).assignee_id == world.user("approver").pk
    # when Alex releases it
    released = alex.post(reverse("approvals:handoff_unclaim", args=[handoff.pk]), {"next": inbox})
    # then it is back in the group's queue, for both of them
    assert released.status_code == 302
    assert Handoff.objects.get(pk=handoff.pk).assignee_id is None
    assert f'data-request="{req.pk}"' in bea.get(inbox).content.decode()


@pytest.mark.django_db
def test_my_requests_lists_only_my_own(world: World) -> None:
    # given a request of the requester and one of somebody else
    mine = world.new_request(title="Mine")
    other = UserFactory.create(username="otto", member_of=list(world.user("requester").groups.all()))
    theirs = make_request(requester=other, request_type=world.request_type, title="Theirs")
    # when the requester opens "My requests"
    response = world.client("requester").get(reverse("approvals:my_requests"))
    # then only their own request is listed
    assert _shown(response) == [mine.pk]
    assert theirs.title not in response.content.decode()


def _row(html: str, req: ApprovalRequest) -> str:
    found = re.search(rf'<tr[^>]* data-request="{req.pk}"', html)
    assert found is not None, f"{req.reference} is not listed"
    return html[found.end() :].split("</tr>", 1)[0]


def _cell(row: str, testid: str) -> str:
    return row.split(f'data-testid="{testid}">', 1)[1].split("</td>", 1)[0].strip()


@pytest.mark.django_db
def test_lists_show_each_requests_stage_and_due_date_and_flag_the_overdue(world: World) -> None:
    # given a type whose 'check' stage has a two-day SLA, and three of its requests: one on
    # time, one whose SLA has passed, and one sent back to its requester for changes
    timed = RequestTypeFactory.create(
        slug="timed",
        name="Timed",
        policy={"stages": [{"name": "check", "approvers": {"groups": ["reviewers"]}, "sla": "2d"}]},
    )
    rita = world.user("requester")
    on_time = make_request(requester=rita, request_type=timed, title="On time")
    late = make_request(requester=rita, request_type=timed, title="Late")
    Handoff.objects.for_instance(late).open().update(due_at=timezone.now() - timedelta(hours=3))
    sent_back = make_request(requester=rita, request_type=timed, title="Sent back")
    request_act(
        request_id=sent_back.pk, action="request_changes", actor=world.user("approver"), comment="Fix"
    )
    due = Handoff.objects.for_instance(on_time).open().get().due_at
    assert due is not None
    pages = {
        "inbox of the approver": world.client("approver").get(reverse("approvals:inbox")),
        "my requests": world.client("requester").get(reverse("approvals:my_requests")),
        "all requests": world.client("manager").get(reverse("approvals:all_requests")),
    }
    for name, response in pages.items():
        html = response.content.decode()
        # then each list shows the stage a request waits in, and its due date
        on_time_row, late_row = _row(html, on_time), _row(html, late)
        assert _cell(on_time_row, "stage") == "check", name
        assert f'datetime="{due.isoformat()}"' in _cell(on_time_row, "due"), name
        assert "overdue" not in on_time_row, name
        # and the overdue one is flagged
        assert _cell(late_row, "stage") == "check", name
        assert 'class="due overdue" data-overdue="true"' in _cell(late_row, "due"), name
        assert '<span class="badge overdue">overdue</span>' in _cell(late_row, "due"), name
    # and the request sent back waits in "changes requested", in the lists and her inbox
    for html in (pages["my requests"].content.decode(), pages["all requests"].content.decode()):
        assert _cell(_row(html, sent_back), "stage") == "changes requested"
    inbox = world.client("requester").get(reverse("approvals:inbox")).content.decode()
    assert _cell(_row(inbox, sent_back), "stage") == "changes requested"
    assert f'data-request="{sent_back.pk}"' not in pages["inbox of the approver"].content.decode()
