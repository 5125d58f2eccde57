"""A request's evidence page: every transition, decision, revision (with its diff),
reassignment and comment in order, the policy versions it followed, and its chain verified."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.contrib.contenttypes.models import ContentType

from approvals import policies
from approvals.audit.selectors import AuditRow, audit_rows
from approvals.models import ApprovalRequest, Decision, PolicyVersion, RequestRevision
from approvals.selectors import RevisionView, revision_views
from workflows import evidence_verifier as ev
from workflows.audit import GENESIS, entry_rehash
from workflows.checkpoints import chain_head_at, checkpoint_latest, public_key_id, signing_key_present
from workflows.models import AuditCheckpoint, AuditEntry, Handoff, WorkflowModel
from workflows.selectors import audit_entries_for_instance, handoffs_for_instance

if TYPE_CHECKING:
    from accounts.models import User


@dataclass
class ChainCheck:
    """One chain verified here: hashes, links, its head, and the latest checkpoint."""

    entries: int
    problems: list[str] = field(default_factory=list)
    checkpoint: AuditCheckpoint | None = None
    signed_seq: int | None = None
    signature_ok: bool | None = None
    key_is_batons: bool | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def chain_check(instance: WorkflowModel, entries: list[AuditEntry]) -> ChainCheck:
    """Recompute every hash of one chain and check its links, its head on the instance, and
    its head as the latest checkpoint signed it (that checkpoint's signature included)."""
    ref = instance.workflow_ref()
    check = ChainCheck(entries=len(entries))
    prev = GENESIS
    for position, entry in enumerate(entries, start=1):
        where = f"entry #{entry.seq} (id {entry.pk})"
        if entry.seq != position:
            check.problems.append(f"sequence jumps from #{position - 1} to #{entry.seq} (entries missing)")
            break
        if entry.prev_hash != prev:
            check.problems.append(f"{where}: prev_hash does not match the previous entry's hash")
            break
        if entry_rehash(entry, ref=ref) != entry.hash:
            check.problems.append(f"{where}: contents do not match its hash (altered)")
            break
        prev = entry.hash
    last = (entries[-1].seq, entries[-1].hash) if entries else (0, "")
    if (instance.audit_seq, instance.audit_head or "") != last:
        check.problems.append(
            f"the request's head is #{instance.audit_seq} but its chain ends at #{last[0]} (entries removed?)"
        )
    checkpoint = checkpoint_latest()
    if checkpoint is None:
        return check
    check.checkpoint = checkpoint
    statement = json.loads(checkpoint.statement)
    check.signature_ok = ev.signature_valid(
        ev.public_key_load(checkpoint.public_key.encode()), statement, checkpoint.signature
    )
    key = signing_key_present()
    check.key_is_batons = public_key_id(key) == checkpoint.key_id if key is not None else None
    if not check.signature_ok:
        check.problems.append(f"checkpoint {checkpoint.pk}: its signature does not verify")
    elif check.key_is_batons is False:
        check.problems.append(f"checkpoint {checkpoint.pk} was signed by another key than Baton's")
    content_type = ContentType.objects.get_for_model(instance)
    leaf = chain_head_at(checkpoint, content_type_id=content_type.pk, object_id=str(instance.pk))
    if leaf is not None:
        check.signed_seq = leaf.seq
        at = next((e for e in entries if e.seq == leaf.seq), None)
        if at is None:
            check.problems.append(
                f"checkpoint {checkpoint.pk} signed #{leaf.seq}, which is gone (entries removed)"
            )
        elif at.hash != leaf.head:
            check.problems.append(
                f"entry #{leaf.seq} differs from what checkpoint {checkpoint.pk} signed (chain rewritten)"
            )
    return check


@dataclass(frozen=True)
class EvidencePage:
    request: ApprovalRequest
    history: list[AuditRow]
    revisions: list[RevisionView]
    decisions: list[Decision]
    handoffs: list[Handoff]
    versions: list[PolicyVersion]
    check: ChainCheck

    @property
    def reassignments(self) -> list[AuditRow]:
        return [row for row in self.history if row.entry.action == "reassign"]

    @property
    def comments(self) -> list[AuditRow]:
        return [row for row in self.history if row.entry.comment]


def evidence_page(*, request_id: int, user: User) -> EvidencePage | None:
    """The evidence of one request, or None when it does not exist or `user` may not see
    it (the page answers 404 either way)."""
    request = (
        ApprovalRequest.objects.select_related("requester", "request_type", "policy_version")
        .filter(pk=request_id)
        .first()
    )
    if request is None or not policies.may_view_evidence(request, user):
        return None
    entries = audit_entries_for_instance(request)
    history = audit_rows(entries, request=request)
    decisions = list(
        Decision.objects.filter(request=request)
        .select_related("principal", "actor")
        .order_by("revision", "id")
    )
    revisions = list(
        RequestRevision.objects.filter(request=request).select_related("created_by").order_by("number")
    )
    version_ids = {request.policy_version_id} if request.policy_version_id else set()
    for row in history:
        moved = row.record.policy
        if moved is not None:
            version_ids |= {v for v in (moved.from_version, moved.to_version) if v is not None}
    versions = (
        list(PolicyVersion.objects.filter(pk__in=version_ids).order_by("number")) if version_ids else []
    )
    return EvidencePage(
        request=request,
        history=history,
        revisions=revision_views(
            schema=request.request_type.payload_schema or {}, revisions=revisions, decisions=decisions
        ),
        decisions=decisions,
        handoffs=handoffs_for_instance(request),
        versions=versions,
        check=chain_check(request, entries),
    )
