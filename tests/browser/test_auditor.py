"""An auditor in a real Chromium: filters the log, opens an evidence page, exports, and
downloads a bundle that the standalone verifier accepts; under a strict CSP throughout."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from approvals.services import request_act
from tests.browser.test_slice import _log_in, _people
from tests.factories import make_request
from workflows.checkpoints import checkpoint_create

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume synchronous iterators"),
]


def test_an_auditor_filters_opens_evidence_exports_and_verifies_a_bundle(
    new_page: Callable[[], Page], tmp_path: Path
) -> None:
    # given two decided requests and a signed checkpoint
    request_type, people = _people()
    desk = make_request(requester=people["rita"], request_type=request_type, title="Desk")
    request_act(request_id=desk.pk, action="approve", actor=people["alex"], comment="Looks right")
    chair = make_request(requester=people["rita"], request_type=request_type, title="Chair")
    request_act(request_id=chair.pk, action="reject", actor=people["alex"], comment="Too dear")
    checkpoint_create()
    page = new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    _log_in(page, "audrey", "Audrey Auditor")

    # when she opens the audit log from the nav and filters by actor and kind of action
    page.get_by_test_id("nav-audit").click()
    expect(page.get_by_test_id("count")).to_contain_text("6 entries match")
    page.get_by_label("Actor").fill("alex")
    page.get_by_label("Action").select_option("decisions")
    page.get_by_role("button", name="Filter").click()
    # then she sees the two decisions, newest first, with their comments
    expect(page.get_by_test_id("count")).to_contain_text("2 entries match this filter")
    entries = page.get_by_test_id("entries").locator("> li")
    expect(entries).to_have_count(2)
    expect(entries.nth(0)).to_contain_text("rejected")
    expect(entries.nth(0)).to_contain_text("Too dear")

    # when she exports what matches as JSON Lines
    with page.expect_download() as download:
        page.get_by_test_id("export-jsonl").click()
    exported = tmp_path / "export.jsonl"
    download.value.save_as(exported)
    lines = exported.read_text().splitlines()
    # then the file holds the two decisions and its completeness record
    assert [json.loads(line)["action"] for line in lines[:-1]] == ["approve", "reject"]
    assert json.loads(lines[-1])["completeness"]["rows"] == 2

    # when she opens the desk request's evidence page from its entry
    entries.nth(1).get_by_role("link", name=desk.reference).click()
    expect(page.get_by_test_id("verdict")).to_contain_text("Intact: 3 entries")
    expect(page.get_by_test_id("evidence-history").locator("> li")).to_have_count(3)
    # and downloads its bundle and Baton's public key
    with page.expect_download() as download:
        page.get_by_test_id("evidence-bundle").click()
    bundle = tmp_path / "desk.zip"
    download.value.save_as(bundle)
    page.goto("/audit/checkpoints/")
    with page.expect_download() as download:
        page.get_by_test_id("public-key").click()
    key = tmp_path / "baton.pem"
    download.value.save_as(key)

    # then the bundle's own verifier, run offline with the kept key, accepts it
    folder = tmp_path / "desk"
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(folder)
    done = subprocess.run(
        [sys.executable, "-I", str(folder / "verify.py"), str(bundle), "--public-key", str(key)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK: 3 entries verified" in done.stdout
    # and no page broke the Content-Security-Policy
    assert violations == []
