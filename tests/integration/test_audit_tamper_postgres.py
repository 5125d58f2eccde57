"""Tampering past the triggers on PostgreSQL, caught by `audit_verify --checkpoint` and by the
bundle's standalone verifier, each naming what differs.

Someone with superuser rights switches the ordinary triggers off (as the helpers in
tests/workflows/support.py do, inside the test's transaction only) and: edits an entry;
deletes the last entry; rewrites a chain consistently (hashes and head recomputed);
deletes a request with its whole chain; re-signs a checkpoint with a key of their own.
"""

from __future__ import annotations

import base64
import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from approvals.audit.bundle import bundle_write
from approvals.audit.export import export_start
from approvals.audit.filters import AuditFilter
from approvals.models import AuditExport
from approvals.services import request_act
from tests.approvals.test_audit_exports import run_verifier
from tests.factories import make_request
from tests.workflows.support import (
    audit_column_set,
    chain_rewrite,
    last_entry_remove_and_rehead,
    request_remove_with_chain,
)
from workflows import evidence_verifier as ev
from workflows.checkpoints import checkpoint_file_write, checkpoint_latest, public_key_id, public_key_pem
from workflows.models import AuditEntry

pytestmark = [pytest.mark.integration, pytest.mark.django_db]


@pytest.fixture
def trail(requester, request_type, approver, auditor, tmp_path: Path) -> dict[str, Any]:
    """Three decided requests, a signed checkpoint kept outside (a file) and the public key."""
    made = {}
    for name in ("edited", "cut", "rewritten", "removed", "kept"):
        req = make_request(requester=requester, request_type=request_type, title=name)
        request_act(request_id=req.pk, action="approve", actor=approver, comment="fine")
        req.refresh_from_db()
        made[name] = req
    call_command("audit_checkpoint", stdout=StringIO())
    kept = tmp_path / "checkpoint.json"
    checkpoint = checkpoint_latest()
    assert checkpoint is not None
    checkpoint_file_write(checkpoint, kept)
    key = tmp_path / "baton.pem"
    key.write_text(public_key_pem())
    return {"requests": made, "checkpoint": kept, "key": key, "auditor": auditor, "tmp": tmp_path}


def _verify_fails(path: Path) -> str:
    err = StringIO()
    with pytest.raises(CommandError) as broken:
        call_command("audit_verify", "--checkpoint", str(path), stdout=StringIO(), stderr=err)
    return str(broken.value) + "\n" + err.getvalue()


def _bundle(trail: dict[str, Any], audit_filter: AuditFilter, name: str) -> Path:
    export = export_start(user=trail["auditor"], audit_filter=audit_filter, fmt=AuditExport.Format.BUNDLE)
    path = trail["tmp"] / f"{name}.zip"
    with path.open("w+b") as out:
        bundle_write(out=out, audit_filter=audit_filter, user=trail["auditor"], export=export)
    return path


def _verifier_fails(trail: dict[str, Any], bundle: Path) -> str:
    done = run_verifier(bundle, "--public-key", str(trail["key"]))
    assert done.returncode == 1, done.stdout + done.stderr
    return done.stdout


def test_untouched_the_trail_verifies_both_ways(trail):
    out = StringIO()
    call_command("audit_verify", "--checkpoint", str(trail["checkpoint"]), stdout=out)
    assert "OK: 15 entries in 5 chains verified against checkpoint" in out.getvalue()
    done = run_verifier(_bundle(trail, AuditFilter(), "all"), "--public-key", str(trail["key"]))
    assert done.returncode == 0, done.stdout
    assert "OK: 15 entries verified" in done.stdout


def test_an_edited_entry_is_named(trail):
    req = trail["requests"]["edited"]
    entry = AuditEntry.objects.for_instance(req).get(seq=3)
    audit_column_set(entry.pk, "comment", "rubber-stamped")
    where = f"entry {entry.pk} ({req.workflow_ref()} #3)"
    assert f"{where}: contents do not match the entry's hash" in _verify_fails(trail["checkpoint"])
    bundle = _bundle(trail, AuditFilter(ref=req.reference), "edited")
    assert f"PROBLEM {where}: contents do not match the entry's hash (entry was altered)" in _verifier_fails(
        trail, bundle
    )


def test_a_removed_last_entry_is_named(trail):
    req = trail["requests"]["cut"]
    last_entry_remove_and_rehead(req)  # the chain alone verifies again
    call_command("audit_verify", stdout=StringIO())
    message = _verify_fails(trail["checkpoint"])
    assert f"{req.workflow_ref()}: chain ends at #2 but the checkpoint signed it up to #3" in message
    bundle = _bundle(trail, AuditFilter(ref=req.reference), "cut")
    assert (
        f"PROBLEM {req.workflow_ref()}: the chain ends at #2 but the checkpoint recorded #3 (entries removed)"
        in (_verifier_fails(trail, bundle))
    )


