"""Chain heads: the leaves a checkpoint signs, as the instances hold them now or as a
checkpoint recorded them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.contenttypes.models import ContentType
from django.db import connection

from workflows import evidence_verifier as ev
from workflows.audit import workflow_content_types
from workflows.models import AuditCheckpoint, AuditCheckpointHead

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
