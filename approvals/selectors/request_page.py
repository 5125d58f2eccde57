"""The request page: the request with its payload, route, decisions, revisions, holders,
history, and the actions the viewer may take."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.utils.safestring import SafeString

from approvals import policies
from approvals.actions import Action, action_done
from approvals.diagrams import lifecycle_svg
from approvals.lifecycle import ActionOption, Explanation, action_options, request_why_not
from approvals.models import (
    OPEN_STATES,
    ApprovalRequest,
    Attachment,
    Comment,
    Decision,
    RequestRevision,
    State,
)
from approvals.records import RequestRecord, request_record
from approvals.schemas import field_label
from approvals.selectors.route import RouteView, route_view
from approvals.selectors.values import PayloadItem, field_value_text, payload_items, value_text
from approvals.selectors.work import WorkView, work_view
from workflows.models import AuditEntry, Handoff
from workflows.permissions import may_claim, may_reassign
from workflows.selectors import audit_entries_for_instance, handoffs_for_instance

if TYPE_CHECKING:
    from accounts.models import User


STATE_LABELS: dict[str, str] = {str(value): str(label) for value, label in State.choices}


def diff_label(schema: Mapping[str, Any], name: str) -> str:
    """The label of a revision diff's field: 'title', 'description' or 'payload.<field>'."""
    if name.startswith("payload."):
        top, _, rest = name[len("payload.") :].partition(".")
        label = field_label(schema, top)
        return f"{label}: {rest}" if rest else label
    return name.replace("_", " ").capitalize()


@dataclass(frozen=True)
class HistoryItem:
    """One audit entry as the request page shows it: who, when, for whom, from → to, why."""

    entry: AuditEntry
    record: RequestRecord
    verb: str
    source_label: str
    target_label: str
    # What the entry says about the route: the stage decided in, stages skipped and why.
    notes: tuple[str, ...] = ()
    # The files the entry added: (name, size in bytes, the attachment's id to download it).
    files: tuple[tuple[str, int, int | None], ...] = ()

    @property
    def moved(self) -> bool:
        return self.entry.source != self.entry.target


def _history_notes(record: RequestRecord, entry_action: str) -> tuple[str, ...]:
    notes: list[str] = []
    if record.decision is not None:
        notes.append(f"in stage {record.decision.stage}")
    if record.revision is not None and entry_action == Action.EDIT:
        changed = len(record.revision.diff)
        notes.append(f"{changed} change{'' if changed == 1 else 's'}")
    elif record.revision is not None and record.revision.number:
        changed = len(record.revision.diff)
        notes.append(f"revision {record.revision.number} ({changed} change{'' if changed == 1 else 's'})")
    if record.policy is not None:
        notes.append("moved to another version of the policy")
    route = record.route
    if route is not None:
        notes += [f"stage {met} already met" for met in route.met]
        notes += [f"stage {s.stage} skipped: {s.reason}" for s in route.skipped]
        if route.to:
            notes.append(f"now in stage {route.to}")
        if route.note:
            notes.append(route.note)
    return tuple(notes)


def history_item(entry: AuditEntry) -> HistoryItem:
    record = request_record(entry)
    return HistoryItem(
        entry=entry,
        record=record,
        verb=action_done(entry.action),
        source_label=STATE_LABELS.get(entry.source, entry.source) if entry.source else "",
        target_label=STATE_LABELS.get(entry.target, entry.target),
        notes=_history_notes(record, entry.action),
    )


@dataclass(frozen=True)
class DiffItem:
    field: str
    label: str
    before: str
    after: str


@dataclass(frozen=True)
class RevisionView:
    """One revision of the request: what it said, what changed, and what was decided on it."""

    revision: RequestRevision | None
    number: int
    changes: list[DiffItem]
    decisions: list[Decision]


@dataclass(frozen=True)
class ThreadItem:
    """One post of a request's thread: a comment with its files, or files added alone."""

    author: User
    created_at: datetime
    body: str
    attachments: list[Attachment]