def test_a_consistently_rewritten_chain_is_named(trail):
    req = trail["requests"]["rewritten"]
    chain_rewrite(req, seq=2, comment="submitted with a different story")
    call_command("audit_verify", stdout=StringIO())  # hashes, links and head agree
    entry = AuditEntry.objects.for_instance(req).get(seq=3)
    message = _verify_fails(trail["checkpoint"])
    assert (
        f"entry {entry.pk} ({req.workflow_ref()} #3): its hash differs from the one the checkpoint signed"
        in message
    )
    bundle = _bundle(trail, AuditFilter(ref=req.reference), "rewritten")
    assert f"PROBLEM {req.workflow_ref()}: entry #3 has hash" in _verifier_fails(trail, bundle)
    assert "(the chain was rewritten)" in _verifier_fails(trail, bundle)


def test_a_request_removed_with_its_chain_is_named(trail):
    req = trail["requests"]["removed"]
    ref = req.workflow_ref()
    request_remove_with_chain(req)
    call_command("audit_verify", stdout=StringIO())  # nothing left to be inconsistent
    assert f"{ref}: the checkpoint signed 3 entries of this chain; none is left" in _verify_fails(
        trail["checkpoint"]
    )
    # a bundle of the whole trail, and one of that reference, both miss it
    for name, audit_filter in (("all", AuditFilter()), ("one", AuditFilter(ref=req.reference))):
        out = _verifier_fails(trail, _bundle(trail, audit_filter, name))
        assert f"PROBLEM {ref}: the checkpoint recorded 3 entries but the chain is missing" in out


def test_a_checkpoint_re_signed_with_another_key_is_named(trail):
    # given someone who rewrote a chain and signed a checkpoint of their own over it
    req = trail["requests"]["rewritten"]
    chain_rewrite(req, seq=3, comment="approved, truly")
    other = Ed25519PrivateKey.generate()
    other_pem = (
        other.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    document = json.loads(trail["checkpoint"].read_text())
    leaves = [[ref, seq, head] for ref, seq, head in document["leaves"]]
    req.refresh_from_db()
    leaves = [[ref, seq, req.audit_head if ref == req.workflow_ref() else head] for ref, seq, head in leaves]
    root = ev.merkle_root([ev.leaf_hash(ev.leaf_bytes(*leaf)) for leaf in leaves]).hex()
    statement = {
        **document["statement"],
        "root": root,
        "key_id": ev.key_id(ev.public_key_raw(other.public_key())),
    }
    forged = {
        **document,
        "statement": statement,
        "signature": base64.b64encode(other.sign(ev.statement_bytes(statement))).decode(),
        "public_key": other_pem,
        "leaves": leaves,
    }
    path = trail["tmp"] / "forged.json"
    path.write_text(json.dumps(forged))
    # then audit_verify, with Baton's key, names the other key
    assert (
        f"checkpoint signed with key id {statement['key_id']}, not Baton's key {public_key_id()}"
        in _verify_fails(path)
    )
    # and so does the standalone verifier on a bundle carrying the forged checkpoint and key
    bundle = _bundle(trail, AuditFilter(ref=req.reference), "forged")
    folder = trail["tmp"] / "forged-bundle"
    import zipfile  # noqa: PLC0415

    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(folder)
    (folder / "public_key.pem").write_text(other_pem)
    signed = {
        "checkpoint_id": None,
        "statement": statement,
        "signature": forged["signature"],
        "public_key": other_pem,
    }
    (folder / "checkpoint.json").write_text(json.dumps(signed))
    proofs_doc = json.loads((folder / "proofs.json").read_text())
    levels = ev.merkle_levels([ev.leaf_hash(ev.leaf_bytes(*leaf)) for leaf in sorted(leaves)])
    for proof in proofs_doc["proofs"]:
        proof["head"] = req.audit_head
        proof["path"] = [p.hex() for p in ev.merkle_path(levels, proof["index"])]
    (folder / "proofs.json").write_text(json.dumps(proofs_doc))
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    done = subprocess.run(
        [sys.executable, "-I", str(folder / "verify.py"), str(folder), "--public-key", str(trail["key"])],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout
    trusted = ev.key_id(ev.public_key_raw(ev.public_key_load(trail["key"].read_bytes())))
    assert (
        f"PROBLEM checkpoint: signed with key id {statement['key_id']}, not the trusted key {trusted}"
        in done.stdout
    )
    assert "PROBLEM checkpoint: the signature does not verify with the trusted key" in done.stdout
    # while the forgery is self-consistent: with its own key it would pass (what the kept key is for)
    alone = subprocess.run(
        [sys.executable, "-I", str(folder / "verify.py"), str(folder)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert alone.returncode == 0, alone.stdout
    assert f"trusting the public key inside the bundle (key id {statement['key_id']})" in alone.stdout


def test_the_checkpoint_file_downloaded_from_the_page_is_the_one_audit_verify_takes(trail, client):
    client.force_login(trail["auditor"])
    checkpoint = checkpoint_latest()
    assert checkpoint is not None
    response = client.get(reverse("audit:checkpoint", args=[checkpoint.pk]))
    path = trail["tmp"] / "downloaded.json"
    path.write_bytes(b"".join(response.streaming_content))
    out = StringIO()
    call_command("audit_verify", "--checkpoint", str(path), stdout=out)
    assert "OK: 15 entries in 5 chains" in out.getvalue()
