"""Requests that must not wait forever: their expiry, set at creation, and what happens
when it passes (the timer calls `request_expire`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from approvals.actions import Action
from approvals.lifecycle import CHANGES_STAGE
from approvals.models import ApprovalRequest, OnExpiry, State
from workflows import errors
from workflows.models import Handoff
from workflows.services import SYSTEM, handoff_reassign, transition

if TYPE_CHECKING:
    from accounts.models import User

logger = logging.getLogger(__name__)

# The states an expiry ends; everything else is decided (or a draft nobody waits on).
EXPIRABLE = (State.IN_REVIEW, State.CHANGES_REQUESTED)
EXPIRES_IN_MAX = timedelta(days=366)


@dataclass(frozen=True)
class ExpiryTerms:
    """When a request expires and what follows: end as expired, or escalate to a person
    or a group (exactly one of them)."""

    expires_at: datetime
    on_expiry: str = OnExpiry.EXPIRE
    escalate_user: User | None = None
    escalate_group: Group | None = None

    def fields(self) -> dict[str, Any]:
        return {
            "expires_at": self.expires_at,
            "on_expiry": self.on_expiry,
            "expiry_escalate_user": self.escalate_user,
            "expiry_escalate_group": self.escalate_group,
        }


def expiry_terms(
    *,
    expires_at: datetime | None,
    expires_in: int | None,
    on_expiry: str | None,
    escalate_user: User | None = None,
    escalate_group: Group | None = None,
    now: datetime | None = None,
) -> ExpiryTerms | None:
    """Check a client's expiry input. None when it asks for no expiry. Raises InvalidInput
    naming each bad field (expires_at, expires_in, on_expiry, escalate_to)."""
    moment = now or timezone.now()
    problems: dict[str, list[str]] = {}
    if expires_at is not None and expires_in is not None:
        problems["expires_in"] = ["Give expires_at or expires_in, not both."]
    if expires_in is not None and not (0 < expires_in <= EXPIRES_IN_MAX.total_seconds()):
        problems["expires_in"] = [f"Seconds from now, 1 to {int(EXPIRES_IN_MAX.total_seconds())}."]
    if expires_at is not None and expires_at <= moment:
        problems["expires_at"] = ["The expiry must be in the future."]
    if expires_at is not None and expires_at > moment + EXPIRES_IN_MAX:
        problems["expires_at"] = ["At most a year ahead."]
    mode = on_expiry or OnExpiry.EXPIRE
    if mode not in OnExpiry.values:
        problems["on_expiry"] = [f"Choose one of: {', '.join(OnExpiry.values)}."]
    when = expires_at or (moment + timedelta(seconds=expires_in) if expires_in else None)
    if when is None and on_expiry is not None and not problems:
        problems["expires_at"] = ["on_expiry needs expires_at or expires_in."]
    if mode == OnExpiry.ESCALATE and (escalate_user is None) == (escalate_group is None):
        problems["escalate_to"] = ["Escalating needs exactly one person or group to hand it to."]
    if mode != OnExpiry.ESCALATE and (escalate_user is not None or escalate_group is not None):
        problems["escalate_to"] = ["Only with on_expiry 'escalate'."]
    if escalate_user is not None and not escalate_user.is_active:
        problems["escalate_to"] = [f"{escalate_user} is not active."]
    if problems:
        raise errors.InvalidInput("The expiry is not valid.", field_errors=problems)
    if when is None:
        return None
    return ExpiryTerms(when, mode, escalate_user, escalate_group)


def request_expire(*, request_id: int, now: datetime | None = None) -> ApprovalRequest | None:
    """What the timer calls once a request's `expires_at` has passed.

    `on_expiry` 'expire': the request ends as `expired` through the transition service,
    as the system actor (audited; its open handoffs close). 'escalate': each open handoff
    is handed to the escalation person or group (audited reassignments), once.
    Idempotent: a request already decided, withdrawn, expired or escalated, not yet due,
    or without an expiry is left as it is (logged), and None is returned. `now` is the
    moment to judge "due" by (the scan's clock); the present by default.
    """
    request = ApprovalRequest.objects.filter(pk=request_id).first()
    if request is None:
        logger.info("request_expire: request %s does not exist", request_id)
        return None
    now = now or timezone.now()
    if request.expires_at is None or request.expires_at > now:
        logger.info("request_expire: %s is not due (expires at %s)", request.reference, request.expires_at)
        return None
    if request.state not in EXPIRABLE:
        logger.info("request_expire: %s is %s already; nothing to do", request.reference, request.state)
        return None
    if request.on_expiry == OnExpiry.ESCALATE:
        return _escalate(request=request, now=now)
    try:
        result = transition(
            model=ApprovalRequest,
            instance_id=request.pk,
            name=Action.EXPIRE,
            actor=SYSTEM,
            comment=f"Nobody decided before its expiry ({request.expires_at:%Y-%m-%d %H:%M} UTC).",
        )
    except errors.TransitionNotAllowed:
        # Decided between the read and the lock: the decision stands.
        logger.info("request_expire: %s was decided meanwhile; nothing to do", request.reference)
        return None
    return result.instance


def _escalate(*, request: ApprovalRequest, now: datetime) -> ApprovalRequest | None:
    with transaction.atomic():
        locked = ApprovalRequest.objects.select_for_update().get(pk=request.pk)
        if locked.expiry_escalated_at is not None or locked.state not in EXPIRABLE:
            logger.info("request_expire: %s was escalated or decided already", request.reference)
            return None
        # The requester's own item (changes asked of them) stays theirs: only reviewers are
        # escalated past.
        handoffs = list(
            Handoff.objects.for_instance(locked)
            .filter(closed_at__isnull=True)
            .exclude(stage=CHANGES_STAGE)
            .order_by("id")
        )
        reason = f"Nobody decided before its expiry ({locked.expires_at:%Y-%m-%d %H:%M} UTC): escalated."
        for handoff in handoffs:
            handoff_reassign(
                handoff_id=handoff.pk,
                actor=SYSTEM,
                to_user=locked.expiry_escalate_user,
                to_group=locked.expiry_escalate_group,
                reason=reason,
            )
        # Not the request's state: the marker that its one escalation is done.
        ApprovalRequest.objects.filter(pk=locked.pk).update(expiry_escalated_at=now)
    # A fresh read, not refresh_from_db: django-fsm's refresh of a protected field flips a
    # class-wide flag, which is not thread-safe (two scans in one process raise).
    return ApprovalRequest.objects.get(pk=request.pk)
