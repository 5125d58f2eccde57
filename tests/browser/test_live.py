"""Live pages in real Chromium: two people, one acts, the other's open pages follow in place."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from playwright.sync_api import Locator, Page, expect

from accounts.models import User
from accounts.roles import APPROVERS, REQUESTERS, ROLE_PERMISSIONS, roles_sync
from approvals.models import ApprovalRequest, RequestType
from tests.factories import GroupFactory, RequestTypeFactory, UserFactory, make_request

T = TypeVar("T")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    # WhiteNoise under ASGI buffers static files and says so: expected in the embedded mode.
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]


def _world() -> tuple[RequestType, Group, dict[str, User]]:
    found = {g.name: g for g in Group.objects.filter(name__in=ROLE_PERMISSIONS)}
    roles = found if len(found) == len(ROLE_PERMISSIONS) else roles_sync()
    reviewers = GroupFactory.create(name="reviewers")
    request_type = RequestTypeFactory.create(slug="equipment", name="Equipment", approver_group=reviewers)
    people = {
        "rita": UserFactory.create(
            username="rita", first_name="Rita", last_name="Requester", member_of=[roles[REQUESTERS]]
        ),
        "alex": UserFactory.create(
            username="alex", first_name="Alex", last_name="Approver", member_of=[roles[APPROVERS], reviewers]
        ),
        "bea": UserFactory.create(
            username="bea", first_name="Bea", last_name="Approver", member_of=[roles[APPROVERS], reviewers]
        ),
    }
    return request_type, reviewers, people


def _log_in(page: Page, username: str, full_name: str) -> None:
    page.goto("/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill("pw")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("current-user")).to_have_text(full_name)


def _listening(page: Page, path: str) -> None:
    page.goto(path)
    expect(page.locator("body[data-live-connected='1']")).to_have_count(1)
    page.evaluate("window.__sameDocument = true")


def _row(page: Page, req: ApprovalRequest) -> Locator:
    return page.locator(f"[data-testid=inbox] tr[data-request='{req.pk}']")


def _elsewhere(change: Callable[[], T]) -> T:
    """Run a change in a thread of its own, as another process would: Playwright's loop
    runs in the test's thread, where the change's after-commit push could not reach the
    channel layer."""
    result: list[T] = []

    def run() -> None:
        try:
            result.append(change())
        finally:
            connection.close()

    worker = threading.Thread(target=run)
    worker.start()
    worker.join(30)
    assert result, "the change failed (see the log)"
    return result[0]


def test_one_approves_and_the_others_open_pages_follow_without_a_reload(new_page: Callable[[], Page]) -> None:
    # given a request waiting for the reviewers, Alex and Bea both reviewers
    request_type, _, people = _world()
    req = make_request(requester=people["rita"], request_type=request_type, title="Standing desk")
    alex, bea_inbox = new_page(), new_page()
    _log_in(alex, "alex", "Alex Approver")
    _log_in(bea_inbox, "bea", "Bea Approver")
    bea_page = bea_inbox.context.new_page()
    # and Bea has her inbox and the request's page open, half-way through writing a comment
    _listening(bea_inbox, "/inbox/")
    expect(_row(bea_inbox, req)).to_contain_text("Standing desk")
    _listening(bea_page, f"/requests/{req.pk}/")
    expect(bea_page.get_by_role("button", name="Approve")).to_be_visible()
    bea_page.locator("#id_thread_body").fill("Checking the budget first")

    # when Alex approves it from his own page
    alex.goto(f"/requests/{req.pk}/")
    alex.get_by_label("Comment").fill("Fine, within budget.")
    alex.get_by_role("button", name="Approve").click()
    expect(alex.get_by_test_id("state")).to_have_text("Approved")

    # then Bea's open request page shows it approved, in place, and says who did it
    expect(bea_page.get_by_test_id("state")).to_have_text("Approved")
    expect(bea_page.get_by_test_id("live-notice")).to_have_text(f"Alex Approver approved {req.reference}")
    # and the now stale Approve button is gone, while what she was typing is still there
    expect(bea_page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(bea_page.locator("#id_thread_body")).to_have_value("Checking the budget first")
    # and her inbox dropped the item, again without a reload
    expect(_row(bea_inbox, req)).to_have_count(0)
    assert bea_page.evaluate("window.__sameDocument") is True
    assert bea_inbox.evaluate("window.__sameDocument") is True
    # and Alex, who acted, is shown no notice about himself
    expect(alex.get_by_test_id("live-notice")).to_be_hidden()


def test_someone_removed_from_a_group_stops_seeing_its_items_live(new_page: Callable[[], Page]) -> None:
    # given Bea, a reviewer, watching her inbox with one of the reviewers' items in it
    request_type, reviewers, people = _world()
    first = make_request(requester=people["rita"], request_type=request_type, title="Standing desk")
    bea, alex = new_page(), new_page()
    _log_in(bea, "bea", "Bea Approver")
    _log_in(alex, "alex", "Alex Approver")
    _listening(bea, "/inbox/")
    _listening(alex, "/inbox/")
    expect(_row(bea, first)).to_have_count(1)

    # when she is taken out of the reviewers while her inbox is open
    def remove_bea() -> bool:
        reviewers.user_set.remove(people["bea"])
        return True

    _elsewhere(remove_bea)
    # then her open inbox no longer lists the reviewers' item (re-rendered, no reload)
    expect(_row(bea, first)).to_have_count(0, timeout=5_000)
    refreshed = bea.evaluate("document.body.dataset.liveRefreshed")
    # and a new item for the reviewers reaches Alex live, but never Bea: her page hears nothing
    second = _elsewhere(
        lambda: make_request(requester=people["rita"], request_type=request_type, title="Chair")
    )
    expect(_row(alex, second)).to_contain_text("Chair")
    bea.wait_for_timeout(1_000)
    assert bea.evaluate("document.body.dataset.liveRefreshed") == refreshed
    expect(_row(bea, second)).to_have_count(0)
    assert bea.evaluate("window.__sameDocument") is True
