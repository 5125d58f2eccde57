"""Writes of the approvals product. Every state change goes through workflows.services."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction

from approvals import policies
from approvals.actions import OFFERED, Action
from approvals.models import TITLE_MAX, ApprovalRequest, RequestType
from approvals.schemas import payload_errors
from workflows import errors
from workflows.services import TransitionResult, instance_create, transition

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
) -> ApprovalRequest:
    """Create a request as a draft and, unless `submit` is False, submit it for review.

    The payload is checked against the type's schema (each error keyed
    'payload.<field>'). Raises InvalidInput naming each bad field, Forbidden when the
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
