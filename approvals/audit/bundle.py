"""Evidence bundles: a zip an auditor verifies offline with one Python file.

    entries.jsonl     every entry of every chain in scope, whole chains (JSON Lines)
    checkpoint.json   the latest checkpoint: its signed statement, signature, public key
    proofs.json       for each chain in scope the checkpoint covers: its signed head and
                      the Merkle inclusion proof of that head in the signed root
    public_key.pem    the key that signed the checkpoint
    verify.py         the standalone verifier (workflows/evidence_verifier.py, as is)
    manifest.json     what the bundle holds and why (filter, who, when, counts)
    README.txt        how to run the verifier

Scope: the chains with at least one entry the filter matches, each whole (a chain is
proved from its first entry). Where the filter names no entries but a reference (or
nothing at all), the chains the checkpoint signed for that reference (or every chain)
are in scope too, so that a chain removed since is reported missing.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.utils import timezone

from approvals.audit.export import Completeness, entry_rows, export_complete, export_scope, jsonl_line
from approvals.audit.filters import AuditFilter
from approvals.models import AuditExport
from workflows import evidence_verifier
from workflows.checkpoints import (
    checkpoint_latest,
    checkpoint_leaves,
    checkpoint_signed,
    inclusion_proofs,
    public_key_pem,
    signing_key_present,
)
from workflows.models import AuditEntry

if TYPE_CHECKING:
    from accounts.models import User

VERIFIER = Path(evidence_verifier.__file__)
README = """Baton evidence bundle
=====================

Verify it offline, with Python 3 and the `cryptography` package (pip install cryptography):

    python verify.py {name} --public-key baton-public-key.pem

where baton-public-key.pem is the Baton public key you keep (download it from Baton's
checkpoints page and keep it outside Baton). Without --public-key the verifier trusts the
key inside this bundle and prints its id for you to compare.

It recomputes every entry's hash (entries.jsonl), checks every chain's links from its
first entry, and checks each chain's head against the signed checkpoint (checkpoint.json)
through its Merkle inclusion proof (proofs.json). It names whatever differs and exits 1;
"OK" and exit 0 mean the entries are exactly what Baton recorded and signed.
"""


def _chain_query(export: AuditExport, audit_filter: AuditFilter) -> Any:
    """Every entry of every chain with an entry the filter matches, recorded before the
    bundle was asked for."""
    matched = export_scope(export, audit_filter)
    content_types = list(matched.order_by().values_list("content_type_id", flat=True).distinct())
    condition = Q(pk__in=[])
    for ct in content_types:
        condition |= Q(
            content_type_id=ct, object_id__in=matched.filter(content_type_id=ct).values("object_id")
        )
    return AuditEntry.objects.filter(condition, created_at__lt=export.created_at)


def _scope_refs(audit_filter: AuditFilter, leaves_refs: list[str]) -> set[str]:
    """The references a checkpoint's leaves put in scope whether or not entries are left."""
    if audit_filter.is_empty:
        return set(leaves_refs)
    target = audit_filter.ref_target
    if target is not None and audit_filter.query().keys() == {"ref"}:
        model, object_id = target
        content_type = ContentType.objects.get_for_model(model)
        return {f"{content_type.app_label}.{content_type.model}:{object_id}"}
    return set()


def bundle_write(
    *, out: IO[bytes], audit_filter: AuditFilter, user: User, export: AuditExport
) -> dict[str, Any]:
    """Write the bundle into `out` (a seekable file) and record its completeness."""
    done = Completeness(
        export=export, audit_filter=audit_filter, exported_by=user, covers="every byte of entries.jsonl"
    )
    refs: set[str] = set()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("entries.jsonl", "w", force_zip64=True) as entries:
            for rows in entry_rows(_chain_query(export, audit_filter)):
                entries.write(done.feed("".join(jsonl_line(row) for row in rows), rows))
                refs.update(row[1] for row in rows)
        checkpoint = checkpoint_latest(before=export.created_at)
        proofs: list[dict[str, Any]] = []
        public_key = ""
        if checkpoint is not None:
            leaves = [leaf.ref for leaf in checkpoint_leaves(checkpoint)]
            proofs = inclusion_proofs(checkpoint, refs | _scope_refs(audit_filter, leaves))
            archive.writestr("checkpoint.json", json.dumps(checkpoint_signed(checkpoint), indent=1))
            archive.writestr(
                "proofs.json", json.dumps({"tree_size": checkpoint.chains, "proofs": proofs}, indent=1)
            )
            public_key = checkpoint.public_key
        else:
            key = signing_key_present()
            public_key = public_key_pem(key) if key is not None else ""
        if public_key:
            archive.writestr("public_key.pem", public_key)
        archive.write(VERIFIER, "verify.py")
        record = export_complete(done)
        manifest = {
            "format": "baton-evidence-bundle/1",
            "created_at": timezone.now().isoformat(),
            "chains": len(refs),
            "proofs": len(proofs),
            "checkpoint_id": checkpoint.pk if checkpoint is not None else None,
            "completeness": record,
        }
        archive.writestr("manifest.json", json.dumps(manifest, indent=1))
        archive.writestr("README.txt", README.format(name=bundle_name(export)))
    return record


def bundle_name(export: AuditExport) -> str:
    return f"baton-evidence-{export.reference}.zip"
