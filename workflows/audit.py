"""The audit chain: how an entry is hashed, appended and verified.

Each workflow instance has its own chain: entry n carries the hash of entry n-1 of the
same instance (the first carries GENESIS), and the instance row keeps the head
(`audit_seq`, `audit_head`). Chains of different instances never wait on each other.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.utils import timezone

from workflows.models import AuditEntry, WorkflowModel
from workflows.tracing import credential_current

if TYPE_CHECKING:
    from accounts.models import User

GENESIS = "0" * 64


def _number_as_stored(text: str) -> float | int:
    """A JSON number in the form every database gives back.

    PostgreSQL's jsonb keeps numbers as exact decimals: 1e+16 reads back as the integer
    10000000000000000 and -0.0 as 0.0, which would change the hash of what was stored.
    """
    number = float(text)
    if number == 0:
        return 0.0
    if number.is_integer() and ("e" in text or "E" in text):
        return int(number)
    return number


def json_normalise(value: Any) -> Any:
    """Return `value` as it will read back from a JSONField (dates, decimals, UUIDs as text,
    numbers as jsonb writes them).

    The hash is taken over this form, so that what is stored hashes to the same value.
    """
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder), parse_float=_number_as_stored)


def entry_hash(
    *,
    ref: str,
    seq: int,
    kind: str,
    action: str,
    source: str,
    target: str,
    actor_id: int | None,
    on_behalf_of_id: int | None,
    comment: str,
    data: Any,
    trace_id: str,
    created_at: datetime,
    prev_hash: str,
) -> str:
    body = {
        "ref": ref,
        "seq": seq,
        "kind": kind,
        "action": action,
        "source": source,
        "target": target,
        "actor": actor_id,
        "on_behalf_of": on_behalf_of_id,
        "comment": comment,
        "data": data,
        "trace_id": trace_id,
        "created_at": created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "prev_hash": prev_hash,
    }
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def entry_rehash(entry: AuditEntry, *, ref: str) -> str:
    """The hash `entry` should carry given what it holds now (`ref`: 'app.model:pk')."""
    return entry_hash(
        ref=ref,
        seq=entry.seq,
        kind=entry.kind,
        action=entry.action,
        source=entry.source,
        target=entry.target,
        actor_id=entry.actor_id,
        on_behalf_of_id=entry.on_behalf_of_id,
        comment=entry.comment,
        data=entry.data,
        trace_id=entry.trace_id,
        created_at=entry.created_at,
        prev_hash=entry.prev_hash,
    )


def _ref(content_type: ContentType, object_id: str) -> str:
    return f"{content_type.app_label}.{content_type.model}:{object_id}"


def audit_entry_build(
    *,
    instance: WorkflowModel,
    kind: str,
    action: str,
    actor: User | None,
    on_behalf_of: User | None = None,
    source: str = "",
    target: str = "",
    comment: str = "",
    data: dict[str, Any] | None = None,
    trace_id: str,
    created_at: datetime | None = None,
) -> AuditEntry:
    """Build (unsaved) the next entry of `instance`'s chain and advance the instance's head.

    Precondition: the caller holds the instance's row lock in the current transaction
    and saves both the entry and the instance (`audit_seq`, `audit_head`) before commit.
    """
    content_type = ContentType.objects.get_for_model(instance)
    object_id = str(instance.pk)
    seq = instance.audit_seq + 1
    prev_hash = instance.audit_head or GENESIS
    moment = created_at or timezone.now()
    stored_data = json_normalise(data or {})
    # An action taken through the API names the token it came with (and whether its
    # owner is a service account): the trail says which credential acted, not only whose.
    via = credential_current()
    if via is not None:
        stored_data = {**stored_data, "via": json_normalise(via)}
    digest = entry_hash(
        ref=_ref(content_type, object_id),
        seq=seq,
        kind=kind,
        action=action,
        source=source,
        target=target,
        actor_id=actor.pk if actor else None,
        on_behalf_of_id=on_behalf_of.pk if on_behalf_of else None,
        comment=comment,
        data=stored_data,
        trace_id=trace_id,
        created_at=moment,
        prev_hash=prev_hash,
    )
    instance.audit_seq = seq
    instance.audit_head = digest
    return AuditEntry(
        content_type=content_type,
        object_id=object_id,
        seq=seq,
        kind=kind,
        action=action,
        source=source,
        target=target,
        actor=actor,
        on_behalf_of=on_behalf_of,
        comment=comment,
        data=stored_data,
        trace_id=trace_id,
        created_at=moment,
        prev_hash=prev_hash,
        hash=digest,
    )


# --- verification ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainBreak:
    ref: str
    seq: int
    entry_id: int | None
    reason: str

    def __str__(self) -> str:
        where = f"entry {self.entry_id} ({self.ref} #{self.seq})" if self.entry_id else self.ref
        return f"{where}: {self.reason}"


@dataclass
class AuditReport:
    entries: int = 0
    chains: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    @property
    def first_break(self) -> ChainBreak | None:
        return self.breaks[0] if self.breaks else None


def _entries_in_chain_order(batch_size: int) -> Iterator[AuditEntry]:
    """Every entry ordered by (content type, object id, seq), read by keyset in batches."""
    fields = [
        "id",
        "content_type_id",
        "object_id",
        "seq",
        "kind",
        "action",
        "source",
        "target",
        "actor_id",
        "on_behalf_of_id",
        "comment",
        "data",
        "trace_id",
        "created_at",
        "prev_hash",
        "hash",
    ]
    order = ("content_type_id", "object_id", "seq")
    last: tuple[int, str, int] | None = None
    while True:
        query: QuerySet[AuditEntry] = AuditEntry.objects.only(*fields).order_by(*order)
        if last is not None:
            # A row-value comparison: PostgreSQL reads it as one range of the chain's
            # unique index; the equivalent OR of three filters it cannot, and at millions
            # of entries each batch became a scan. SQLite (3.15+) understands it too.
            query = query.extra(  # nosec B610  # fixed SQL text; the values are parameters
                where=["(content_type_id, object_id, seq) > (%s, %s, %s)"], params=list(last)
            )
        batch = list(query[:batch_size])
        if not batch:
            return
        yield from batch
        tail = batch[-1]
        last = (tail.content_type_id, tail.object_id, tail.seq)


def workflow_content_types() -> dict[int, type[WorkflowModel]]:
    """Every workflow model, by its content type id."""
    found: dict[int, type[WorkflowModel]] = {}
    for model in apps.get_models():
        if issubclass(model, WorkflowModel):
            found[ContentType.objects.get_for_model(model).pk] = model
    return found


def audit_verify(
    *,
    batch_size: int = 2000,
    max_breaks: int = 100,
    checkpoint: Mapping[tuple[int, str], tuple[int, str]] | None = None,
) -> AuditReport:
    """Walk every chain and check hashes, links, sequence numbers and chain heads.

    Reads only. A chain is broken where an entry's hash does not match its contents, its
    prev_hash is not the previous entry's hash, a sequence number is missing, or the
    instance's recorded head differs from the last entry (entries removed at the end).

    With `checkpoint` (the heads a signed checkpoint recorded: (content type id, object
    id) -> (seq, hash); workflows.checkpoints), also: each chain it names still exists,
    reaches that position, and its entry there still carries that hash. This catches what
    the chain alone cannot: a chain rewritten consistently, hashes and head recomputed,
    and an instance removed with its whole chain.
    """
    report = AuditReport()
    models_by_ct = workflow_content_types()
    chain_ends: dict[int, dict[str, tuple[int, str]]] = {}
    current: tuple[int, str] | None = None
    expected_seq = 1
    expected_prev = GENESIS
    chain_broken = False

    def add_break(brk: ChainBreak) -> None:
        if len(report.breaks) < max_breaks:
            report.breaks.append(brk)

    for entry in _entries_in_chain_order(batch_size):
        report.entries += 1
        key = (entry.content_type_id, entry.object_id)
        if key != current:
            current = key
            report.chains += 1
            expected_seq, expected_prev, chain_broken = 1, GENESIS, False
        content_type = ContentType.objects.get_for_id(entry.content_type_id)
        ref = _ref(content_type, entry.object_id)
        chain_ends.setdefault(entry.content_type_id, {})[entry.object_id] = (entry.seq, entry.hash)
        signed = checkpoint.get(key) if checkpoint is not None else None
        if signed is not None and entry.seq == signed[0] and entry.hash != signed[1]:
            add_break(
                ChainBreak(
                    ref=ref,
                    seq=entry.seq,
                    entry_id=entry.pk,
                    reason="its hash differs from the one the checkpoint signed for this position "
                    "(the chain was rewritten)",
                )
            )
        if chain_broken:
            continue
        recomputed = entry_rehash(entry, ref=ref)
        reason = ""
        if entry.seq != expected_seq:
            reason = f"sequence jumps from {expected_seq - 1} to {entry.seq} (entries missing)"
        elif entry.prev_hash != expected_prev:
            reason = "prev_hash does not match the previous entry's hash"
        elif recomputed != entry.hash:
            reason = "contents do not match the entry's hash (entry was altered)"
        if reason:
            add_break(ChainBreak(ref=ref, seq=entry.seq, entry_id=entry.pk, reason=reason))
            chain_broken = True
        expected_seq = entry.seq + 1
        expected_prev = entry.hash

    for (ct_id, object_id), (signed_seq, _) in (checkpoint or {}).items():
        end = chain_ends.get(ct_id, {}).get(object_id)
        ref = _ref(ContentType.objects.get_for_id(ct_id), object_id)
        if end is None:
            add_break(
                ChainBreak(
                    ref=ref,
                    seq=signed_seq,
                    entry_id=None,
                    reason=f"the checkpoint signed {signed_seq} entries of this chain; none is left "
                    "(the instance was removed with its chain)",
                )
            )
        elif end[0] < signed_seq:
            add_break(
                ChainBreak(
                    ref=ref,
                    seq=end[0],
                    entry_id=None,
                    reason=f"chain ends at #{end[0]} but the checkpoint signed it up to #{signed_seq} "
                    "(entries removed)",
                )
            )

    for ct_id, model in models_by_ct.items():
        ends = chain_ends.get(ct_id, {})
        content_type = ContentType.objects.get_for_id(ct_id)
        heads = model._default_manager.filter(audit_seq__gt=0).values_list("pk", "audit_seq", "audit_head")
        for pk, head_seq, head_hash in heads.iterator(chunk_size=batch_size):
            end = ends.pop(str(pk), None)
            ref = _ref(content_type, str(pk))
            if end is None:
                add_break(ChainBreak(ref=ref, seq=head_seq, entry_id=None, reason="all entries missing"))
            elif end != (head_seq, head_hash):
                add_break(
                    ChainBreak(
                        ref=ref,
                        seq=end[0],
                        entry_id=None,
                        reason=f"chain ends at #{end[0]} but the instance's head is #{head_seq} "
                        "(entries removed at the end, or the head was altered)",
                    )
                )
        # Chains left over have no head to end at: the instance's head was reset, or the
        # instance itself was removed from under its trail.
        for object_id, (end_seq, _) in ends.items():
            add_break(
                ChainBreak(
                    ref=_ref(content_type, object_id),
                    seq=end_seq,
                    entry_id=None,
                    reason=f"chain ends at #{end_seq} but the instance has no head "
                    "(its head was reset, or the instance was removed)",
                )
            )
    return report
