"""Pages for everyone: every page, as each role that can see it, at desktop (1280 px) and
phone (390 px) widths, in a real Chromium. axe-core finds no serious or critical
accessibility violation, and at 390 px nothing scrolls sideways; the route diagram fits
its card with its last node in view.

The Django admin is Django's own (its markup is not this project's), so it is left out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page, expect

from approvals.demo import DEMO_PASSWORD, demo_load
from approvals.models import ApprovalRequest

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]

WIDTHS = {"desktop": 1280, "phone": 390}
BLOCKING = {"serious", "critical"}
AXE = Axe()


def _log_in(page: Page, username: str) -> None:
    page.goto("/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_test_id("current-user")).to_be_visible()


def _pages_of(role: str) -> list[str]:
    """The pages `role` (a demo login) can open: everyone's, then their role's own."""
    rita_requests = ApprovalRequest.objects.filter(requester__username="rita").order_by("pk")
    first = rita_requests.first()
    assert first is not None
    everyone = [
        "/",
        "/inbox/",
        "/requests/",
        "/notifications/",
        "/delegations/",
        "/account/",
        "/no-such-page/",
    ]
    own = {
        "rita": [
            "/requests/new/",
            "/requests/new/expense/",
            "/requests/new/purchase/",
            *[f"/requests/{r.pk}/" for r in rita_requests],
        ],
        "alex": [f"/requests/{r.pk}/" for r in rita_requests],
        "maria": ["/team/", "/requests/all/", f"/requests/{first.pk}/"],
        "audrey": [
            "/requests/all/",
            "/audit/",
            "/audit/checkpoints/",
            "/audit/exports/",
            "/audit/separation-of-duties/",
            f"/audit/requests/{first.pk}/",
            f"/requests/{first.pk}/",
        ],
        "admin": ["/team/", "/requests/all/", "/audit/", f"/requests/{first.pk}/"],
    }
    return everyone + own[role]


def _problems_on(page: Page, url: str, width: int) -> list[str]:
    """What is wrong with `url` at `width`: serious/critical axe violations, and (at phone
    width) sideways scrolling and a diagram wider than its card."""
    page.set_viewport_size({"width": width, "height": 900})
    page.goto(url)
    page.wait_for_load_state("load")
    return _problems_here(page, url, width)


def _problems_here(page: Page, url: str, width: int) -> list[str]:
    found = []
    results: dict[str, Any] = AXE.run(page).response
    for violation in results["violations"]:
        if violation.get("impact") in BLOCKING:
            targets = [", ".join(node["target"]) for node in violation["nodes"][:3]]
            found.append(
                f"{url} @{width}: {violation['impact']} {violation['id']}: {violation['help']} {targets}"
            )
    if width <= 400:
        widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
        if widths[0] > widths[1]:
            wide = page.evaluate(
                """() => Array.from(document.querySelectorAll('body *'))
                    .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
                    .slice(0, 4).map((e) => e.tagName.toLowerCase() + '.' + (e.className.baseVal ?? e.className))"""
            )
            found.append(f"{url} @{width}: scrolls sideways ({widths[0]} > {widths[1]}): {wide}")
        for box in page.locator(".diagram-wrap").all():
            card = box.bounding_box()
            svg = box.locator("svg").bounding_box()
            if card and svg and svg["x"] + svg["width"] > card["x"] + card["width"] + 1:
                found.append(f"{url} @{width}: a diagram is wider than its card")
    return found


@pytest.mark.parametrize("username", ["rita", "alex", "maria", "audrey", "admin"])
def test_every_page_is_accessible_and_fits_a_phone(new_page: Callable[[], Page], username: str) -> None:
    # given the demo data, and one person of a role logged in
    demo_load()
    page = new_page()
    _log_in(page, username)
    # when each page they can see is opened at desktop and at phone width
    problems = [
        problem
        for url in _pages_of(username)
        for width in WIDTHS.values()
        for problem in _problems_on(page, url, width)
    ]
    # then axe finds nothing serious, and nothing is wider than the phone
    assert not problems, "\n".join(problems)


def test_the_login_and_error_pages_are_accessible_and_fit_a_phone(new_page: Callable[[], Page]) -> None:
    page = new_page()
    problems = [
        problem
        for url in ("/login/", "/no-such-page/")
        for width in WIDTHS.values()
        for problem in _problems_on(page, url, width)
    ]
    assert not problems, "\n".join(problems)


def test_the_route_diagram_shows_its_last_node_inside_its_card_on_a_phone(
    new_page: Callable[[], Page],
) -> None:
    # given a request whose route has several stages (an expense claim: manager, finance, CFO)
    demo_load()
    req = (
        ApprovalRequest.objects.filter(requester__username="rita", request_type__slug="expense")
        .exclude(policy_version=None)
        .order_by("pk")
        .first()
    )
    assert req is not None
    page = new_page()
    _log_in(page, "rita")
    page.set_viewport_size({"width": 390, "height": 900})
    # when its page is opened on a phone
    page.goto(f"/requests/{req.pk}/")
    card = page.get_by_test_id("route-card").bounding_box()
    diagram = page.get_by_test_id("route").locator("svg")
    # then the diagram fits its card and its last node (the end of the route) is inside it
    box = diagram.bounding_box()
    assert card is not None
    assert box is not None
    assert box["x"] >= card["x"]
    assert box["x"] + box["width"] <= card["x"] + card["width"]
    last = diagram.locator("rect").last.bounding_box()
    assert last is not None
    assert last["x"] + last["width"] <= card["x"] + card["width"]
    # and no label is cut short with an ellipsis
    assert "…" not in (diagram.text_content() or "")


def test_the_sweep_itself_catches_a_missing_label_and_sideways_scrolling(
    new_page: Callable[[], Page],
) -> None:
    # given the login page on a phone, spoiled on purpose: an input nobody labelled, and a
    # block wider than the screen
    page = new_page()
    page.set_viewport_size({"width": 390, "height": 900})
    page.goto("/login/")
    page.evaluate(
        """() => {
            const input = document.createElement("input");
            input.type = "text";
            document.querySelector("main").appendChild(input);
            const wide = document.createElement("pre");
            wide.textContent = "x".repeat(400);
            wide.className = "too-wide";
            document.querySelector("main").appendChild(wide);
        }"""
    )
    # when the sweep's checks run on it
    problems = "\n".join(_problems_here(page, "/login/", 390))
    # then both are reported
    assert "label" in problems, problems
    assert "scrolls sideways" in problems, problems
