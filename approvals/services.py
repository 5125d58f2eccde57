"""Writes of the approvals product. Every state change goes through workflows.services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.utils import timezone

from approvals import policies
from approvals.action_links import LinkProblem, action_link_read
from approvals.actions import BULK_ACTIONS, OFFERED, Action
from approvals.expiry import ExpiryTerms
from approvals.models import (
    SAVED_VIEW_NAME_MAX,
    TITLE_MAX,
    ActionLinkUse,
    ApprovalRequest,
    IdempotentRequest,
    Notification,
    RequestType,
    SavedView,
)
from approvals.schemas import payload_errors
from workflows import errors
from workflows.models import Handoff
from workflows.services import TransitionResult, handoff_claim, instance_create, transition
from workflows.webhooks.services import callback_url_clean

if TYPE_CHECKING:
    from accounts.models import User

COMMENT_MAX = 5000


def request_create(
    *,
    requester: User,
    request_type: RequestType,
    title: str,
    description: str = "",
    payload: dict[str, Any] | None = None,
    submit: bool = True,
    expiry: ExpiryTerms | None = None,
    callback_url: str = "",
) -> ApprovalRequest:
    """Create a request as a draft and, unless `submit` is False, submit it for review.
    With `expiry` (approvals.expiry.expiry_terms), it expires or escalates once nobody
    decided it in time.

    The payload is checked against the type's schema (each error keyed
    'payload.<field>'); `callback_url` (where its decision is POSTed, signed) must be on
    a host in WEBHOOK_CALLBACK_HOSTS. Raises InvalidInput naming each bad field, Forbidden when the
    requester may not submit this type. Both steps commit together: no half-made
    request is left behind.
    Side effects: audit entries 'create' (and 'submit'); live events and mail after commit.
    """
    field_errors: dict[str, list[str]] = {}
    clean_title = (title or "").strip()
    if not clean_title:
        field_errors["title"] = ["A title is required."]
    elif len(clean_title) > TITLE_MAX:
        field_errors["title"] = [f"At most {TITLE_MAX} characters (got {len(clean_title)})."]
    field_errors.update(payload_errors(schema=request_type.payload_schema, payload=payload or {}))
    try:
        clean_callback = callback_url_clean(callback_url)
    except errors.InvalidInput as exc:
        field_errors.update(exc.field_errors)
    if field_errors:
        raise errors.InvalidInput("The request is incomplete.", field_errors=field_errors)
    if not policies.may_submit_type(requester, request_type):
        raise errors.Forbidden(f"You may not submit {request_type} requests.")
    return instance_create(
        instance=ApprovalRequest(
            request_type=request_type,
            requester=requester,
            title=clean_title,
            description=description or "",
            payload=payload or {},
            **(expiry.fields() if expiry is not None else {}),
            callback_url=clean_callback,
        ),
        actor=requester,
        then=Action.SUBMIT if submit else None,
    )


def request_act(
    *,
    request_id: Any,
    action: str,
    actor: User,
    comment: str = "",
    on_behalf_of: User | None = None,
    expected_version: int | None = None,
    idempotency_key: str | None = None,
    data: dict[str, Any] | None = None,
) -> TransitionResult[ApprovalRequest]:
    """Take one lifecycle action (approve, reject, request_changes, submit, resubmit,
    withdraw, cancel) on a request, through the transition service.

    Raises the service's domain errors; see workflows.services.transition.
    """
    if Action.named(action) not in OFFERED:
        raise errors.InvalidInput(
            f"Unknown action '{action}'.",
            field_errors={"action": [f"Choose one of: {', '.join(a.value for a in OFFERED)}."]},
        )
    if len(comment) > COMMENT_MAX:
        raise errors.InvalidInput(
            "The comment is too long.",
            field_errors={"comment": [f"At most {COMMENT_MAX} characters (got {len(comment)})."]},
        )
    return transition(
        model=ApprovalRequest,
        instance_id=request_id,
        name=action,
        actor=actor,
        comment=comment.strip(),
        on_behalf_of=on_behalf_of,
        expected_version=expected_version,
        idempotency_key=idempotency_key,
        data=data,
    )


def request_draft_save(
    *,
    request_id: Any,
    actor: User,
    content: dict[str, Any],
    expected_version: int | None = None,
    submit: bool = False,
) -> ApprovalRequest:
    """Save what a draft says (`content`: title, description, payload; each optional) and,
    if `submit`, send it for review: both or neither (one transaction).

    Raises the transition service's errors (InvalidInput naming each bad field, StaleVersion
    when the draft changed since `expected_version`, Forbidden for anyone but its requester).
    Side effects: an 'edit' audit entry (and 'submit'), live events after commit.
    """
    with transaction.atomic():
        result = request_act(
            request_id=request_id,
            action=Action.EDIT,
            actor=actor,
            expected_version=expected_version,
            data=content,
        )
        if submit:
            result = request_act(request_id=request_id, action=Action.SUBMIT, actor=actor)
    return result.instance


# --- many items at once --------------------------------------------------------------------

BULK_MAX = 100


@dataclass(frozen=True)
class ItemResult:
    """What became of one item of a bulk action: done, or why not (the service's own words)."""

    handoff_id: int
    reference: str
    ok: bool
    message: str


def items_act(*, actor: User, action: str, handoff_ids: list[int], comment: str = "") -> list[ItemResult]:
    """Take `action` (approve, reject, request_changes or claim) on each inbox item (an open
    handoff of a request), in the order given, each in its own transaction: an item that
    fails leaves the others done. An item held for someone who delegated to `actor` is
    acted on for them (the transition service checks the delegation).

    Raises InvalidInput only for the whole batch (unknown action, too many items, a
    decision that needs a comment without one); each item's own refusal is its result.
    Side effects: those of each action, per item.
    """
    named = Action.named(action)
    if named not in BULK_ACTIONS:
        raise errors.InvalidInput(
            f"'{action}' cannot be done in bulk.",
            field_errors={"action": [f"Choose one of: {', '.join(a.value for a in BULK_ACTIONS)}."]},
        )
    if len(handoff_ids) > BULK_MAX:
        raise errors.InvalidInput(
            "Too many items.", field_errors={"items": [f"At most {BULK_MAX} items at a time."]}
        )
    if named.comment_required and not comment.strip():
        raise errors.InvalidInput(named.comment_required, field_errors={"comment": [named.comment_required]})
    handoffs = Handoff.objects.filter(
        pk__in=handoff_ids, content_type=ContentType.objects.get_for_model(ApprovalRequest)
    ).select_related("assignee")
    found = {h.pk: h for h in handoffs}
    requests_by_id = ApprovalRequest.objects.in_bulk([int(h.object_id) for h in found.values()])
    results = []
    for handoff_id in handoff_ids:
        handoff = found.get(handoff_id)
        request = requests_by_id.get(int(handoff.object_id)) if handoff is not None else None
        if handoff is None or request is None or not policies.may_view(request, actor):
            results.append(ItemResult(handoff_id, f"item {handoff_id}", False, "No such item."))
            continue
        results.append(
            _item_act(actor=actor, action=named, handoff=handoff, request=request, comment=comment)
        )
    return results


def _item_act(
    *, actor: User, action: Action, handoff: Handoff, request: ApprovalRequest, comment: str
) -> ItemResult:
    # An item assigned to someone else is acted on for them; whether they delegated to the
    # actor is the transition service's check.
    holder = handoff.assignee if handoff.assignee_id not in (None, actor.pk) else None
    try:
        if action == Action.CLAIM:
            handoff_claim(handoff_id=handoff.pk, actor=actor)
            done = "claimed: it is yours now"
        else:
            result = request_act(
                request_id=request.pk, action=action, actor=actor, comment=comment, on_behalf_of=holder
            )
            done = f"{action.done}; it is {result.instance.get_state_display().lower()} now"
    except errors.WorkflowError as exc:
        reason = exc.detail
        if exc.field_errors:
            reason = "; ".join(m for messages in exc.field_errors.values() for m in messages)
        return ItemResult(handoff.pk, request.reference, False, reason)
    return ItemResult(handoff.pk, request.reference, True, done.capitalize())


# --- the workspace's own records -------------------------------------------------------------


def saved_view_create(*, owner: User, name: str, query: str) -> SavedView:
    """Keep the inbox's filters (`query`, a query string) under `name`; a view of the same
    name is replaced. Raises InvalidInput naming the field."""
    clean = (name or "").strip()
    if not clean:
        raise errors.InvalidInput("Give the view a name.", field_errors={"name": ["Give the view a name."]})
    if len(clean) > SAVED_VIEW_NAME_MAX:
        message = f"At most {SAVED_VIEW_NAME_MAX} characters (got {len(clean)})."
        raise errors.InvalidInput(message, field_errors={"name": [message]})
    view, _ = SavedView.objects.update_or_create(owner=owner, name=clean, defaults={"query": query[:500]})
    return view


def saved_view_delete(*, owner: User, view_id: int) -> None:
    """Forget one of `owner`'s saved views (NotFound for anyone else's)."""
    deleted, _ = SavedView.objects.filter(owner=owner, pk=view_id).delete()
    if not deleted:
        raise errors.NotFound(f"Saved view {view_id} does not exist.")


def notifications_mark_read(*, recipient: User, notification_ids: list[int] | None = None) -> int:
    """Mark `recipient`'s notifications read: those listed, or all of them. Returns how many."""
    unread = Notification.objects.filter(recipient=recipient, read_at__isnull=True)
    if notification_ids is not None:
        unread = unread.filter(pk__in=notification_ids)
    return unread.update(read_at=timezone.now())


# --- mailed action links --------------------------------------------------------------------


def action_link_use(
    token: str, *, user: User, comment: str = "", now: datetime | None = None
) -> TransitionResult[ApprovalRequest]:
    """Act as the link says, once: records its use and takes the action in one transaction
    (a refused action leaves the link unused). Raises LinkProblem, or the transition
    service's errors (not allowed, forbidden, a missing reason)."""
    claim = action_link_read(token, user=user, now=now)
    try:
        with transaction.atomic():
            ActionLinkUse.objects.create(
                nonce=claim.nonce, user=user, request_id=claim.request_id, action=claim.action.value
            )
            return request_act(request_id=claim.request_id, action=claim.action, actor=user, comment=comment)
    except IntegrityError:
        raise LinkProblem("used", "This link was used already: each link acts once.") from None


# The API's Idempotency-Key answers are kept this long (approvals.api.idempotency).
IDEMPOTENCY_KEPT = timedelta(hours=24)


def idempotent_requests_purge(*, older_than: timedelta = IDEMPOTENCY_KEPT) -> int:
    """Forget the API's idempotency keys older than `older_than`; a retry after that is a
    new request. Returns how many were forgotten (Celery beat runs it hourly)."""
    deleted, _ = IdempotentRequest.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted
