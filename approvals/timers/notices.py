"""What the timers tell people: a reminder to a holder, an escalation to a manager.

Recorded as notifications (the bell) in the transaction that advances the timer, so a
timer that fires once tells once; each is keyed by its timer (`event_id`), so a repeated
delivery records nothing twice. Mail goes out as each person prefers (approvals.mailing).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from accounts.models import TeamMembership, User
from approvals.mailing import mail_dispatch
from approvals.models import ApprovalRequest, Notification
from approvals.routing import Stage
from workflows.models import Handoff


def holders_of(handoff: Handoff) -> set[int]:
    """The people a handoff waits for: its holder, or every active member of its group."""
    if handoff.assignee_id is not None:
        return {handoff.assignee_id}
    if handoff.candidate_group_id is None:
        return set()
    members = User.objects.filter(groups=handoff.candidate_group_id, is_active=True).values_list(
        "pk", flat=True
    )
    return set(members)


def managers_of(handoff: Handoff, *, stage: Stage | None) -> set[int]:
    """Whom an overdue handoff is escalated to by word: its holder's line manager and the
    managers of their teams; for work offered to a group, the stage's escalation target
    (a person, or the members of a group)."""
    found: set[int] = set()
    if handoff.assignee_id is not None:
        holder = User.objects.filter(pk=handoff.assignee_id).values_list("manager_id", flat=True).first()
        if holder is not None:
            found.add(holder)
        teams = TeamMembership.objects.filter(user_id=handoff.assignee_id).values("team_id")
        found |= set(
            TeamMembership.objects.filter(team_id__in=teams, is_manager=True).values_list(
                "user_id", flat=True
            )
        )
    elif stage is not None and stage.escalate_to is not None:
        target = stage.escalate_to
        people = (
            User.objects.filter(username=target.user)
            if target.user
            else User.objects.filter(groups__name=target.group)
        )
        found |= set(people.filter(is_active=True).values_list("pk", flat=True))
    found.discard(handoff.assignee_id or 0)
    return found


def notices_send(
    *, request: ApprovalRequest, people: Iterable[int], kind: str, key: str, text: str, body: str
) -> int:
    """Record one notification per person for timer `key` (once each, whatever happens
    twice) with their mails, in one transaction (the mails leave after commit, through
    approvals.mail_sending). Returns how many people it concerned."""
    ids = sorted(set(people))
    if not ids:
        return 0
    link = settings.BATON_BASE_URL.rstrip("/") + reverse("approvals:request_detail", args=[request.pk])
    subject = f"{request.reference} {text}"[:200]
    full_body = (
        f"{request.reference}: {request.title} ({request.request_type})\n\n{body}\n\nOpen it: {link}\n"
    )
    with transaction.atomic():
        Notification.objects.bulk_create(
            [
                Notification(
                    recipient_id=person,
                    request=request,
                    event_id=key,
                    kind=kind,
                    text=text[:300],
                    subject=subject,
                    body=full_body,
                )
                for person in ids
            ],
            ignore_conflicts=True,
        )
        # Read back what is not mailed yet (bulk_create with ignore_conflicts sets no keys;
        # a notice recorded by an earlier run has its mail already).
        mail_dispatch(
            list(
                Notification.objects.filter(
                    event_id=key, recipient_id__in=ids, mailed_at__isnull=True, digest_pending=False
                )
            )
        )
    return len(ids)
