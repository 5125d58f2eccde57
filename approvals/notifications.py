"""Telling people about changes to requests: in-app notifications and mail.

Runs in a Celery task after commit (delivered through the outbox, at least once); the
(event id, recipient) uniqueness makes a repeated delivery send nothing twice.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse

from accounts.models import User
from approvals.actions import Action
from approvals.models import ApprovalRequest, Notification
from approvals.records import request_record
from workflows.models import AuditEntry, Handoff

logger = logging.getLogger(__name__)


def _recipients(request: ApprovalRequest, entry: AuditEntry) -> list[User]:
    """Whoever got new work from this change, whoever held work it took away (a stage
    decided or the request withdrawn: their handoffs closed as no longer needed), and
    the requester."""
    transition = request_record(entry).transition
    handoffs = transition.handoffs if transition is not None else None
    user_ids: set[int] = set()
    group_ids: set[int] = set()
    told = (
        [*handoffs.opened, *(h for h in handoffs.closed if h.reason == Handoff.CloseReason.SUPERSEDED)]
        if handoffs is not None
        else []
    )
    for handoff in told:
        if handoff.user:
            user_ids.add(handoff.user)
        elif handoff.group:
            group_ids.add(handoff.group)
    user_ids.add(request.requester_id)
    people = User.objects.filter(Q(pk__in=user_ids) | Q(groups__in=group_ids), is_active=True)
    if entry.actor_id is not None:
        people = people.exclude(pk=entry.actor_id)  # nobody is told about their own action
    return list(people.exclude(email="").distinct().order_by("pk"))


def notify_transition(*, request_id: int, action: str, audit_seq: int, event_id: str) -> int:
    """Record and mail one notification per person concerned by audit entry `audit_seq`.

    Returns how many were sent now (0 when this event was already handled).
    """
    request = ApprovalRequest.objects.select_related("request_type", "requester").get(pk=request_id)
    entry = AuditEntry.objects.for_instance(request).select_related("actor").get(seq=audit_seq)
    who = entry.actor.display_name if entry.actor else "Baton"
    named = Action.named(action)
    news = named.news if named is not None else action
    subject = f"{request.reference} {news}: {request.title}"[:200]
    link = settings.BATON_BASE_URL.rstrip("/") + reverse("approvals:request_detail", args=[request.pk])
    body = f"{request.reference} ({request.request_type}) {news} by {who}.\n"
    if entry.comment:
        body += f"\nComment: {entry.comment}\n"
    body += f"\nOpen it: {link}\n"
    sent = 0
    for person in _recipients(request, entry):
        try:
            with transaction.atomic():
                Notification.objects.create(
                    recipient=person, request=request, event_id=event_id, subject=subject, body=body
                )
        except IntegrityError:
            continue  # this event was already delivered to this person
        send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [person.email])
        sent += 1
    logger.info("notified %s people of %s #%s", sent, request.reference, audit_seq)
    return sent
