"""Signed checkpoints: what makes a rewritten audit chain detectable.

The hash chain of each instance catches an edited entry and a removed last entry; it
cannot catch someone with database access who rewrites a chain consistently (every hash
and the head recomputed) or removes an instance with its whole chain. A checkpoint folds
the heads of every chain at one moment into one digest and signs it with an Ed25519 key
kept outside the database; a copy kept outside Baton then proves what existed then.

The digest is a Merkle tree (RFC 6962 hashing) over the chain heads, one leaf per chain
`[ref, seq, head]`, sorted by reference. Why heads and not an RFC 6962 log over every
entry: chains are appended concurrently and commit in an order their ids do not follow,
so one global log would need a sequencer on the transition path (which DESIGN.md keeps
free of any shared lock); a chain's head already commits to its whole chain, a checkpoint
costs one read of the instance heads (not of every entry), and a request's evidence
bundle needs only its own chain and a log2(chains) inclusion proof. What an RFC 6962
consistency proof would give between two checkpoints, `checkpoint_create` checks itself:
every chain of the checkpoint before is still there, no shorter, and its entry at the
signed position still carries the signed hash; else it refuses to sign.

The Merkle and statement functions live in workflows.evidence_verifier, the standalone
file an auditor runs: what Baton signs is, byte for byte, what that file checks. The signing
key lives in `keys`, the chain heads a checkpoint signs in `leaves`; this module makes,
writes and checks checkpoints, and re-exports the other two.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from workflows import evidence_verifier as ev
from workflows.audit import AuditReport, audit_verify
from workflows.checkpoints.keys import (
    SigningKeyMissing,
    public_key_id,
    public_key_pem,
    signing_key,
    signing_key_present,
)
from workflows.checkpoints.leaves import (
    Leaf,
    chain_head_at,
    chain_heads_now,
    checkpoint_leaves,
    leaf_hashes,
    ref_key,
)
from workflows.models import AuditCheckpoint, AuditCheckpointHead, AuditEntry

logger = logging.getLogger(__name__)

__all__ = [
    "CheckpointCheck",
    "CheckpointRefused",
    "Leaf",
    "SigningKeyMissing",
    "audit_verify_against",
    "chain_head_at",
    "chain_heads_now",
    "checkpoint_create",
    "checkpoint_file_check",
    "checkpoint_file_lines",
    "checkpoint_file_write",
    "checkpoint_latest",
    "checkpoint_leaves",
    "checkpoint_signed",
    "inclusion_proofs",
    "leaf_hashes",
    "public_key_id",
    "public_key_pem",
    "ref_key",
    "signing_key",
    "signing_key_present",
    "statement_for",
]

FORMAT = ev.STATEMENT_FORMAT
# One PostgreSQL advisory lock serialises checkpoints (beat and a command at once).
_LOCK_KEY = 0x6261746F6E  # "baton"


class CheckpointRefused(Exception):
    """The trail no longer holds what the checkpoint before signed: signing now would
    hide it. `problems` names each chain."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            f"checkpoint refused: {len(problems)} chain(s) differ from the last checkpoint: "
            + "; ".join(problems[:5])
            + (" …" if len(problems) > 5 else "")
        )


# --- making a checkpoint ----------------------------------------------------------------------


def _entry_hashes(
    wanted: Iterable[tuple[int, str, int]], chunk: int = 300
) -> dict[tuple[int, str, int], str]:
    """The hashes of the entries at (content type, object id, seq), in a few queries."""
    wanted = list(wanted)
    found: dict[tuple[int, str, int], str] = {}
    for start in range(0, len(wanted), chunk):
        condition = Q()
        for ct, oid, seq in wanted[start : start + chunk]:
            condition |= Q(content_type_id=ct, object_id=oid, seq=seq)
        rows = AuditEntry.objects.filter(condition).values_list("content_type_id", "object_id", "seq", "hash")
        found.update({(ct, oid, seq): digest for ct, oid, seq, digest in rows})
    return found


