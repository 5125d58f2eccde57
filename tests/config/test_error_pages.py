"""The error pages people meet with DEBUG off (the default, also in the embedded mode):
styled 400, 403, 404, 413 and 500 pages, never Django's debug pages; a too-large post is a
413 that says so and saves nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.template import loader
from django.test import Client

from accounts.models import User
from approvals.models import ApprovalRequest, Attachment, Comment, RequestType
from tests.factories import make_request

pytestmark = pytest.mark.django_db

BASE_DIR = Path(__file__).resolve().parents[2]
# What Django's debug pages say, and a styled page never does.
DEBUG_MARKS = (b"Using the URLconf", b"Traceback", b"DEBUG = True", b"RequestDataTooBig", b"technical")


def _as(user: User) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


@pytest.fixture
def req(request_type: RequestType, requester: User) -> ApprovalRequest:
    return make_request(requester=requester, request_type=request_type)


def _assert_styled(response: Any, *, status: int, heading: str) -> str:
    html = response.content.decode()
    assert response.status_code == status
    assert response["Content-Type"].startswith("text/html")
    assert heading in html, html[:400]
    assert "css/baton.css" in html
    for mark in DEBUG_MARKS:
        assert mark not in response.content, mark
    return html


@pytest.mark.parametrize(("flag", "shown"), [(None, "False"), ("1", "True"), ("0", "False")])
def test_the_embedded_mode_serves_no_debug_pages_unless_baton_debug_says_so(
    flag: str | None, shown: str
) -> None:
    # given the embedded settings, with or without BATON_DEBUG (and a stray DEBUG=1 ignored)
    env = {k: v for k, v in os.environ.items() if k not in {"DJANGO_SETTINGS_MODULE", "BATON_DEBUG"}}
    env["DEBUG"] = "1"
    if flag is not None:
        env["BATON_DEBUG"] = flag
    # when the settings are loaded
    done = subprocess.run(
        [sys.executable, "-c", "from config.settings import embedded; print(embedded.DEBUG)"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    # then DEBUG is on only when BATON_DEBUG turns it on
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == shown


def test_a_page_that_does_not_exist_is_the_styled_404(requester: User) -> None:
    response = _as(requester).get("/no-such-page/")
    _assert_styled(response, status=404, heading="Not found")


def test_a_refused_page_is_the_styled_403(requester: User) -> None:
    # given a requester  /  when they open the list of every request (for managers)
    response = _as(requester).get("/requests/all/")
    _assert_styled(response, status=403, heading="You may not open this page")


def test_a_bad_request_is_the_styled_400() -> None:
    # given a request for a host this site does not serve (Django answers 400)
    response = Client(raise_request_exception=False).get("/login/", HTTP_HOST="evil.example")
    _assert_styled(response, status=400, heading="The request could not be understood")


@pytest.mark.urls("tests.config.urls_error")
def test_a_server_error_is_the_styled_500_without_a_request_context(requester: User) -> None:
    # given a page that fails  /  when it is opened
    response = _as(requester).get("/fails/")
    # then the 500 page comes up, styled, saying nothing of the failure's inside
    html = _assert_styled(response, status=500, heading="Something went wrong on our side")
    assert "on purpose" not in html
    assert "RuntimeError" not in html


def test_the_500_page_renders_with_no_request_and_no_database(django_assert_num_queries: Any) -> None:
    # given the template Django renders for a 500 (with a plain Context, no request)
    # when it is rendered  /  then it needs no query and no request
    with django_assert_num_queries(0):
        html = loader.get_template("500.html").render()
    assert "Something went wrong on our side" in html


@pytest.mark.parametrize("debug", [False, True], ids=["debug off", "even with BATON_DEBUG"])
def test_a_form_post_over_the_form_limit_is_a_413_page_and_nothing_is_saved(
    requester: User, req: ApprovalRequest, settings: Any, debug: bool
) -> None:
    settings.DEBUG = debug
    # given a comment of 3 MB of text (over Django's 2.5 MB limit for a form's fields)
    body = "x" * (3 * 1024 * 1024)
    # when it is posted as an ordinary form
    response = _as(requester).post(
        f"/requests/{req.pk}/comments/",
        f"body={body}",
        content_type="application/x-www-form-urlencoded",
    )
    # then a clear 413 page says so, and no comment was written
    html = _assert_styled(response, status=413, heading="What you sent is too large")
    assert "The text of the form you sent is larger than this site accepts." in html
    assert "Nothing was saved." in html
    assert not Comment.objects.filter(request=req).exists()


def test_a_file_upload_over_the_request_limit_is_a_413_page(
    requester: User, req: ApprovalRequest, settings: Any
) -> None:
    # given a request limit of 64 KB and a file of 100 KB
    settings.REQUEST_MAX_BYTES = 64 * 1024
    upload = SimpleUploadedFile("big.pdf", b"%PDF-1.4\n" + b"0" * 100 * 1024, content_type="application/pdf")
    # when it is posted on the request's thread
    response = _as(requester).post(
        f"/requests/{req.pk}/comments/", {"body": "see attached", "attachments": [upload]}
    )
    # then the 413 page names the limit and what was sent; nothing was stored
    html = _assert_styled(response, status=413, heading="What you sent is too large")
    assert "64.0\xa0KB" in html  # filesizeformat keeps number and unit together
    assert not Comment.objects.filter(request=req).exists()
    assert not Attachment.objects.exists()


def test_an_api_client_over_the_limit_gets_problem_json(requester: User, settings: Any) -> None:
    # given a JSON client and a request limit of 1 KB
    settings.REQUEST_MAX_BYTES = 1024
    # when it posts 2 KB
    response = _as(requester).post(
        "/api/requests/",
        {"title": "x" * 2048},
        content_type="application/json",
        HTTP_ACCEPT="application/json",
    )
    # then the answer is an RFC 9457 problem with status 413
    assert response.status_code == 413
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 413
    assert problem["limit"] == 1024
    assert "larger than this site accepts" in problem["detail"]