def thread_items(request: ApprovalRequest) -> list[ThreadItem]:
    """The request's thread, oldest first (two queries)."""
    comments = list(Comment.objects.filter(request=request).select_related("author").order_by("id"))
    files = list(Attachment.objects.filter(request=request).select_related("uploaded_by").order_by("id"))
    by_comment: dict[int, list[Attachment]] = {}
    alone: list[Attachment] = []
    for attachment in files:
        if attachment.comment_id is None:
            alone.append(attachment)
        else:
            by_comment.setdefault(attachment.comment_id, []).append(attachment)
    items = [ThreadItem(c.author, c.created_at, c.body, by_comment.get(c.pk, [])) for c in comments]
    # Files added together, without a comment, make one post.
    for attachment in alone:
        last = items[-1] if items else None
        if (
            last is not None
            and not last.body
            and last.author.pk == attachment.uploaded_by_id
            and (attachment.created_at - last.created_at) < timedelta(seconds=1)
        ):
            last.attachments.append(attachment)
        else:
            items.append(ThreadItem(attachment.uploaded_by, attachment.created_at, "", [attachment]))
    items.sort(key=lambda item: item.created_at)
    return items


def _with_files(history: list[HistoryItem], thread: list[ThreadItem]) -> list[HistoryItem]:
    """Each history entry that added files, with the files (linked by their digest)."""
    by_digest = {(a.name, a.sha256): a.pk for post in thread for a in post.attachments}
    items = []
    for item in history:
        files = item.entry.data.get("files") if isinstance(item.entry.data, dict) else None
        if not isinstance(files, list) or not files:
            items.append(item)
            continue
        listed = tuple(
            (
                str(f.get("name", "")),
                int(f.get("size") or 0),
                by_digest.get((str(f.get("name", "")), str(f.get("sha256", "")))),
            )
            for f in files
            if isinstance(f, dict)
        )
        items.append(dataclasses.replace(item, files=listed))
    return items


def change_request_of(request: ApprovalRequest, decisions: list[Decision]) -> Decision | None:
    """The decision that sent the request back to its requester, while it waits for them."""
    if request.state != State.CHANGES_REQUESTED:
        return None
    asked = [d for d in decisions if d.outcome == Decision.Outcome.REQUEST_CHANGES]
    return asked[-1] if asked else None


@dataclass(frozen=True)
class RequestPage:
    request: ApprovalRequest
    handoffs: list[Handoff]
    history: list[HistoryItem]
    # The lifecycle actions the request's state allows, each with whether the viewer may
    # take it now and, if not, why (approvals.lifecycle.action_options).
    options: list[ActionOption]
    # Handoffs the viewer may claim / give back to their group from this page.
    claimable: frozenset[int] = frozenset()
    releasable: frozenset[int] = frozenset()
    payload: list[PayloadItem] = field(default_factory=list)
    revisions: list[RevisionView] = field(default_factory=list)
    route: RouteView | None = None
    lifecycle: SafeString | None = None
    # The tasks the viewer may do now, what the tasks delivered, and their handover notes.
    work: WorkView | None = None
    # Where the viewer can take no action: why not, naming the failed check.
    why_not: Explanation | None = None
    # While the request is back with its requester: the change request they answer.
    change_request: Decision | None = None
    # The thread: comments (each with its files) and files added on their own, in order.
    thread: list[ThreadItem] = field(default_factory=list)
    may_comment: bool = False

    @property
    def actions(self) -> list[str]:
        """The names of the actions the viewer may take now."""
        return [o.action.value for o in self.options if o.allowed]

    @property
    def holders(self) -> list[Handoff]:
        """The open handoffs: who holds the request now."""
        return [h for h in self.handoffs if h.is_open]

    @property
    def has_decisions(self) -> bool:
        return any(r.decisions for r in self.revisions)


def request_visible(*, request_id: int, user: User) -> ApprovalRequest | None:
    """The request if `user` may see it, else None (pages answer 404 either way, so that
    a request's existence is not revealed to people who may not see it)."""
    request = (
        ApprovalRequest.objects.select_related(
            "requester", "request_type", "request_type__current_policy", "policy_version"
        )
        .filter(pk=request_id)
        .first()
    )
    if request is None or not policies.may_view(request, user):
        return None
    return request


