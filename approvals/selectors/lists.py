"""The list pages: my requests, all requests, and the types one may submit (the inbox is
approvals.selectors.inbox)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.contrib.contenttypes.models import ContentType
from django.db.models import Q
from django.utils import timezone

from approvals import policies
from approvals.models import ApprovalRequest, Notification, RequestType, State
from approvals.routing import PolicyError
from workflows.models import Handoff

if TYPE_CHECKING:
    from accounts.models import User

# The stage name of the handoff that hands a request back to its requester
# (approvals.stages.CHANGES_STAGE), and how the lists call it.
CHANGES_STAGE = "changes"
STAGE_LABELS = {CHANGES_STAGE: "changes requested"}


def stage_label(name: str) -> str:
    return STAGE_LABELS.get(name, name)


# --- lists -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRow:
    """A request as the lists show it: where it waits, and until when."""

    request: ApprovalRequest
    stage: str = ""
    due_at: datetime | None = None
    overdue: bool = False

    @property
    def pk(self) -> int:
        return self.request.pk


def request_rows(requests: list[ApprovalRequest]) -> list[RequestRow]:
    """Each request with its stage and the earliest due date of its open handoffs.

    One query for the handoffs of the whole page (the requests' policy versions must be
    joined in: the stage name comes from the parsed policy, cached per version).
    """
    if not requests:
        return []
    content_type = ContentType.objects.get_for_model(ApprovalRequest)
    due: dict[str, datetime] = {}
    stages: dict[str, str] = {}
    for object_id, stage, due_at in (
        Handoff.objects.filter(
            content_type=content_type, object_id__in=[str(r.pk) for r in requests], closed_at__isnull=True
        )
        .order_by("id")
        .values_list("object_id", "stage", "due_at")
    ):
        stages.setdefault(object_id, stage)
        if due_at is not None and (object_id not in due or due_at < due[object_id]):
            due[object_id] = due_at
    now = timezone.now()
    rows = []
    for req in requests:
        key = str(req.pk)
        stage = ""
        if req.state == State.IN_REVIEW and req.policy_version_id is not None:
            current = _current_stage(req)
            stage = current or stage_label(stages.get(key, ""))
        elif req.state == State.CHANGES_REQUESTED:
            stage = stage_label(CHANGES_STAGE)
        due_at = due.get(key)
        rows.append(
            RequestRow(request=req, stage=stage, due_at=due_at, overdue=due_at is not None and due_at < now)
        )
    return rows


def _current_stage(req: ApprovalRequest) -> str:
    try:
        stage = req.current_stage
    except (PolicyError, IndexError):
        return ""
    return stage.name if stage is not None else ""


def requests_of_requester(
    *,
    user: User,
    state: str = "",
    request_type: str = "",
    q: str = "",
    before_id: int | None = None,
    limit: int = 50,
) -> list[ApprovalRequest]:
    """The user's own requests, newest first, keyset-paged on id (index request_by_requester),
    optionally in one state, of one type (slug), or matching `q` (REQ-number or title words)."""
    query = ApprovalRequest.objects.filter(requester=user).select_related("request_type", "policy_version")
    if state:
        query = query.filter(state=state)
    if request_type:
        query = query.filter(request_type__slug=request_type)
    text = q.strip()
    if text:
        ref = text.upper().removeprefix("REQ-")
        found = Q(title__icontains=text)
        if ref.isdigit():
            found |= Q(pk=int(ref))
        query = query.filter(found)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return list(query.order_by("-id")[:limit])


def requests_all(
    *, state: str | None = None, before_id: int | None = None, limit: int = 50
) -> list[ApprovalRequest]:
    """Every request, newest first, optionally in one state; keyset-paged on id.

    One query whatever the length (requester, type and policy version joined in); the
    state filter uses the index request_by_state, the unfiltered list the primary key.
    """
    query = ApprovalRequest.objects.select_related("requester", "request_type", "policy_version")
    if state:
        query = query.filter(state=state)
    if before_id is not None:
        query = query.filter(id__lt=before_id)
    return list(query.order_by("-id")[:limit])


def request_types_for_submitter(*, user: User) -> list[RequestType]:
    """The types `user` may submit, by name, with their current policy (a few queries, whatever the number)."""
    return list(policies.submittable_types(user))


def request_type_choices() -> list[tuple[str, str]]:
    """Every active request type as (slug, name), by name: the lists' type filter."""
    return list(RequestType.objects.filter(is_active=True).order_by("name").values_list("slug", "name"))


def request_type_for_submitter(*, slug: str) -> RequestType | None:
    """An active request type by its slug, with its current policy; None when there is none."""
    return RequestType.objects.select_related("current_policy").filter(slug=slug, is_active=True).first()


def notifications_of(*, user: User, before_id: int | None = None, limit: int = 50) -> list[Notification]:
    """The person's notifications, newest first, keyset-paged (index notification_by_recipient)."""
    query = Notification.objects.filter(recipient=user).select_related("request")
    if before_id is not None:
        query = query.filter(pk__lt=before_id)
    return list(query.order_by("-id")[:limit])


def notification_request_id(*, user: User, notification_id: int) -> int | None:
    """The request a notification of `user`'s is about (None for anyone else's)."""
    return (
        Notification.objects.filter(recipient=user, pk=notification_id)
        .values_list("request_id", flat=True)
        .first()
    )
