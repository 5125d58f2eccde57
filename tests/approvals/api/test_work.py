"""The inbox with claim, release and reassign; the audit trail for auditors."""

from __future__ import annotations

import json

import pytest

from tests.approvals.api.conftest import API, ApiWorld
from workflows.models import Handoff

pytestmark = pytest.mark.django_db


def test_inbox_lists_what_waits_for_the_approver_and_claim_release(api: ApiWorld) -> None:
    req = api.new_request()
    client = api.client("approver")
    inbox = client.get(f"{API}/inbox/").json()
    assert [r["request"]["id"] for r in inbox["results"]] == [req.pk]
    handoff_id = inbox["results"][0]["handoff"]["id"]
    claimed = client.post(f"{API}/handoffs/{handoff_id}/claim/")
    assert claimed.status_code == 200
    assert claimed.json()["assignee"]["username"] == "alex"
    released = client.post(f"{API}/handoffs/{handoff_id}/release/")
    assert released.status_code == 200
    assert released.json()["assignee"] is None


def test_inbox_is_empty_for_an_approver_of_another_group_who_cannot_claim(api: ApiWorld) -> None:
    req = api.new_request()
    handoff = Handoff.objects.for_instance(req).get()
    client = api.client("other_approver")
    assert client.get(f"{API}/inbox/").json()["results"] == []
    assert client.post(f"{API}/handoffs/{handoff.pk}/claim/").status_code == 404


def test_bad_inbox_filter_is_a_400_naming_it(api: ApiWorld) -> None:
    response = api.client("approver").get(f"{API}/inbox/", {"sort": "sideways"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "sort"


def test_a_manager_reassigns_and_a_requester_may_not(api: ApiWorld) -> None:
    req = api.new_request()
    handoff = Handoff.objects.for_instance(req).get()
    body = {"reason": "Alex is away", "to_user": "maria"}
    refused = api.client("requester").post(f"{API}/handoffs/{handoff.pk}/reassign/", body, format="json")
    assert refused.status_code == 403
    done = api.client("manager").post(f"{API}/handoffs/{handoff.pk}/reassign/", body, format="json")
    assert done.status_code == 200, done.json()
    assert done.json()["assignee"]["username"] == "maria"
    missing_reason = api.client("manager").post(
        f"{API}/handoffs/{done.json()['id']}/reassign/", {"to_user": "alex"}, format="json"
    )
    assert missing_reason.status_code == 400
    assert missing_reason.json()["errors"][0]["field"] == "reason"


def test_auditor_reads_and_exports_the_trail_others_may_not(api: ApiWorld) -> None:
    req = api.new_request()
    auditor = api.client("auditor")
    entries = auditor.get(f"{API}/audit/entries/", {"ref": req.reference}).json()
    assert [e["action"] for e in entries["results"]] == ["submit", "create"]
    exported = auditor.get(f"{API}/audit/export/", {"ref": req.reference, "as": "jsonl"})
    assert exported.status_code == 200
    body = b"".join(exported.streaming_content)  # type: ignore[attr-defined]
    lines = [json.loads(line) for line in body.decode().splitlines()]
    assert "completeness" in lines[-1]
    assert len(lines) == 3
    assert api.client("requester").get(f"{API}/audit/entries/").status_code == 403
    assert api.client("approver").get(f"{API}/audit/export/").status_code == 403


def test_bad_audit_filter_is_a_400_naming_the_field(api: ApiWorld) -> None:
    response = api.client("auditor").get(f"{API}/audit/entries/", {"actor": "nobody-at-all"})
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "actor"


def test_the_export_is_csv_when_asked_and_a_bundle_is_not_a_format_here(api: ApiWorld) -> None:
    req = api.new_request()
    auditor = api.client("auditor")
    exported = auditor.get(f"{API}/audit/export/", {"ref": req.reference, "as": "csv"})
    assert exported["Content-Type"].startswith("text/csv")
    body = b"".join(exported.streaming_content).decode()  # type: ignore[attr-defined]
    assert body.splitlines()[0].startswith("id,")
    assert body.splitlines()[-1].startswith("#completeness")
    refused = auditor.get(f"{API}/audit/export/", {"as": "bundle"})
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["field"] == "as"