def _consistency_problems(previous: list[Leaf], current: list[Leaf]) -> list[str]:
    """What the trail lost or changed since `previous` was signed, and heads on instance
    rows that no entry carries."""
    now = {leaf.key: leaf for leaf in current}
    before = {leaf.key: leaf for leaf in previous}
    problems = []
    wanted: list[tuple[int, str, int]] = []
    for key, old in before.items():
        new = now.get(key)
        if new is None:
            problems.append(f"{old.ref}: signed with {old.seq} entries, now gone (instance removed?)")
        elif new.seq < old.seq:
            problems.append(f"{old.ref}: signed at #{old.seq}, now ends at #{new.seq} (entries removed)")
        elif new.seq == old.seq and new.head != old.head:
            problems.append(f"{old.ref}: head #{old.seq} differs from the signed one (chain rewritten)")
        elif new.seq > old.seq:
            wanted.append((*key, old.seq))
    moved = [leaf for leaf in current if leaf.key not in before or before[leaf.key] != leaf]
    wanted += [(leaf.content_type_id, leaf.object_id, leaf.seq) for leaf in moved]
    hashes = _entry_hashes(wanted)
    for key, old in before.items():
        new = now.get(key)
        if new is not None and new.seq > old.seq and hashes.get((*key, old.seq)) != old.head:
            problems.append(
                f"{old.ref}: entry #{old.seq} no longer carries the signed hash (chain rewritten)"
            )
    for leaf in moved:
        if hashes.get((leaf.content_type_id, leaf.object_id, leaf.seq)) != leaf.head:
            problems.append(
                f"{leaf.ref}: the instance's head #{leaf.seq} is not the hash of its entry #{leaf.seq}"
            )
    return problems


def statement_for(
    *, created_at: datetime, entries: int, chains: int, root: str, previous_root: str, key_id: str
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "created_at": created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "entries": entries,
        "chains": chains,
        "root": root,
        "previous_root": previous_root,
        "key_id": key_id,
    }


def checkpoint_latest(*, before: datetime | None = None) -> AuditCheckpoint | None:
    """The latest checkpoint (made before `before`, if given)."""
    query = AuditCheckpoint.objects.order_by("-id")
    if before is not None:
        query = query.filter(created_at__lt=before)
    return query.first()


def checkpoint_create() -> AuditCheckpoint:
    """Sign the state of every chain now; store it with the heads that moved.

    One transaction, with a consistent view of every table (REPEATABLE READ on
    PostgreSQL; SQLite's transactions already are). Raises SigningKeyMissing without a
    key, CheckpointRefused when a chain lost or changed what the checkpoint before signed.
    """
    key = signing_key()
    postgres = connection.vendor == "postgresql"
    outermost = not connection.in_atomic_block
    if postgres:
        # Checkpoints one at a time (beat and a command at once), the lock taken before the
        # transaction's snapshot, so that each sees the one before it.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [_LOCK_KEY])
    try:
        return _checkpoint_create(key, repeatable_read=postgres and outermost)
    finally:
        if postgres:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [_LOCK_KEY])


def _checkpoint_create(key: Ed25519PrivateKey, *, repeatable_read: bool) -> AuditCheckpoint:
    with transaction.atomic():
        if repeatable_read:
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        previous = checkpoint_latest()
        previous_leaves = checkpoint_leaves(previous) if previous is not None else []
        current = chain_heads_now()
        problems = _consistency_problems(previous_leaves, current)
        if problems:
            raise CheckpointRefused(problems)
        root = ev.merkle_root(leaf_hashes(current)).hex()
        statement = statement_for(
            created_at=timezone.now(),
            entries=sum(leaf.seq for leaf in current),
            chains=len(current),
            root=root,
            previous_root=previous.root if previous is not None else "",
            key_id=public_key_id(key),
        )
        signed = ev.statement_bytes(statement)
        checkpoint = AuditCheckpoint(
            created_at=datetime.fromisoformat(statement["created_at"]),
            entries=statement["entries"],
            chains=statement["chains"],
            root=root,
            previous_root=statement["previous_root"],
            key_id=statement["key_id"],
            statement=signed.decode("utf-8"),
            signature=base64.b64encode(key.sign(signed)).decode(),
            public_key=public_key_pem(key),
        )
        checkpoint.save()
        before = {leaf.key: leaf for leaf in previous_leaves}
        AuditCheckpointHead.objects.bulk_create(
            [
                AuditCheckpointHead(
                    checkpoint=checkpoint,
                    content_type_id=leaf.content_type_id,
                    object_id=leaf.object_id,
                    seq=leaf.seq,
                    head=leaf.head,
                )
                for leaf in current
                if before.get(leaf.key) != leaf
            ],
            batch_size=2000,
        )
    return checkpoint


