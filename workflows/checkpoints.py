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
file an auditor runs: what Baton signs is, byte for byte, what that file checks.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from workflows import evidence_verifier as ev
from workflows.audit import AuditReport, audit_verify, workflow_content_types
from workflows.models import AuditCheckpoint, AuditCheckpointHead, AuditEntry

logger = logging.getLogger(__name__)

FORMAT = ev.STATEMENT_FORMAT
# One PostgreSQL advisory lock serialises checkpoints (beat and a command at once).
_LOCK_KEY = 0x6261746F6E  # "baton"


class SigningKeyMissing(Exception):
    """No key to sign checkpoints with; the message says what to set."""


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


# --- the key --------------------------------------------------------------------------------

_KEYS: dict[tuple[str, str], Ed25519PrivateKey] = {}


def _key_generate(path: Path) -> Ed25519PrivateKey:
    """A new key at `path` (mode 0600), unless another process made one first."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _key_read(path)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    message = (
        f"Baton generated an audit signing key at {path} (the embedded mode does this on first use). "
        "Keep a copy of its public key (the auditors' checkpoints page) outside Baton."
    )
    logger.warning(message)
    print(message, file=sys.stderr)  # noqa: T201  (also when logging is quiet)
    return key


def _key_read(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyMissing(f"{path} does not hold an Ed25519 private key.")
    return key


def signing_key() -> Ed25519PrivateKey:
    """The checkpoint signing key: AUDIT_SIGNING_KEY (PEM), else AUDIT_SIGNING_KEY_FILE,
    generated there on first use only where AUDIT_SIGNING_KEY_GENERATE (embedded)."""
    pem: str = getattr(settings, "AUDIT_SIGNING_KEY", "") or ""
    file: str = str(getattr(settings, "AUDIT_SIGNING_KEY_FILE", "") or "")
    cache_key = (pem, file)
    if cache_key in _KEYS:
        return _KEYS[cache_key]
    if pem:
        # An environment variable may carry the PEM's line breaks as '\n'.
        loaded = serialization.load_pem_private_key(pem.replace("\\n", "\n").encode(), password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise SigningKeyMissing("AUDIT_SIGNING_KEY does not hold an Ed25519 private key.")
        key = loaded
    elif file and Path(file).exists():
        key = _key_read(Path(file))
    elif file and getattr(settings, "AUDIT_SIGNING_KEY_GENERATE", False):
        key = _key_generate(Path(file))
    else:
        where = f" ({file} does not exist)" if file else ""
        raise SigningKeyMissing(
            "No audit signing key: set AUDIT_SIGNING_KEY to an Ed25519 private key in PEM, or "
            f"AUDIT_SIGNING_KEY_FILE to a file holding one{where}. Make one with: "
            'python -c "from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey; '
            "from cryptography.hazmat.primitives import serialization as s; "
            "print(Ed25519PrivateKey.generate().private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, "
            's.NoEncryption()).decode())"'
        )
    _KEYS[cache_key] = key
    return key


def signing_key_present() -> Ed25519PrivateKey | None:
    """The signing key if one is configured or was generated already; never generates one
    (pages that only read must not write a key file)."""
    pem = getattr(settings, "AUDIT_SIGNING_KEY", "")
    file = str(getattr(settings, "AUDIT_SIGNING_KEY_FILE", "") or "")
    if not pem and not (file and Path(file).exists()):
        return None
    return signing_key()


def public_key_pem(key: Ed25519PrivateKey | Ed25519PublicKey | None = None) -> str:
    public = (key or signing_key()).public_key() if not isinstance(key, Ed25519PublicKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def public_key_id(key: Ed25519PrivateKey | Ed25519PublicKey | None = None) -> str:
    public = (key or signing_key()).public_key() if not isinstance(key, Ed25519PublicKey) else key
    return ev.key_id(ev.public_key_raw(public))


# --- chain heads ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Leaf:
    """One chain's head: `ref` is 'app.model:pk'."""

    content_type_id: int
    object_id: str
    seq: int
    head: str
    ref: str

    @property
    def key(self) -> tuple[int, str]:
        return (self.content_type_id, self.object_id)


def _ref(content_type_id: int, object_id: str) -> str:
    content_type = ContentType.objects.get_for_id(content_type_id)
    return f"{content_type.app_label}.{content_type.model}:{object_id}"


def ref_key(ref: str) -> tuple[int, str] | None:
    """(content type id, object id) of a reference 'app.model:pk', or None when its model
    is unknown here."""
    label, _, object_id = ref.partition(":")
    app_label, _, model = label.partition(".")
    try:
        return ContentType.objects.get_by_natural_key(app_label, model).pk, object_id
    except ContentType.DoesNotExist:
        return None


def chain_heads_now(batch_size: int = 5000) -> list[Leaf]:
    """The head of every chain as the instances hold it, sorted by reference."""
    leaves = []
    for ct_id, model in workflow_content_types().items():
        heads = model._default_manager.filter(audit_seq__gt=0).values_list("pk", "audit_seq", "audit_head")
        for pk, seq, head in heads.iterator(chunk_size=batch_size):
            object_id = str(pk)
            leaves.append(Leaf(ct_id, object_id, seq, head, _ref(ct_id, object_id)))
    leaves.sort(key=lambda leaf: leaf.ref)
    return leaves


def checkpoint_leaves(checkpoint: AuditCheckpoint) -> list[Leaf]:
    """Every chain's head as `checkpoint` signed it, sorted by reference."""
    rows = AuditCheckpointHead.objects.filter(checkpoint_id__lte=checkpoint.pk)
    fields = ("content_type_id", "object_id", "seq", "head")
    if connection.vendor == "postgresql":
        latest = (
            rows.order_by("content_type_id", "object_id", "-checkpoint_id")
            .distinct("content_type_id", "object_id")
            .values_list(*fields)
        )
        found = {(ct, oid): (seq, head) for ct, oid, seq, head in latest.iterator(chunk_size=5000)}
    else:
        found = {}
        for ct, oid, seq, head in (
            rows.order_by("checkpoint_id").values_list(*fields).iterator(chunk_size=5000)
        ):
            found[(ct, oid)] = (seq, head)
    leaves = [Leaf(ct, oid, seq, head, _ref(ct, oid)) for (ct, oid), (seq, head) in found.items()]
    leaves.sort(key=lambda leaf: leaf.ref)
    return leaves


def chain_head_at(checkpoint: AuditCheckpoint, *, content_type_id: int, object_id: str) -> Leaf | None:
    """One chain's head as `checkpoint` signed it (one indexed query), or None."""
    row = (
        AuditCheckpointHead.objects.filter(
            checkpoint_id__lte=checkpoint.pk, content_type_id=content_type_id, object_id=object_id
        )
        .order_by("-checkpoint_id")
        .values_list("seq", "head")
        .first()
    )
    if row is None:
        return None
    return Leaf(content_type_id, object_id, row[0], row[1], _ref(content_type_id, object_id))


def leaf_hashes(leaves: Iterable[Leaf]) -> list[bytes]:
    return [ev.leaf_hash(ev.leaf_bytes(leaf.ref, leaf.seq, leaf.head)) for leaf in leaves]


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
