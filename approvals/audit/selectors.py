"""The audit log: entries newest first, keyset-paged, each rendered for people.

A page runs three statements whatever its size: the entries (with the people who acted,
and the title and type of each entry's request), a capped count, and the names of the
people and groups their data mentions. Rendering reads the typed records (approvals.records,
workflows.records) and the Action words (approvals.actions), never raw dictionaries.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.db.models import BigIntegerField, Case, CharField, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import Cast

from accounts.models import User
from approvals.audit.filters import AuditFilter
from approvals.models import ApprovalRequest, AuditExport
from approvals.records import RequestRecord
from approvals.selectors import STATE_LABELS, HistoryItem, history_item, value_text
from workflows.models import AuditEntry
from workflows.records import ClaimRecord, CreatedRecord, HandoffRef, ReassignRecord, TransitionRecord

COUNT_CAP = 10_000
ENTRY_FIELDS = [f.name for f in AuditEntry._meta.concrete_fields]
PERSON_FIELDS = ("username", "first_name", "last_name")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EXPORT_VERBS = {"create": "started an export", "complete": "completed an export"}


def cursor_of(entry: AuditEntry) -> str:
    """The keyset position of `entry`: microseconds since the epoch, then its id."""
    return f"{(entry.created_at - EPOCH) // timedelta(microseconds=1)}.{entry.pk}"


def cursor_parse(cursor: str) -> tuple[datetime, int] | None:
    micros, _, pk = cursor.partition(".")
    if not (micros.isdigit() and pk.isdigit()):
        return None
    return EPOCH + timedelta(microseconds=int(micros)), int(pk)


@dataclass(frozen=True)
class Change:
    field: str
    before: str
    after: str


@dataclass(frozen=True)
class AuditRow:
    """One entry as the log and the evidence page show it."""

    entry: AuditEntry
    item: HistoryItem
    reference: str
    request_id: int | None = None  # the request it belongs to, if any
    request_title: str = ""
    request_type: str = ""
    is_export: bool = False
    changes: tuple[Change, ...] = ()
    handoffs: tuple[str, ...] = ()
    extra_notes: tuple[str, ...] = ()

    @property
    def record(self) -> RequestRecord:
        return self.item.record

    @property
    def verb(self) -> str:
        if self.is_export:
            return _EXPORT_VERBS.get(self.entry.action, self.item.verb)
        return self.item.verb

    @property
    def notes(self) -> tuple[str, ...]:
        return self.item.notes + self.extra_notes

    @property
    def is_system(self) -> bool:
        return self.entry.actor_id is None


@dataclass
class Names:
    """The people and groups a page's entries name, read in one statement."""

    users: dict[int, str] = field(default_factory=dict)
    groups: dict[int, str] = field(default_factory=dict)

    def user(self, pk: int | None) -> str:
        if pk is None:
            return ""
        return self.users.get(pk) or f"user #{pk}"

    def group(self, pk: int | None) -> str:
        if pk is None:
            return ""
        found = self.groups.get(pk)
        return f"group {found}" if found is not None else f"group #{pk}"

    def holder(self, handoff: HandoffRef) -> str:
        who = [n for n in (self.user(handoff.user), self.group(handoff.group)) if n]
        return " from ".join(who) if len(who) == 2 else (who[0] if who else "nobody")


def _named_ids(records: Iterable[RequestRecord]) -> tuple[set[int], set[int]]:
    users: set[int] = set()
    groups: set[int] = set()

    def add(handoff: HandoffRef) -> None:
        if handoff.user is not None:
            users.add(handoff.user)
        if handoff.group is not None:
            groups.add(handoff.group)

    for record in records:
        engine = record.engine
        if isinstance(engine, TransitionRecord) and engine.handoffs is not None:
            for handoff in (*engine.handoffs.closed, *engine.handoffs.opened):
                add(handoff)
        elif isinstance(engine, ReassignRecord):
            add(engine.before)
            add(engine.after)
        elif isinstance(engine, ClaimRecord):
            add(HandoffRef(id=engine.handoff, user=engine.user, group=engine.group))
    return users, groups


