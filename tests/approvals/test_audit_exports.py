"""Exports of the audit trail: their content, their completeness record, streaming at size,
evidence bundles checked by the standalone verifier, and the separation-of-duties report."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import subprocess
import sys
import tracemalloc
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from approvals.audit.export import COLUMNS, EXPORT_BATCH
from approvals.audit.sod import sod_report
from approvals.models import ApprovalRequest, AuditExport, ExportState
from tests.approvals.audit_world import REQUEST_ENTRIES, AuditWorld, audit_world_build
from tests.approvals.conftest import World
from workflows import evidence_verifier as ev
from workflows.audit import audit_entry_build, audit_verify
from workflows.checkpoints import checkpoint_create
from workflows.models import AuditEntry


@pytest.fixture
def audit_world(world: World) -> AuditWorld:
    return audit_world_build(world)


def _download(world: World, name: str, *args: Any, role: str = "auditor", **query: str) -> bytes:
    url = reverse(name, args=args) + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
    response = world.client(role).get(url)
    assert response.status_code == 200, response.content[:500]
    if response.streaming:
        return b"".join(cast(Any, response).streaming_content)
    return response.getvalue()


# --- CSV and JSON Lines ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_csv_export_holds_the_filtered_entries_and_ends_with_its_completeness_record(
    audit_world: AuditWorld,
):
    world = audit_world.world
    # when an auditor exports the decisions as CSV
    body = _download(world, "audit:export_csv", action="decisions")
    lines = body.decode().splitlines(keepends=True)
    rows = list(csv.reader(io.StringIO("".join(lines))))

    # then it has a header, the three decisions oldest first, and a completeness record
    assert rows[0] == COLUMNS
    decisions = list(
        AuditEntry.objects.filter(action__in=["approve", "reject", "request_changes"]).order_by(
            "created_at", "id"
        )
    )
    assert [int(r[0]) for r in rows[1:-1]] == [e.pk for e in decisions]
    assert [r[COLUMNS.index("action")] for r in rows[1:-1]] == ["approve", "request_changes", "approve"]
    assert rows[-1][0] == "#completeness"
    record = json.loads(rows[-1][1])["completeness"]
    # which states the filter, the count, the first and last entry, who, when, and a digest
    assert record["filter"]["query"] == {"action": "decisions"}
    assert record["rows"] == 3
    assert record["first_entry"]["id"] == decisions[0].pk
    assert record["last_entry"]["id"] == decisions[-1].pk
    assert record["last_entry"]["ref"] == f"approvals.approvalrequest:{decisions[-1].object_id}"
    assert record["exported_by"] == "audrey"
    assert record["digest"] == "sha256:" + hashlib.sha256("".join(lines[:-1]).encode()).hexdigest()

    # and the export itself is in the audit trail: started, then completed with that record
    export = AuditExport.objects.get()
    assert (export.state, export.format, export.rows, export.digest) == (
        ExportState.COMPLETE,
        "csv",
        3,
        record["digest"].removeprefix("sha256:"),
    )
    chain = list(AuditEntry.objects.for_instance(export).order_by("seq"))
    assert [(e.action, e.actor.username if e.actor else None) for e in chain] == [
        ("create", "audrey"),
        ("complete", "audrey"),
    ]
    assert chain[1].data["completeness"]["rows"] == 3
    assert audit_verify().ok
    # and the auditors see it in the log under its reference, and on the exports page
    log = world.client("auditor").get(reverse("audit:log") + f"?ref={export.reference}")
    assert [r.verb for r in log.context["page"].rows] == ["completed an export", "started an export"]
    assert export.reference in world.client("auditor").get(reverse("audit:exports")).content.decode()


@pytest.mark.django_db
def test_a_json_lines_export_carries_entries_whose_hashes_anyone_can_recompute(audit_world: AuditWorld):
    # when an auditor exports one request's entries as JSON Lines
    b = audit_world.req("b")
    body = _download(audit_world.world, "audit:export_jsonl", ref=b.reference)
    *entries, last = [json.loads(line) for line in body.decode().splitlines()]
    # then each line is one entry, whose hash the standalone verifier recomputes from it
    assert [e["seq"] for e in entries] == [1, 2, 3, 4, 5]
    assert all(ev.entry_body_hash(e) == e["hash"] for e in entries)
    assert entries[4]["actor_username"] == "bea"
    assert entries[4]["on_behalf_of_username"] == "alex"
    # and the last line is the completeness record, whose digest covers every line before it
    assert last["completeness"]["rows"] == 5
    before = body.decode().splitlines(keepends=True)[:-1]
    assert last["completeness"]["digest"] == "sha256:" + hashlib.sha256("".join(before).encode()).hexdigest()


@pytest.mark.django_db
def test_an_export_covers_what_was_recorded_before_it_started(audit_world: AuditWorld):
    # given an earlier export (its own entries are in the trail now)
    world = audit_world.world
    _download(world, "audit:export_jsonl")
    # when everything is exported again
    body = _download(world, "audit:export_jsonl")
    *entries, last = [json.loads(line) for line in body.decode().splitlines()]
    # then it holds the requests' entries and the first export's two, not its own
    assert len(entries) == REQUEST_ENTRIES + 2
    first, second = AuditExport.objects.order_by("pk")
    assert {e["ref"] for e in entries if "auditexport" in e["ref"]} == {f"approvals.auditexport:{first.pk}"}
    assert last["completeness"]["filter"]["recorded_before"] == second.created_at.isoformat()


def _fill(count: int, request: ApprovalRequest) -> None:
    """`count` note entries of one request, inserted with executemany (hashes not chained:
    the export copies entries, it does not verify them)."""
    content_type = ContentType.objects.get_for_model(ApprovalRequest)
    moment = connection.ops.adapt_datetimefield_value(timezone.now())
    columns = "content_type_id, object_id, seq, kind, action, source, target, comment, data, trace_id, created_at, prev_hash, hash"
    sql = f"INSERT INTO {AuditEntry._meta.db_table} ({columns}) VALUES ({', '.join(['%s'] * 13)})"
    rows = [
        (
            content_type.pk,
            str(request.pk),
            1000 + n,
            "note",
            "note",
            "",
            "",
            f"note {n}",
            json.dumps({"n": n, "text": "x" * 40}),
            "t",
            moment,
            "0" * 64,
            f"{n:064x}",
        )
        for n in range(count)
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


@pytest.mark.django_db
def test_an_export_of_200000_entries_streams_in_batches_with_flat_memory(world: World):
    # given 200,000 entries
    count = 200_000
    _fill(count, world.in_review)
    total = AuditEntry.objects.count()
    response = world.client("auditor").get(reverse("audit:export_csv"))
    stream = cast(Any, response).streaming_content

    # when the export is read piece by piece, its memory traced over 50 batches in the middle
    size, pieces, last = 0, 0, b""
    growth = peak = at_start = 0
    with CaptureQueriesContext(connection) as captured:
        for piece in stream:
            size += len(piece)
            pieces += 1
            last = piece
            if pieces == 10:
                tracemalloc.start()
            elif pieces == 20:  # one batch is alive from here on, as at the end
                at_start = tracemalloc.get_traced_memory()[0]
            elif pieces == 70:
                current, peak = tracemalloc.get_traced_memory()
                growth = current - at_start
                tracemalloc.stop()

    # then every entry went out, in pieces of one batch, each read by its own query
    record = json.loads(next(csv.reader(io.StringIO(last.decode())))[1])["completeness"]
    assert record["rows"] == total
    reads = [
        q for q in captured.captured_queries if "workflows_auditentry" in q["sql"] and "LIMIT" in q["sql"]
    ]
    assert len(reads) == total // EXPORT_BATCH + 1
    assert pieces >= total // EXPORT_BATCH
    # and memory stayed flat: nothing piled up over 100,000 rows, and the peak is a batch's worth
    assert size > 40_000_000
    assert growth < 1_000_000, f"{growth / 1e6:.1f} MB kept over 50 batches"
    assert peak < 8_000_000, f"peak {peak / 1e6:.1f} MB while {size / 1e6:.1f} MB were streamed"


# --- evidence bundles and the standalone verifier ------------------------------------------------


def run_verifier(bundle: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The bundle's own verify.py, run as an auditor would: a separate Python, no Baton."""
    folder = bundle.with_suffix("")
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(folder)
    return subprocess.run(
        [sys.executable, "-I", str(folder / "verify.py"), str(bundle), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=folder,
    )


@pytest.mark.django_db
def test_a_requests_bundle_verifies_offline_with_the_kept_public_key(audit_world: AuditWorld, tmp_path: Path):
    # given a checkpoint, then one more decision after it
    world, b, a = audit_world.world, audit_world.req("b"), audit_world.req("a")
    checkpoint_create()
    # when an auditor downloads the public key and the bundle of one request
    key = tmp_path / "baton.pem"
    key.write_bytes(_download(world, "audit:public_key"))
    bundle = tmp_path / "b.zip"
    bundle.write_bytes(_download(world, "audit:evidence_bundle", b.pk))
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        lines = archive.read("entries.jsonl").decode().splitlines()
    # then it holds the request's chain, the checkpoint, one proof, the key and the verifier
    assert names == {
        "entries.jsonl",
        "checkpoint.json",
        "proofs.json",
        "public_key.pem",
        "verify.py",
        "manifest.json",
        "README.txt",
    }
    assert [json.loads(line)["ref"] for line in lines] == [b.workflow_ref()] * 5
    assert manifest["proofs"] == 1
    assert manifest["completeness"]["rows"] == 5
    # and the verifier, run offline, accepts it
    done = run_verifier(bundle, "--public-key", str(key))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK: 5 entries verified" in done.stdout
    # and a bundle of a range (a's chain is whole in it though only its approval matched)
    assert a.pk
    ranged = tmp_path / "range.zip"
    ranged.write_bytes(_download(world, "audit:bundle", action="decisions"))
    done = run_verifier(ranged, "--public-key", str(key))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "OK: 8 entries verified" in done.stdout


@pytest.mark.django_db
def test_a_bundle_without_a_checkpoint_still_checks_hashes_and_links(audit_world: AuditWorld, tmp_path: Path):
    bundle = tmp_path / "a.zip"
    bundle.write_bytes(_download(audit_world.world, "audit:evidence_bundle", audit_world.req("a").pk))
    done = run_verifier(bundle)
    assert done.returncode == 0, done.stdout
    assert "no checkpoint in the bundle" in done.stdout


# --- the separation-of-duties report -------------------------------------------------------------


@pytest.mark.django_db
def test_the_sod_report_counts_a_known_trail(audit_world: AuditWorld):
    # given the known trail (tests/approvals/audit_world.py)
    report = sod_report()
    month = timezone.localdate().replace(day=1)
    rows = {(r.period, r.request_type): r for r in report.rows}
    general, finance = rows[(month, "General")], rows[(month, "Finance")]
    # then: no self-approval; bea's approval for alex; maria's cancel and reassignment; two system moves
    assert (
        general.self_approvals,
        general.on_behalf,
        general.overrides,
        general.system,
        general.entries,
    ) == (0, 1, 2, 2, 19)
    assert (
        finance.self_approvals,
        finance.on_behalf,
        finance.overrides,
        finance.system,
        finance.entries,
    ) == (0, 0, 0, 0, 2)
    assert report.cases == []
    # and the page says so
    html = audit_world.world.client("auditor").get(reverse("audit:sod")).content.decode()
    assert "No request was decided by its own requester" in html


@pytest.mark.django_db
def test_the_sod_report_finds_a_decision_by_the_requester_if_one_was_ever_recorded(audit_world: AuditWorld):
    # given an approval by the requester written into the trail past the service's checks
    f = audit_world.req("f")
    entry = audit_entry_build(
        instance=f,
        kind="transition",
        action="approve",
        actor=f.requester,
        source="in_review",
        target="approved",
        trace_id="forged",
    )
    entry.save()
    ApprovalRequest.objects.filter(pk=f.pk).update(audit_seq=f.audit_seq, audit_head=f.audit_head)
    # then the report counts it, lists it, and the page flags it
    report = sod_report(period="day")
    assert report.totals["self_approvals"] == 1
    assert [e.pk for e in report.cases] == [entry.pk]
    html = audit_world.world.client("auditor").get(reverse("audit:sod") + "?period=day").content.decode()
    assert (
        "1 decision by the request&#x27;s own requester" in html
        or "1 decision by the request's own requester" in html
    )
    # and a range that excludes today counts nothing
    assert sod_report(until=timezone.localdate() - timedelta(days=1)).rows == []