def request_page(*, request_id: int, user: User) -> RequestPage | None:
    """A request with its handoffs, history, payload, route, decisions and revisions, and
    the actions `user` may take now; None when it does not exist or `user` may not see
    it (the page answers 404 either way)."""
    request = request_visible(request_id=request_id, user=user)
    if request is None:
        return None
    handoffs = handoffs_for_instance(request)
    entries = audit_entries_for_instance(request)
    decisions = list(
        Decision.objects.filter(request=request)
        .select_related("principal", "actor")
        .order_by("revision", "id")
    )
    revisions = list(
        RequestRevision.objects.filter(request=request).select_related("created_by").order_by("number")
    )
    schema = request.request_type.payload_schema or {}
    open_handoffs = [h for h in handoffs if h.is_open]
    thread = thread_items(request)
    options = action_options(request=request, user=user, open_handoffs=open_handoffs, decisions=decisions)
    return RequestPage(
        request=request,
        handoffs=handoffs,
        history=_with_files([history_item(e) for e in entries], thread),
        options=options,
        why_not=request_why_not(request=request, user=user, open_handoffs=open_handoffs, options=options),
        change_request=change_request_of(request, decisions),
        thread=thread,
        may_comment=policies.may_comment(request, user),
        claimable=frozenset(h.pk for h in handoffs if may_claim(user=user, handoff=h)),
        releasable=frozenset(
            h.pk
            for h in handoffs
            if h.is_open
            and h.candidate_group_id is not None
            and h.assignee_id is not None
            and may_reassign(user=user, handoff=h)
        ),
        payload=payload_items(schema, request.payload or {}),
        revisions=revision_views(schema=schema, revisions=revisions, decisions=decisions),
        route=route_view(request=request, entries=entries, decisions=decisions, handoffs=handoffs),
        lifecycle=lifecycle_svg(
            model=ApprovalRequest,
            labels=dict(STATE_LABELS),
            open_states=[str(s) for s in OPEN_STATES],
            current=request.state,
        ),
        work=work_view(request=request, user=user, open_handoffs=open_handoffs, decisions=decisions),
    )


def _diff_value(schema: Mapping[str, Any], change: Mapping[str, Any], side: str) -> str:
    """One side of a changed field, shown as the request page shows that field."""
    field = str(change.get("field", ""))
    name = field.removeprefix("payload.")
    sub = (schema.get("properties") or {}).get(name) if name != field else None
    if not isinstance(sub, dict) or sub.get("x-currency-field"):
        # (an amount whose currency lives in another field: that field's value at the time
        # is not in the diff, so the number is shown alone)
        return value_text(change.get(side))
    return field_value_text(sub, change.get(side))


def revision_views(
    *, schema: Mapping[str, Any], revisions: list[RequestRevision], decisions: list[Decision]
) -> list[RevisionView]:
    """Revisions in order, each with its diff (labelled) and the decisions taken on it."""
    by_revision: dict[int, list[Decision]] = {}
    for decision in decisions:
        by_revision.setdefault(decision.revision, []).append(decision)
    views = []
    for revision in revisions:
        changes = [
            DiffItem(
                field=str(change.get("field", "")),
                label=diff_label(schema, str(change.get("field", ""))),
                before=_diff_value(schema, change, "before"),
                after=_diff_value(schema, change, "after"),
            )
            for change in revision.diff or []
            if isinstance(change, Mapping)
        ]
        views.append(
            RevisionView(
                revision=revision,
                number=revision.number,
                changes=changes,
                decisions=by_revision.pop(revision.number, []),
            )
        )
    # Decisions of a revision without a row (none today; kept visible rather than lost).
    for number, rest in sorted(by_revision.items()):
        views.append(RevisionView(revision=None, number=number, changes=[], decisions=rest))
    views.sort(key=lambda v: v.number)
    return views


def handoff_request(*, handoff_id: int) -> tuple[Handoff, ApprovalRequest] | None:
    """A handoff of an approval request with its request, or None (two queries)."""
    handoff = Handoff.objects.select_related("content_type").filter(pk=handoff_id).first()
    if handoff is None or handoff.content_type.model_class() is not ApprovalRequest:
        return None
    request = ApprovalRequest.objects.filter(pk=handoff.object_id).first()
    return None if request is None else (handoff, request)


def attachment_visible(*, attachment_id: int, user: User) -> Attachment | None:
    """A file of a request `user` may see, else None (the download answers 404 either way)."""
    attachment = Attachment.objects.select_related("request").filter(pk=attachment_id).first()
    if attachment is None or not policies.may_view(attachment.request, user):
        return None
    return attachment


def may_take(*, request: ApprovalRequest, user: User, action: str) -> bool:
    """Whether `user` may take `action` on `request` now, as its page would offer it (the
    lifecycle's checks on the open handoffs; the service checks again when it is taken)."""
    open_handoffs = [h for h in handoffs_for_instance(request) if h.is_open]
    options = action_options(request=request, user=user, open_handoffs=open_handoffs)
    return any(o.action == action and o.allowed for o in options)