def names_for(records: Iterable[RequestRecord]) -> Names:
    """The names of the people and groups `records` mention: one statement (a union), run
    even when there are none, so that a page costs the same whatever it holds (no row has
    id 0)."""
    user_ids, group_ids = _named_ids(records)
    people = (
        User.objects.filter(pk__in=sorted(user_ids) or [0])
        .order_by()
        .values_list(Value("u"), "pk", "first_name", "last_name", "username")
    )
    teams = (
        Group.objects.filter(pk__in=sorted(group_ids) or [0])
        .order_by()
        .values_list(Value("g"), "pk", "name", Value(""), Value(""))
    )
    names = Names()
    for kind, pk, first, last, username in people.union(teams, all=True):
        if kind == "u":
            names.users[pk] = f"{first} {last}".strip() or username
        else:
            names.groups[pk] = first
    return names


_QUIET_CHANGES = frozenset({"stage_slots", "submitted_at", "decided_at", "completed_at"})


def _label(name: str) -> str:
    return name.removesuffix("_id").replace("_", " ")


def _changes(record: RequestRecord) -> tuple[Change, ...]:
    engine = record.engine
    if isinstance(engine, CreatedRecord):
        return tuple(
            Change(field=k, before="", after=value_text(v)) for k, v in sorted(engine.fields.items())
        )
    if not isinstance(engine, TransitionRecord):
        return ()
    found = []
    for name, pair in sorted(engine.changes.items()):
        before, after = [*pair, None, None][:2]
        label = _label(name)
        if name == "state":
            before, after = STATE_LABELS.get(str(before), before), STATE_LABELS.get(str(after), after)
        found.append(Change(field=label, before=value_text(before), after=value_text(after)))
    # The noisy bookkeeping (slots, timestamps) last: what a person changed comes first.
    found.sort(key=lambda c: c.field.replace(" ", "_") in _QUIET_CHANGES)
    return tuple(found)


def _handoff_lines(record: RequestRecord, names: Names) -> tuple[str, ...]:
    engine = record.engine
    lines: list[str] = []
    if isinstance(engine, TransitionRecord) and engine.handoffs is not None:
        for closed in engine.handoffs.closed:
            reason = f" ({closed.reason})" if closed.reason else ""
            lines.append(f"closed: {names.holder(closed)}{reason}")
        for opened in engine.handoffs.opened:
            stage = f"{opened.stage}: " if opened.stage else ""
            due = f", due {opened.due_at[:16].replace('T', ' ')}" if opened.due_at else ""
            lines.append(f"opened: {stage}{names.holder(opened)}{due}")
    elif isinstance(engine, ReassignRecord):
        lines.append(f"from {names.holder(engine.before)} to {names.holder(engine.after)}")
    elif isinstance(engine, ClaimRecord):
        lines.append(f"{names.user(engine.user)} ({names.group(engine.group)})")
    return tuple(lines)


def _export_notes(entry: AuditEntry) -> tuple[str, ...]:
    """What an export's entry says, from the entry itself (its 'create' fields, its
    'complete' completeness record)."""
    data = entry.data if isinstance(entry.data, dict) else {}
    if entry.action == "complete":
        done = data.get("completeness") or {}
        return (f"{done.get('rows')} rows, digest sha256:{str(done.get('digest', ''))[:16]}…",)
    fields = data.get("fields") or {}
    query = (fields.get("filter") or {}).get("query") or "the whole trail"
    return (f"{fields.get('format', '')} of {query}",)


def request_annotations() -> dict[str, Any]:
    """The title and type of the request each entry belongs to, read in the entries' own
    statement (a primary-key lookup per entry of a request; none for other entries)."""
    request_type = ContentType.objects.get_for_model(ApprovalRequest)
    request = ApprovalRequest.objects.filter(pk=Cast(OuterRef("object_id"), BigIntegerField()))
    of_request = {"content_type_id": request_type.pk}
    return {
        "request_title": Case(
            When(**of_request, then=Subquery(request.values("title")[:1])), output_field=CharField()
        ),
        "request_type_name": Case(
            When(**of_request, then=Subquery(request.values("request_type__name")[:1])),
            output_field=CharField(),
        ),
    }


