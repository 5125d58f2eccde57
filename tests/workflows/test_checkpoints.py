"""Signed checkpoints: the Merkle tree, the key, making one, and verifying the trail against one."""

from __future__ import annotations

import base64
import hashlib
import json
from io import StringIO
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command
from django.core.management.base import CommandError

from approvals.services import request_act
from tests.factories import make_request
from tests.workflows.support import chain_rewrite, last_entry_remove_and_rehead, request_remove_with_chain
from workflows import evidence_verifier as ev
from workflows.checkpoints import (
    CheckpointRefused,
    SigningKeyMissing,
    checkpoint_create,
    checkpoint_leaves,
    public_key_id,
    signing_key,
)
from workflows.models import AppendOnlyError, AuditCheckpoint, AuditCheckpointHead, AuditEntry

# --- the Merkle tree --------------------------------------------------------------------------


def _rfc6962_root(leaves: list[bytes]) -> bytes:
    """MTH as RFC 6962 defines it: split at the largest power of two below n."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return ev.node_hash(_rfc6962_root(leaves[:k]), _rfc6962_root(leaves[k:]))


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 31, 33])
def test_the_tree_is_rfc_6962s_and_every_proof_proves_its_leaf(size: int) -> None:
    # given `size` leaves
    leaves = [ev.leaf_hash(ev.leaf_bytes(f"a.b:{i}", i + 1, f"{i:064x}")) for i in range(size)]
    levels = ev.merkle_levels(leaves)
    # then the root is RFC 6962's
    assert ev.merkle_root(leaves) == _rfc6962_root(leaves)
    for index, leaf in enumerate(leaves):
        # and each leaf's audit path leads to it, from its own position only
        path = ev.merkle_path(levels, index)
        assert ev.merkle_path_root(leaf, index, size, path) == ev.merkle_root(leaves)
        if size > 1:
            other = (index + 1) % size
            assert ev.merkle_path_root(leaf, other, size, path) != ev.merkle_root(leaves)


def test_an_empty_tree_has_the_hash_of_nothing_as_root() -> None:
    assert ev.merkle_root([]) == hashlib.sha256(b"").digest()


# --- the key ----------------------------------------------------------------------------------


def _pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_without_a_configured_key_signing_refuses_naming_both_settings(settings, tmp_path: Path) -> None:
    # given production-like settings: no key, and no generating one
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_SIGNING_KEY_FILE = str(tmp_path / "missing.pem")
    settings.AUDIT_SIGNING_KEY_GENERATE = False
    # when a checkpoint is asked for, then it refuses and says what to set
    with pytest.raises(SigningKeyMissing, match=r"AUDIT_SIGNING_KEY .*AUDIT_SIGNING_KEY_FILE"):
        signing_key()
    assert not (tmp_path / "missing.pem").exists()


def test_the_embedded_mode_generates_a_key_once_and_says_so(settings, tmp_path: Path, capsys) -> None:
    # given the embedded mode's settings and no key file yet
    path = tmp_path / "var" / "audit-signing-key.pem"
    settings.AUDIT_SIGNING_KEY = ""
    settings.AUDIT_SIGNING_KEY_FILE = str(path)
    settings.AUDIT_SIGNING_KEY_GENERATE = True
    # when the key is first needed
    key = signing_key()
    # then it was written there, readable by its owner only, and it was said
    assert path.exists()
    assert path.stat().st_mode & 0o777 == 0o600
    assert f"generated an audit signing key at {path}" in capsys.readouterr().err
    # and it is the same key the next time
    assert public_key_id(signing_key()) == public_key_id(key)


def test_a_key_in_an_environment_variable_may_carry_escaped_line_breaks(settings) -> None:
    # given a PEM whose line breaks were written as \n in an environment variable
    key = Ed25519PrivateKey.generate()
    settings.AUDIT_SIGNING_KEY = _pem(key).replace("\n", "\\n")
    # then it is read as the same key
    assert public_key_id(signing_key()) == public_key_id(key)


# --- making checkpoints -------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_checkpoint_signs_every_chains_head(requester, request_type, approver) -> None:
    # given two requests, one decided
    first = make_request(requester=requester, request_type=request_type)
    request_act(request_id=first.pk, action="approve", actor=approver, comment="fine")
    second = make_request(requester=requester, request_type=request_type, title="Second")

    # when a checkpoint is made
    checkpoint = checkpoint_create()

    # then it counts every entry and chain, and its statement is what was signed, by Baton's key
    assert (checkpoint.entries, checkpoint.chains) == (AuditEntry.objects.count(), 2)
    statement = json.loads(checkpoint.statement)
    assert statement == {
        "format": "baton-audit-checkpoint/1",
        "created_at": checkpoint.created_at.isoformat(timespec="microseconds"),
        "entries": 5,
        "chains": 2,
        "root": checkpoint.root,
        "previous_root": "",
        "key_id": public_key_id(),
    }
    public = ev.public_key_load(checkpoint.public_key.encode())
    assert ev.signature_valid(public, statement, checkpoint.signature)
    # and its root is the Merkle root over the two heads, sorted by reference
    first.refresh_from_db()
    second.refresh_from_db()
    leaves = sorted(
        [(first.workflow_ref(), 3, first.audit_head), (second.workflow_ref(), 2, second.audit_head)]
    )
    assert checkpoint.root == ev.merkle_root([ev.leaf_hash(ev.leaf_bytes(*leaf)) for leaf in leaves]).hex()
    assert [(leaf.ref, leaf.seq, leaf.head) for leaf in checkpoint_leaves(checkpoint)] == leaves


@pytest.mark.django_db
def test_the_next_checkpoint_stores_only_the_heads_that_moved(requester, request_type, approver) -> None:
    # given a checkpoint over two requests
    moving = make_request(requester=requester, request_type=request_type)
    make_request(requester=requester, request_type=request_type, title="Still")
    first = checkpoint_create()
    # when one request moves on and another checkpoint is made
    request_act(request_id=moving.pk, action="approve", actor=approver, comment="fine")
    second = checkpoint_create()
    # then it links to the first, stores one head, and still signs both chains
    assert second.previous_root == first.root
    assert AuditCheckpointHead.objects.filter(checkpoint=second).count() == 1
    assert second.chains == 2
    assert [leaf.seq for leaf in checkpoint_leaves(second)] == [3, 2]
    assert [leaf.seq for leaf in checkpoint_leaves(first)] == [2, 2]


@pytest.mark.django_db
def test_checkpoints_are_append_only(requester, request_type) -> None:
    make_request(requester=requester, request_type=request_type)
    checkpoint = checkpoint_create()
    with pytest.raises(AppendOnlyError):
        checkpoint.save()
    with pytest.raises(AppendOnlyError):
        AuditCheckpoint.objects.all().delete()
    with pytest.raises(AppendOnlyError):
        AuditCheckpointHead.objects.update(seq=1)


@pytest.mark.django_db
def test_a_checkpoint_refuses_to_sign_over_a_rewritten_or_removed_chain(requester, request_type, approver):
    # given three requests under a checkpoint
    rewritten = make_request(requester=requester, request_type=request_type, title="Rewritten")
    removed = make_request(requester=requester, request_type=request_type, title="Removed")
    moved = make_request(requester=requester, request_type=request_type, title="Moved on")
    checkpoint_create()
    # when one chain is rewritten consistently, one request removed with its chain, and the
    # third moves on after its signed entries were rewritten
    chain_rewrite(rewritten, seq=2, comment="never said")
    request_remove_with_chain(removed)
    chain_rewrite(moved, seq=1, comment="made up")
    moved.refresh_from_db()
    request_act(request_id=moved.pk, action="approve", actor=approver, comment="ok")

    # then the next checkpoint refuses, naming each chain, and signs nothing
    with pytest.raises(CheckpointRefused) as refused:
        checkpoint_create()
    problems = "\n".join(refused.value.problems)
    assert f"{rewritten.workflow_ref()}: head #2 differs from the signed one (chain rewritten)" in problems
    assert f"{removed.workflow_ref()}: signed with 2 entries, now gone" in problems
    assert f"{moved.workflow_ref()}: entry #2 no longer carries the signed hash" in problems
    assert AuditCheckpoint.objects.count() == 1


# --- audit_verify --checkpoint -------------------------------------------------------------------


def _kept_copy(tmp_path: Path) -> Path:
    path = tmp_path / "checkpoint.json"
    out = StringIO()
    call_command("audit_checkpoint", "--output", str(path), stdout=out)
    assert "Checkpoint " in out.getvalue()
    return path


def _verify(path: Path, *extra: str) -> str:
    with pytest.raises(CommandError) as broken:
        call_command("audit_verify", "--checkpoint", str(path), *extra, stdout=StringIO(), stderr=StringIO())
    return str(broken.value)


@pytest.mark.django_db
def test_audit_verify_accepts_an_untouched_trail_and_the_entries_after_the_checkpoint(
    requester, request_type, approver, tmp_path
):
    # given a kept checkpoint, and a request decided after it
    req = make_request(requester=requester, request_type=request_type)
    path = _kept_copy(tmp_path)
    request_act(request_id=req.pk, action="approve", actor=approver, comment="fine")
    # when the trail is verified against it
    out = StringIO()
    call_command("audit_verify", "--checkpoint", str(path), stdout=out)
    # then all is well
    assert "OK: 3 entries in 1 chains verified against checkpoint of" in out.getvalue()
    # and without the option it verifies as before
    out = StringIO()
    call_command("audit_verify", stdout=out)
    assert "OK: 3 entries in 1 chains verified; every chain is intact." in out.getvalue()


@pytest.mark.django_db
def test_audit_verify_names_a_consistently_rewritten_chain(requester, request_type, approver, tmp_path):
    # given a kept checkpoint over a decided request
    req = make_request(requester=requester, request_type=request_type)
    request_act(request_id=req.pk, action="approve", actor=approver, comment="fine")
    path = _kept_copy(tmp_path)
    # when its chain is rewritten consistently: the chain alone still verifies
    chain_rewrite(req, seq=3, comment="approved without reading it")
    call_command("audit_verify", stdout=StringIO())
    # then against the checkpoint it fails, naming the chain and the position
    message = _verify(path)
    last = AuditEntry.objects.for_instance(req).get(seq=3)
    assert (
        f"entry {last.pk} ({req.workflow_ref()} #3): its hash differs from the one the checkpoint" in message
    )


@pytest.mark.django_db
def test_audit_verify_names_a_chain_cut_short_and_a_chain_removed(
    requester, request_type, approver, tmp_path
):
    # given a kept checkpoint over two decided requests
    cut = make_request(requester=requester, request_type=request_type, title="Cut")
    request_act(request_id=cut.pk, action="approve", actor=approver, comment="fine")
    gone = make_request(requester=requester, request_type=request_type, title="Gone")
    path = _kept_copy(tmp_path)
    # when one loses its last entry (its head set back to match) and the other is removed
    last_entry_remove_and_rehead(cut)
    request_remove_with_chain(gone)
    call_command("audit_verify", stdout=StringIO())  # the chains alone verify
    # then against the checkpoint both are named
    message = _verify(path)
    err = StringIO()
    with pytest.raises(CommandError):
        call_command("audit_verify", "--checkpoint", str(path), stdout=StringIO(), stderr=err)
    assert f"{cut.workflow_ref()}: chain ends at #2 but the checkpoint signed it up to #3" in err.getvalue()
    assert (
        f"{gone.workflow_ref()}: the checkpoint signed 2 entries of this chain; none is left"
        in err.getvalue()
    )
    assert "2 problem(s)" in message


@pytest.mark.django_db
def test_audit_verify_refuses_a_checkpoint_re_signed_with_another_key(requester, request_type, tmp_path):
    # given a kept checkpoint
    make_request(requester=requester, request_type=request_type)
    path = _kept_copy(tmp_path)
    document = json.loads(path.read_text())
    # when someone re-signs its statement with a key of their own (and puts theirs in the file)
    other = Ed25519PrivateKey.generate()
    statement = {**document["statement"], "key_id": public_key_id(other)}
    forged = {
        **document,
        "statement": statement,
        "signature": base64.b64encode(other.sign(ev.statement_bytes(statement))).decode(),
        "public_key": other.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode(),
    }
    path.write_text(json.dumps(forged))
    # then verifying with Baton's key names the other key
    message = _verify(path)
    assert (
        f"checkpoint signed with key id {public_key_id(other)}, not Baton's key {public_key_id()}" in message
    )


@pytest.mark.django_db
def test_audit_verify_refuses_a_checkpoint_whose_leaves_were_changed(requester, request_type, tmp_path):
    make_request(requester=requester, request_type=request_type)
    path = _kept_copy(tmp_path)
    document = json.loads(path.read_text())
    document["leaves"][0][2] = "f" * 64
    path.write_text(json.dumps(document))
    assert "the file's leaves do not make its signed root" in _verify(path)
