"""Security headers on every kind of answer, and pages that a strict CSP lets work.

The Content-Security-Policy allows this site's own files and nothing else: no inline
script or style (a style attribute included), no eval, no remote origin. So besides the
headers, each HTML page is read for anything inline such a policy would block; the
browser tests then run the pages with the policy on and fail on any violation.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import User
from approvals.models import ApprovalRequest, RequestType
from config.headers import permissions_policy_header
from tests.factories import UserFactory, make_request, make_requester

pytestmark = pytest.mark.django_db

CSP = {
    "default-src": "'none'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self'",
    "font-src": "'self'",
    "connect-src": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
    "base-uri": "'none'",
    "object-src": "'none'",
}
FORBIDDEN_IN_CSP = ("unsafe-inline", "unsafe-eval", "unsafe-hashes", "http:", "https:", "*", "data:")
EVERY_RESPONSE = {
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# Inline code a strict policy blocks: a <script> without src, <style>, style="…", on…="…",
# javascript: URLs.
INLINE = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE),
    "style element": re.compile(r"<style[\s>]", re.IGNORECASE),
    "style attribute": re.compile(r"<[^>]+\sstyle\s*=", re.IGNORECASE),
    "event handler attribute": re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE),
    "javascript: URL": re.compile(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", re.IGNORECASE),
}


def csp_directives(header: str) -> dict[str, str]:
    """'a x; b y z' → {'a': 'x', 'b': 'y z'} (django-csp writes them in no fixed order)."""
    parts = [part.strip().split(None, 1) for part in header.split(";") if part.strip()]
    return {name: (rest[0] if rest else "") for name, *rest in parts}


def assert_secure_headers(response: Any, *, page: bool = True) -> None:
    for header, value in EVERY_RESPONSE.items():
        assert response.get(header) == value, f"{header}: {response.get(header)!r}"
    policy = response.get("Content-Security-Policy", "")
    assert csp_directives(policy) == CSP, policy
    for word in FORBIDDEN_IN_CSP:
        assert word not in policy.replace("'self'", ""), f"{word} in the CSP"
    permissions = response.get("Permissions-Policy", "")
    for feature in ("camera=()", "microphone=()", "geolocation=()", "payment=()", "usb=()"):
        assert feature in permissions, permissions
    if page:
        assert response.get("X-Frame-Options") == "DENY"


def assert_nothing_inline(response: Any) -> None:
    html = response.content.decode()
    found = {name: pattern.findall(html)[:3] for name, pattern in INLINE.items() if pattern.search(html)}
    assert not found, found


@pytest.fixture
def site(request_type: RequestType, requester: User, approver: User) -> dict[str, Any]:
    admin = UserFactory.create(username="ada", is_staff=True, is_superuser=True)
    req = make_request(requester=requester, request_type=request_type)
    other = make_request(requester=make_requester(username="someone"), request_type=request_type)
    return {"rita": requester, "alex": approver, "ada": admin, "req": req, "other": other}


def as_person(user: User | None, **extra: Any) -> Client:
    client = Client(**extra)
    if user is not None:
        client.force_login(user)
    return client


def _pages(site: dict[str, Any]) -> list[tuple[str, str, str | None, int]]:
    req: ApprovalRequest = site["req"]
    version = req.request_type.current_policy_id
    type_pk = req.request_type_id
    slug = req.request_type.slug
    return [
        # (what, url, who, expected status)
        ("login", "/login/", None, 200),
        ("home", "/", "rita", 200),
        ("inbox", "/inbox/", "alex", 200),
        ("my requests", "/requests/", "rita", 200),
        ("request page", f"/requests/{req.pk}/", "rita", 200),
        ("request page (approver, decision form)", f"/requests/{req.pk}/", "alex", 200),
        ("new request: types", "/requests/new/", "rita", 200),
        ("new request: form", f"/requests/new/{slug}/", "rita", 200),
        ("account", "/account/", "rita", 200),
        ("not allowed (403)", "/requests/all/", "rita", 403),
        ("not found (404)", "/no-such-page/", "rita", 404),
        ("someone else's request (404)", f"/requests/{site['other'].pk}/", "rita", 404),
        ("anonymous sent to log in", "/inbox/", None, 302),
        ("admin login", "/admin/login/", None, 200),
        ("admin index", "/admin/", "ada", 200),
        ("admin list", "/admin/approvals/approvalrequest/", "ada", 200),
        ("admin request", f"/admin/approvals/approvalrequest/{req.pk}/change/", "ada", 200),
        ("admin request type", f"/admin/approvals/requesttype/{type_pk}/change/", "ada", 200),
        ("admin policy version", f"/admin/approvals/policyversion/{version}/change/", "ada", 200),
        ("admin policy simulate", f"/admin/approvals/policyversion/{version}/simulate/", "ada", 200),
        ("admin add user", "/admin/accounts/user/add/", "ada", 200),
        ("admin user", f"/admin/accounts/user/{site['rita'].pk}/change/", "ada", 200),
        ("admin password", f"/admin/accounts/user/{site['rita'].pk}/password/", "ada", 200),
        ("admin access attempts", "/admin/axes/accessattempt/", "ada", 200),
        ("admin access failures", "/admin/axes/accessfailurelog/", "ada", 200),
        ("admin delegation form", "/admin/accounts/delegation/add/", "ada", 200),
        ("admin team form", "/admin/accounts/team/add/", "ada", 200),
    ]


def test_every_page_carries_the_security_headers_and_nothing_inline(site: dict[str, Any]) -> None:
    # given every kind of page, each opened by someone who may see it (or is refused)
    clients: dict[str | None, Client] = {}
    problems = []
    for what, url, who, status in _pages(site):
        if who not in clients:
            clients[who] = as_person(site[who] if who else None)
        # when it is opened
        response = clients[who].get(url)
        # then it answers as expected, with every security header, and nothing inline
        try:
            assert response.status_code == status
            assert_secure_headers(response)
            if response.get("Content-Type", "").startswith("text/html"):
                assert_nothing_inline(response)
        except AssertionError as exc:
            problems.append(f"{what} ({url}, {response.status_code}): {exc}")
    assert not problems, "\n".join(problems)


def test_posted_forms_with_errors_carry_the_headers(site: dict[str, Any]) -> None:
    # given a requester, and a login form
    rita = as_person(site["rita"])
    slug = site["req"].request_type.slug
    # when forms come back with errors
    answers: list[Any] = [
        Client().post("/login/", {"username": "rita", "password": "wrong"}),
        # (a refused form goes back to its page, which shows the errors: followed here)
        rita.post(f"/requests/new/{slug}/", {"title": ""}, follow=True),
    ]
    # then they too carry the headers and nothing inline
    for response in answers:
        assert response.status_code in {200, 400}
        assert b"error" in response.content
        assert_secure_headers(response)
        assert_nothing_inline(response)


def test_the_lockout_page_carries_the_headers(site: dict[str, Any], settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = settings.LOGIN_FAILURE_LIMIT = 1
    response = Client().post("/login/", {"username": "rita", "password": "wrong"})
    assert response.status_code == 429
    assert_secure_headers(response)
    assert_nothing_inline(response)


@pytest.mark.urls("tests.config.urls_error")
def test_a_server_error_carries_the_headers(site: dict[str, Any]) -> None:
    # given a page that fails  /  when it is opened
    response = as_person(site["rita"], raise_request_exception=False).get("/fails/")
    # then the error answer carries every header too
    assert response.status_code == 500
    assert_secure_headers(response)


@pytest.mark.parametrize("path", ["/static/css/baton.css", "/static/js/live.js", "/static/css/admin.css"])
def test_static_files_carry_the_headers(settings: Any, path: str) -> None:
    # given static files served as in production (WhiteNoise, before the rest of Django)
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    # when one is fetched
    response = Client().get(path)
    # then it carries the headers (nosniff matters most here)
    assert response.status_code == 200
    assert_secure_headers(response, page=False)


def test_admin_static_files_carry_the_headers(settings: Any) -> None:
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    response = Client().get("/static/admin/js/core.js")
    assert response.status_code == 200
    assert_secure_headers(response, page=False)


def test_no_template_of_the_site_holds_inline_code() -> None:
    # given every template of the site (admin overrides included)
    templates = sorted((Path(settings.BASE_DIR) / "templates").rglob("*.html"))
    assert templates
    # when each is read  /  then none holds inline script, style or handlers
    found = {
        str(t.relative_to(settings.BASE_DIR)): name
        for t in templates
        for name, pattern in INLINE.items()
        if pattern.search(t.read_text(encoding="utf-8"))
    }
    assert not found, found


def test_the_permissions_policy_header_is_written_as_the_standard_says() -> None:
    assert permissions_policy_header({"camera": [], "fullscreen": ["self"]}) == "camera=(), fullscreen=(self)"