def audit_rows(entries: list[AuditEntry], *, request: ApprovalRequest | None = None) -> list[AuditRow]:
    """Entries rendered for people, with one more statement: the names of the people and
    groups their data mentions. Each entry's request title and type come from the entries'
    statement (`request_annotations`), or from `request` when all are of that one."""
    request_type = ContentType.objects.get_for_model(ApprovalRequest)
    export_type = ContentType.objects.get_for_model(AuditExport)
    items = [history_item(e) for e in entries]
    names = names_for(i.record for i in items)
    rows = []
    for entry, item in zip(entries, items, strict=True):
        of_request = entry.content_type_id == request_type.pk
        is_export = entry.content_type_id == export_type.pk
        if of_request:
            reference = f"REQ-{entry.object_id}"
        elif is_export:
            reference = f"EXP-{entry.object_id}"
        else:
            content_type = ContentType.objects.get_for_id(entry.content_type_id)
            reference = f"{content_type.app_label}.{content_type.model}:{entry.object_id}"
        if request is not None and of_request:
            title, type_name = request.title, request.request_type.name
        else:
            title = getattr(entry, "request_title", None) or ""
            type_name = getattr(entry, "request_type_name", None) or ""
        rows.append(
            AuditRow(
                entry=entry,
                item=item,
                reference=reference,
                request_id=int(entry.object_id) if of_request else None,
                request_title=title,
                request_type=type_name,
                is_export=is_export,
                changes=_changes(item.record),
                handoffs=_handoff_lines(item.record, names),
                extra_notes=_export_notes(entry) if is_export else (),
            )
        )
    return rows


@dataclass(frozen=True)
class AuditPage:
    rows: list[AuditRow]
    count: int
    count_capped: bool
    next_cursor: str | None


def audit_page(*, audit_filter: AuditFilter, before: str = "", limit: int = 50) -> AuditPage:
    """The entries `audit_filter` matches, newest first (created_at, id), `limit` of them
    after the keyset position `before`, with how many match in all (up to COUNT_CAP)."""
    query = audit_filter.entries()
    position = cursor_parse(before) if before else None
    page_query = query
    if position is not None:
        moment, pk = position
        # The redundant upper bound lets the index start at the position.
        page_query = query.filter(
            Q(created_at__lt=moment) | Q(created_at=moment, id__lt=pk), created_at__lte=moment
        )
    entries = list(
        page_query.select_related("actor", "on_behalf_of")
        .only(
            *ENTRY_FIELDS, *(f"{who}__{name}" for who in ("actor", "on_behalf_of") for name in PERSON_FIELDS)
        )
        .annotate(**request_annotations())
        .order_by("-created_at", "-id")[: limit + 1]
    )
    more = len(entries) > limit
    entries = entries[:limit]
    count = query.order_by()[: COUNT_CAP + 1].count()
    return AuditPage(
        rows=audit_rows(entries),
        count=min(count, COUNT_CAP),
        count_capped=count > COUNT_CAP,
        next_cursor=cursor_of(entries[-1]) if more and entries else None,
    )


def audit_entry(entry_id: int) -> AuditEntry | None:
    return (
        AuditEntry.objects.select_related("actor", "on_behalf_of", "content_type").filter(pk=entry_id).first()
    )


def entry_document(entry: AuditEntry) -> dict[str, Any]:
    """The raw record as stored, with the reference its hash covers."""
    content_type = ContentType.objects.get_for_id(entry.content_type_id)
    return {
        "id": entry.pk,
        "ref": f"{content_type.app_label}.{content_type.model}:{entry.object_id}",
        "seq": entry.seq,
        "kind": entry.kind,
        "action": entry.action,
        "source": entry.source,
        "target": entry.target,
        "actor": entry.actor_id,
        "on_behalf_of": entry.on_behalf_of_id,
        "comment": entry.comment,
        "data": entry.data,
        "trace_id": entry.trace_id,
        "created_at": entry.created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        "prev_hash": entry.prev_hash,
        "hash": entry.hash,
    }
