#!/usr/bin/env python3
"""Verify a Baton evidence bundle offline: entry hashes, chain links, the signed checkpoint.

Standalone: the Python standard library and `cryptography` (pip install cryptography), no
Baton, no database, no network. Baton copies this very file into every evidence bundle as
`verify.py`; Baton itself uses its Merkle and statement functions when it signs, so what
this file checks is exactly what Baton signed.

    python verify.py evidence.zip                         # trusts the key inside the bundle
    python verify.py evidence.zip --public-key baton.pem  # the key you kept (recommended)
    python verify.py evidence-folder/                     # an unzipped bundle

What it checks, and names when it fails (exit status 1; 0 when all is well):

1. the checkpoint's Ed25519 signature, by the trusted public key (a checkpoint re-signed
   with another key fails here, naming both key ids);
2. every entry's hash, recomputed from its fields exactly as Baton computes it (SHA-256 of
   canonical JSON: sorted keys, no spaces, UTF-8) — an edited entry fails here;
3. every chain (one per workflow instance, e.g. one request): it starts at #1 with the
   genesis hash, has no gaps, and each entry carries its predecessor's hash;
4. every chain the checkpoint covers: its entry at the signed position carries the signed
   head hash (a chain rewritten consistently, hashes and head recomputed, fails here),
   the chain reaches that position (entries removed at the end fail here), the chain is
   present at all (an instance removed with its chain fails here), and the signed head is
   in the signed Merkle root (an RFC 6962 inclusion proof: the checkpoint's digest is a
   Merkle tree over the heads of every chain, sorted by reference).

Entries appended after the checkpoint are checked for hashes and links only, and counted.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import sys
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
STATEMENT_FORMAT = "baton-audit-checkpoint/1"
# The fields of an entry that its hash covers, as Baton names them in the hashed body.
HASHED_FIELDS = (
    "ref",
    "seq",
    "kind",
    "action",
    "source",
    "target",
    "actor",
    "on_behalf_of",
    "comment",
    "data",
    "trace_id",
    "created_at",
    "prev_hash",
)


# --- canonical JSON and hashes (the same as workflows.audit.entry_hash) -----------------------


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_body_hash(body: Mapping[str, Any]) -> str:
    """The hash of an entry whose hashed fields are `body` (created_at as ISO text, UTC,
    microseconds: '2026-01-31T09:15:00.000000+00:00')."""
    return hashlib.sha256(canonical_json({name: body[name] for name in HASHED_FIELDS})).hexdigest()


# --- the Merkle tree over chain heads (RFC 6962 / RFC 9162 hashing) ---------------------------


def leaf_bytes(ref: str, seq: int, head: str) -> bytes:
    """What one leaf holds: a chain's reference, the position of its head, the head's hash."""
    return canonical_json([ref, seq, head])


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def merkle_levels(leaf_hashes: Sequence[bytes]) -> list[list[bytes]]:
    """Every level of the tree, leaves first. A last node without a sibling moves up
    unchanged, which gives exactly RFC 6962's tree (split at the largest power of two)."""
    levels = [list(leaf_hashes)]
    while len(levels[-1]) > 1:
        below = levels[-1]
        above = [node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
        if len(below) % 2:
            above.append(below[-1])
        levels.append(above)
    return levels


def merkle_root(leaf_hashes: Sequence[bytes]) -> bytes:
    if not leaf_hashes:
        return hashlib.sha256(b"").digest()
    return merkle_levels(leaf_hashes)[-1][0]


def merkle_path(levels: list[list[bytes]], index: int) -> list[bytes]:
    """The inclusion proof (RFC 6962 audit path) of leaf `index`, from the leaf upwards."""
    path = []
    for level in levels[:-1]:
        sibling = index ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        index //= 2
    return path


def merkle_path_root(leaf: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root that `path` proves for `leaf` at `index` in a tree of `size` leaves
    (RFC 9162, 2.1.3.2); None when the path has the wrong shape."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


# --- the signed statement ------------------------------------------------------------------


def key_id(public_key_raw: bytes) -> str:
    """A public key's id: the SHA-256 of its 32 raw bytes, hex."""
    return hashlib.sha256(public_key_raw).hexdigest()


def statement_bytes(statement: Mapping[str, Any]) -> bytes:
    """The exact bytes a checkpoint's signature covers."""
    return canonical_json(dict(statement))


def public_key_load(pem: bytes) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey  # noqa: PLC0415
    from cryptography.hazmat.primitives.serialization import load_pem_public_key  # noqa: PLC0415

    key = load_pem_public_key(pem)
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the public key is not an Ed25519 key")
    return key


def public_key_raw(key: Any) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat  # noqa: PLC0415

    return bytes(key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def signature_valid(key: Any, statement: Mapping[str, Any], signature_b64: str) -> bool:
    from cryptography.exceptions import InvalidSignature  # noqa: PLC0415

    try:
        key.verify(base64.b64decode(signature_b64, validate=True), statement_bytes(statement))
    except (InvalidSignature, ValueError):
        return False
    return True


# --- the bundle ----------------------------------------------------------------------------


@dataclass
class Bundle:
    entries: list[dict[str, Any]]
    checkpoint: dict[str, Any] | None
    proofs: list[dict[str, Any]]
    public_key_pem: bytes | None
    manifest: dict[str, Any] = field(default_factory=dict)


def _members(path: Path) -> dict[str, bytes]:
    if path.is_dir():
        return {p.name: p.read_bytes() for p in path.iterdir() if p.is_file()}
    with zipfile.ZipFile(path) as archive:
        return {Path(name).name: archive.read(name) for name in archive.namelist() if not name.endswith("/")}


def bundle_read(path: Path) -> Bundle:
    files = _members(path)
    entries = [
        json.loads(line)
        for line in files.get("entries.jsonl", b"").decode("utf-8").splitlines()
        if line.strip()
    ]
    checkpoint = json.loads(files["checkpoint.json"]) if "checkpoint.json" in files else None
    proofs = json.loads(files["proofs.json"])["proofs"] if "proofs.json" in files else []
    manifest = json.loads(files["manifest.json"]) if "manifest.json" in files else {}
    return Bundle(
        entries=entries,
        checkpoint=checkpoint,
        proofs=proofs,
        public_key_pem=files.get("public_key.pem"),
        manifest=manifest,
    )


@dataclass
class Outcome:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _chains(entries: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    chains: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        chains.setdefault(str(entry["ref"]), []).append(entry)
    for chain in chains.values():
        chain.sort(key=lambda e: e["seq"])
    return chains


def _where(entry: Mapping[str, Any]) -> str:
    ident = f"entry {entry['id']} " if entry.get("id") is not None else ""
    return f"{ident}({entry['ref']} #{entry['seq']})"


def verify_entries(entries: list[dict[str, Any]], outcome: Outcome) -> dict[str, list[dict[str, Any]]]:
    """Hashes and links; returns the chains by reference."""
    for entry in entries:
        if entry_body_hash(entry) != entry.get("hash"):
            outcome.problems.append(
                f"{_where(entry)}: contents do not match the entry's hash (entry was altered)"
            )
    chains = _chains(entries)
    for ref, chain in chains.items():
        expected_seq, expected_prev = 1, GENESIS
        for entry in chain:
            if entry["seq"] != expected_seq:
                outcome.problems.append(
                    f"{ref}: sequence jumps from #{expected_seq - 1} to #{entry['seq']} (entries missing)"
                )
                break
            if entry["prev_hash"] != expected_prev:
                outcome.problems.append(
                    f"{_where(entry)}: prev_hash does not match the previous entry's hash"
                )
                break
            expected_seq, expected_prev = entry["seq"] + 1, entry["hash"]
    return chains


def verify_checkpoint(
    bundle: Bundle, chains: Mapping[str, list[dict[str, Any]]], trusted_pem: bytes | None, outcome: Outcome
) -> None:
    checkpoint = bundle.checkpoint
    if checkpoint is None:
        outcome.notes.append("no checkpoint in the bundle: hashes and links checked, nothing signed")
        return
    statement = checkpoint["statement"]
    if statement.get("format") != STATEMENT_FORMAT:
        outcome.problems.append(f"checkpoint: unknown format {statement.get('format')!r}")
        return
    pem = trusted_pem or bundle.public_key_pem or checkpoint.get("public_key", "").encode()
    key = public_key_load(pem)
    trusted_id = key_id(public_key_raw(key))
    if trusted_pem is None:
        outcome.notes.append(
            f"trusting the public key inside the bundle (key id {trusted_id}); "
            "compare it with the key id you kept, or pass --public-key"
        )
    if statement.get("key_id") != trusted_id:
        outcome.problems.append(
            f"checkpoint: signed with key id {statement.get('key_id')}, not the trusted key {trusted_id} "
            "(re-signed with another key?)"
        )
    if not signature_valid(key, statement, checkpoint.get("signature", "")):
        outcome.problems.append(
            f"checkpoint: the signature does not verify with the trusted key {trusted_id} "
            "(the statement was changed, or signed with another key)"
        )
    root = statement["root"]
    size = int(statement["chains"])
    covered = 0
    for proof in bundle.proofs:
        ref, seq, head = str(proof["ref"]), int(proof["seq"]), str(proof["head"])
        chain = chains.get(ref, [])
        at = next((e for e in chain if e["seq"] == seq), None)
        if not chain:
            outcome.problems.append(
                f"{ref}: the checkpoint recorded {seq} entries but the chain is missing "
                "(the instance was removed with its chain)"
            )
        elif at is None:
            outcome.problems.append(
                f"{ref}: the chain ends at #{chain[-1]['seq']} but the checkpoint recorded #{seq} "
                "(entries removed)"
            )
        elif at["hash"] != head:
            outcome.problems.append(
                f"{ref}: entry #{seq} has hash {at['hash'][:16]}…, the checkpoint signed {head[:16]}… "
                "(the chain was rewritten)"
            )
        path = [bytes.fromhex(p) for p in proof["path"]]
        proved = merkle_path_root(leaf_hash(leaf_bytes(ref, seq, head)), int(proof["index"]), size, path)
        if proved is None or proved.hex() != root:
            outcome.problems.append(
                f"{ref}: its head #{seq} is not in the checkpoint's signed root (proof fails)"
            )
        covered += 1
        later = sum(1 for e in chain if e["seq"] > seq)
        if later:
            outcome.notes.append(
                f"{ref}: {later} entries after the checkpoint (hashes and links checked only)"
            )
    proved_refs = {str(p["ref"]) for p in bundle.proofs}
    for ref in sorted(set(chains) - proved_refs):
        outcome.notes.append(f"{ref}: not covered by this checkpoint (hashes and links checked only)")
    outcome.notes.append(
        f"checkpoint of {statement['created_at']}: {statement['entries']} entries in {size} chains, "
        f"root {root[:16]}…, {covered} chains of this bundle proved in it"
    )


def verify_bundle(path: Path, *, trusted_pem: bytes | None = None) -> Outcome:
    outcome = Outcome()
    bundle = bundle_read(path)
    chains = verify_entries(bundle.entries, outcome)
    verify_checkpoint(bundle, chains, trusted_pem, outcome)
    return outcome


def main(argv: list[str] | None = None, out: io.TextIOBase | Any = None) -> int:
    out = out or sys.stdout
    parser = argparse.ArgumentParser(description="Verify a Baton evidence bundle offline.")
    parser.add_argument("bundle", type=Path, help="the evidence .zip (or its unzipped folder)")
    parser.add_argument("--public-key", type=Path, help="the Baton public key (PEM) you trust")
    args = parser.parse_args(argv)
    trusted = args.public_key.read_bytes() if args.public_key else None
    outcome = verify_bundle(args.bundle, trusted_pem=trusted)
    entries = len(bundle_read(args.bundle).entries)
    for note in outcome.notes:
        print(f"note: {note}", file=out)
    for problem in outcome.problems:
        print(f"PROBLEM {problem}", file=out)
    if outcome.ok:
        print(
            f"OK: {entries} entries verified: hashes, chain links and the signed checkpoint agree.", file=out
        )
        return 0
    print(f"FAILED: {len(outcome.problems)} problem(s) in {entries} entries.", file=out)
    return 1


if __name__ == "__main__":
    sys.exit(main())
