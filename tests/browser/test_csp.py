"""The strict Content-Security-Policy in a real Chromium: the site's pages and the Django
admin work under it, a violation is caught, and the account page logs out everywhere.

Every page opened through `new_page` fails its test on any CSP violation (conftest.py);
these tests walk the pages no other browser test opens, and prove the check itself.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from approvals.demo import DEMO_PASSWORD, demo_load
from approvals.models import ApprovalRequest, PolicyVersion

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    # WhiteNoise serves static files with a sync iterator; under ASGI Django buffers them
    # and says so. Expected in the embedded mode, not a failure of the pages.
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]


def _log_in(page: Page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("current-user")).to_be_visible()


def test_a_violation_on_a_page_is_caught(new_page: Callable[[], Page], csp_violations: list[str]) -> None:
    # given the login page, under the site's policy
    page = new_page()
    page.goto("/login/")
    # when something on it tries an inline script and a style attribute
    page.evaluate(
        """() => {
            const script = document.createElement("script");
            script.textContent = "document.title = 'injected'";
            document.body.appendChild(script);
            document.body.setAttribute("style", "background: red");
        }"""
    )
    # then both are blocked, and both reach the test
    page.wait_for_function("() => true")
    expect(page).not_to_have_title("injected")
    page.wait_for_timeout(200)
    blocked = " ".join(csp_violations)
    assert "script-src" in blocked, csp_violations
    assert "style-src" in blocked, csp_violations
    csp_violations.clear()  # provoked on purpose: the test must not fail for them


def test_the_site_s_pages_work_under_the_policy(new_page: Callable[[], Page]) -> None:
    # given the demo data, and Rita logged in through the login form
    demo_load()
    page = new_page()
    _log_in(page, "rita")
    req = ApprovalRequest.objects.filter(requester__username="rita").order_by("pk").first()
    assert req is not None
    # when she walks through every page she may open
    for url in ["/", "/inbox/", "/requests/", "/requests/new/", "/requests/new/expense/", "/account/"]:
        response = page.goto(url)
        # then each opens (and, by the fixture, without a single CSP violation)
        assert response is not None, url
        assert response.ok, url
    page.goto(f"/requests/{req.pk}/")
    # and the request page's diagrams are drawn (inline SVG, no style attributes)
    expect(page.locator("svg.diagram").first).to_be_visible()
    # and the live updates connect their WebSocket (connect-src 'self')
    page.goto("/inbox/")
    expect(page.locator("body[data-live-connected='1']")).to_have_count(1)
    # and a page that does not exist is the site's own 404 page
    response = page.goto("/no-such-page/")
    assert response is not None
    assert response.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()


def test_the_django_admin_works_under_the_policy(new_page: Callable[[], Page]) -> None:
    # given the demo data, and the administrator logged in through the admin's own form
    demo_load()
    page = new_page()
    page.goto("/admin/login/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#site-name")).to_be_visible()
    # when a list is opened  /  then its JavaScript works: "select all" ticks every row
    page.goto("/admin/accounts/user/")
    page.locator("#action-toggle").check()
    expect(page.locator(".action-counter")).to_contain_text("selected")
    assert page.locator("input.action-select:checked").count() == page.locator("input.action-select").count()
    page.goto("/admin/approvals/approvalrequest/")
    expect(page.locator("#result_list")).to_be_visible()
    # when a user's page is opened  /  then the admin's two-box group picker is built by its script
    page.goto("/admin/accounts/user/")
    page.get_by_role("link", name="rita", exact=True).click()
    expect(page.locator("#id_groups_from")).to_be_visible()
    # when a policy version is opened  /  then its styled buttons and its route diagram show
    version = PolicyVersion.objects.filter(status=PolicyVersion.Status.PUBLISHED).order_by("pk").first()
    assert version is not None
    page.goto(f"/admin/approvals/policyversion/{version.pk}/change/")
    expect(page.locator(".baton-diagram-box svg").first).to_be_visible()
    expect(page.locator("pre.baton-document")).to_be_visible()
    # and its simulation page works
    page.goto(f"/admin/approvals/policyversion/{version.pk}/simulate/")
    expect(page.get_by_role("button", name="Simulate")).to_be_visible()
    # and the lockout records are there to read
    page.goto("/admin/axes/accessattempt/")
    expect(page.locator("#content h1")).to_be_visible()


def test_log_out_everywhere_from_the_account_page(new_page: Callable[[], Page]) -> None:
    # given Rita logged in on two devices
    demo_load()
    laptop, phone = new_page(), new_page()
    _log_in(laptop, "rita")
    _log_in(phone, "rita")
    # (each device's start page has its live socket up: the test database is SQLite in
    # shared-cache memory, where a socket reading the session table while the log-out
    # deletes from it fails with "table is locked"; a file in WAL mode, as `make run`
    # uses, and PostgreSQL let both go on)
    for device in (laptop, phone):
        expect(device.locator("body[data-live-connected='1']")).to_have_count(1)
    # when she presses "Log out everywhere" on her account page, on the laptop
    laptop.get_by_test_id("current-user").click()
    laptop.get_by_test_id("log-out-everywhere").click()
    # then the laptop shows the login page, saying what happened
    expect(laptop.get_by_role("heading", name="Log in")).to_be_visible()
    expect(laptop.get_by_role("status")).to_contain_text("You were logged out everywhere")
    # and the phone's next page is the login page too
    phone.goto("/inbox/")
    expect(phone.get_by_role("heading", name="Log in")).to_be_visible()


def test_the_lockout_is_said_on_the_login_page_served_by_the_asgi_server(
    new_page: Callable[[], Page],
) -> None:
    # given Rita, and someone guessing her password in a browser (the ASGI server runs
    # django-axes' middleware in its async mode)
    demo_load()
    page = new_page()
    page.goto("/login/")
    # when five guesses fail
    for _ in range(5):
        page.get_by_label("User name").fill("rita")
        page.get_by_label("Password").fill("wrong")
        page.get_by_role("button", name="Log in").click()
    # then the login page says the user name is locked
    expect(page.get_by_test_id("lockout")).to_contain_text("Too many failed logins")
    # and even the right password is refused now
    page.get_by_label("User name").fill("rita")
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("lockout")).to_be_visible()
    expect(page.get_by_test_id("current-user")).to_have_count(0)