# --- the checkpoint as a file ------------------------------------------------------------------


def checkpoint_signed(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    """The statement, its signature and the public key: what a bundle carries."""
    return {
        "checkpoint_id": checkpoint.pk,
        "statement": json.loads(checkpoint.statement),
        "signature": checkpoint.signature,
        "public_key": checkpoint.public_key,
    }


def checkpoint_file_lines(checkpoint: AuditCheckpoint) -> Iterator[str]:
    """The checkpoint as a JSON document with every leaf, in pieces (to stream or write)."""
    head = checkpoint_signed(checkpoint)
    yield json.dumps(head, indent=1)[:-2] + ',\n "leaves": [\n'
    first = True
    for leaf in checkpoint_leaves(checkpoint):
        yield ("" if first else ",\n") + json.dumps([leaf.ref, leaf.seq, leaf.head])
        first = False
    yield "\n ]\n}\n"


def checkpoint_file_write(checkpoint: AuditCheckpoint, path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for piece in checkpoint_file_lines(checkpoint):
            out.write(piece)


def inclusion_proofs(checkpoint: AuditCheckpoint, refs: Iterable[str]) -> list[dict[str, Any]]:
    """For each reference the checkpoint covers: its leaf and audit path (hex)."""
    leaves = checkpoint_leaves(checkpoint)
    levels = ev.merkle_levels(leaf_hashes(leaves)) if leaves else [[]]
    index_of = {leaf.ref: i for i, leaf in enumerate(leaves)}
    proofs = []
    for ref in sorted(set(refs)):
        index = index_of.get(ref)
        if index is None:
            continue
        leaf = leaves[index]
        proofs.append(
            {
                "ref": ref,
                "seq": leaf.seq,
                "head": leaf.head,
                "index": index,
                "path": [p.hex() for p in ev.merkle_path(levels, index)],
            }
        )
    return proofs


# --- verifying the trail against a kept checkpoint ---------------------------------------------


@dataclass
class CheckpointCheck:
    """What a kept checkpoint file says about itself, before the trail is read."""

    problems: list[str]
    leaves: dict[tuple[int, str], tuple[int, str]]
    unknown: list[str]
    statement: Mapping[str, Any]


def checkpoint_file_check(document: Mapping[str, Any], *, public_key: Ed25519PublicKey) -> CheckpointCheck:
    """Check a checkpoint file's signature (by `public_key`, the key Baton trusts) and that
    its leaves make its signed root."""
    statement = document.get("statement") or {}
    problems = []
    trusted = public_key_id(public_key)
    if statement.get("key_id") != trusted:
        problems.append(
            f"checkpoint signed with key id {statement.get('key_id')}, not Baton's key {trusted} "
            "(re-signed with another key?)"
        )
    if not ev.signature_valid(public_key, statement, str(document.get("signature", ""))):
        problems.append(f"the checkpoint's signature does not verify with Baton's key {trusted}")
    raw = [(str(ref), int(seq), str(head)) for ref, seq, head in document.get("leaves") or []]
    raw.sort()
    root = ev.merkle_root([ev.leaf_hash(ev.leaf_bytes(*leaf)) for leaf in raw]).hex()
    if root != statement.get("root") or len(raw) != statement.get("chains"):
        problems.append("the file's leaves do not make its signed root (the leaves were changed)")
    leaves: dict[tuple[int, str], tuple[int, str]] = {}
    unknown = []
    for ref, seq, head in raw:
        key = ref_key(ref)
        if key is None:
            unknown.append(ref)
        else:
            leaves[key] = (seq, head)
    return CheckpointCheck(problems=problems, leaves=leaves, unknown=unknown, statement=statement)


def audit_verify_against(
    document: Mapping[str, Any], *, public_key: Ed25519PublicKey | None = None, batch_size: int = 2000
) -> tuple[CheckpointCheck, AuditReport]:
    """Verify every chain, and that everything `document` (a kept checkpoint file) signed
    is still there unchanged."""
    key = public_key or signing_key().public_key()
    check = checkpoint_file_check(document, public_key=key)
    report = audit_verify(batch_size=batch_size, checkpoint=check.leaves)
    return check, report
