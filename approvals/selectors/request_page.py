"""The request page: the request with its payload, route, decisions, revisions, holders,
history, and the actions the viewer may take."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.utils.safestring import SafeString

from approvals import policies
from approvals.actions import action_done
from approvals.diagrams import lifecycle_svg
from approvals.lifecycle import ActionOption, action_options
from approvals.models import OPEN_STATES, ApprovalRequest, Decision, RequestRevision, State
from approvals.records import RequestRecord, request_record
from approvals.schemas import field_label
from approvals.selectors.route import RouteView, route_view
from approvals.selectors.values import PayloadItem, payload_items, value_text
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

    @property
    def moved(self) -> bool:
        return self.entry.source != self.entry.target


def _history_notes(record: RequestRecord) -> tuple[str, ...]:
    notes: list[str] = []
    if record.decision is not None:
        notes.append(f"in stage {record.decision.stage}")
    if record.revision is not None and record.revision.number:
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
        notes=_history_notes(record),
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
    return RequestPage(
        request=request,
        handoffs=handoffs,
        history=[history_item(e) for e in entries],
        options=action_options(request=request, user=user, open_handoffs=open_handoffs, decisions=decisions),
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
                before=value_text(change.get("before")),
                after=value_text(change.get("after")),
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
