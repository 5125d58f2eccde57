"""Telling people what happened to their requests and items: in the app (the bell) and,
for those with an address, by mail as they prefer (approvals.mailing).

Runs in a Celery task after commit (delivered through the outbox, at least once); the
(event id, recipient) uniqueness makes a repeated delivery record nothing twice. Each
person's notification, its live event and its mail (approvals.mail_sending) commit
together. The words
say exactly what happened, read from the audit entry itself: "approved by Alex at stage
manager; now with finance", not "was approved" when one stage of three was.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse

from accounts.models import User
from approvals.action_links import LINK_ACTIONS, action_link_make
from approvals.actions import Action
from approvals.lifecycle.base import NOTIFY_TASK
from approvals.mailing import mail_dispatch
from approvals.models import ApprovalRequest, Notification, State
from approvals.records import RequestRecord, request_record
from workflows.models import AuditEntry, Handoff, OutboxEvent, Recipient
from workflows.outbox import channel_event, outbox_task_done, outbox_tasks_resume, outbox_write
from workflows.records import HandoffRef, ReassignRecord
from workflows.services import actor_ref

logger = logging.getLogger(__name__)

Kind = Notification.Kind


@dataclass(frozen=True)
class Told:
    """Who hears of an entry, and as what: the people given work, the people whose work it
    took away (or passed on), and the requester."""

    new_holders: set[int]
    old_holders: set[int]
    requester: int | None


def _people(refs: tuple[HandoffRef, ...] | list[HandoffRef]) -> tuple[set[int], set[int]]:
    users = {r.user for r in refs if r.user is not None}
    groups = {r.group for r in refs if r.group is not None and r.user is None}
    return users, groups


def _members(user_ids: set[int], group_ids: set[int]) -> set[int]:
    if not group_ids:
        return set(user_ids)
    members = User.objects.filter(groups__in=group_ids, is_active=True).values_list("pk", flat=True)
    return set(user_ids) | set(members)


def _holders_text(refs: tuple[HandoffRef, ...] | list[HandoffRef]) -> str:
    """'finance', 'Alex', 'Alex and group hr': who holds what was opened."""
    users, groups = _people(refs)
    names = [str(u) for u in User.objects.filter(pk__in=users).order_by("username")]
    names += [f"group {g.name}" for g in Group.objects.filter(pk__in=groups).order_by("name")]
    if len(names) > 1:
        return ", ".join(names[:-1]) + " and " + names[-1]
    return names[0] if names else ""


def _where_now(request: ApprovalRequest, record: RequestRecord) -> str:
    """What the request waits for after the entry, in words."""
    transition = record.transition
    opened = list(transition.handoffs.opened) if transition and transition.handoffs else []
    state = request.state
    if state == State.CHANGES_REQUESTED:
        return f"back with {request.requester} for changes"
    if opened:
        stage = record.route.to if record.route and record.route.to else opened[0].stage
        holders = _holders_text(opened)
        return f"now with {holders}" + (f" at stage {stage}" if stage and stage != holders else "")
    if not request.is_open:
        return f"the request is {request.get_state_display().lower()}"
    return ""


def news_of(request: ApprovalRequest, entry: AuditEntry, record: RequestRecord) -> str:
    """One line of what the entry did to the request: 'approved by Alex at stage manager;
    now with finance'."""
    who = entry.actor.display_name if entry.actor else "Baton"
    if entry.on_behalf_of_id and entry.on_behalf_of:
        who += f" for {entry.on_behalf_of.display_name}"
    action = Action.named(entry.action)
    if isinstance(record.engine, ReassignRecord):
        before, after = _holders_text([record.engine.before]), _holders_text([record.engine.after])
        return f"reassigned by {who} from {before} to {after}" + (
            f": {entry.comment}" if entry.comment else ""
        )
    if action in {Action.APPROVE, Action.REJECT, Action.REQUEST_CHANGES} and record.decision is not None:
        verb = {"approve": "approved", "reject": "rejected", "request_changes": "sent back for changes"}[
            action
        ]
        line = f"{verb} by {who} at stage {record.decision.stage}"
        if action == Action.APPROVE and record.decision.stage_outcome == "pending":
            line += " (the stage waits for more approvals)"
    elif action in {Action.COMPLETE, Action.HAND_BACK} and record.task is not None:
        done = "done" if action == Action.COMPLETE else "handed back as not possible"
        line = f"task {record.task.stage} {done} by {who}"
    elif action == Action.RESUBMIT and record.revision is not None:
        line = f"resubmitted by {who} as revision {record.revision.number}"
    elif action is not None:
        line = f"{action.done} by {who}"
    else:
        line = f"{entry.action.replace('_', ' ')} by {who}"
    where = _where_now(request, record) if action not in {Action.COMMENT, Action.ATTACH} else ""
    return f"{line}; {where}" if where else line


def _kind_for(person: int, told: Told, action: Action | None, request: ApprovalRequest) -> str:
    if action == Action.REASSIGN:
        return Kind.REASSIGNED
    if person in told.new_holders:
        return Kind.HANDOFF
    if action in {Action.COMMENT, Action.ATTACH}:
        return Kind.COMMENT
    if action == Action.REQUEST_CHANGES:
        return Kind.CHANGES
    if not request.is_open:
        return Kind.CLOSED
    if action in {Action.APPROVE, Action.REJECT, Action.COMPLETE, Action.HAND_BACK}:
        return Kind.DECISION
    return Kind.OTHER


def _told(request: ApprovalRequest, entry: AuditEntry, record: RequestRecord) -> Told:
    if isinstance(record.engine, ReassignRecord):
        new_users, new_groups = _people([record.engine.after])
        old_users, old_groups = _people([record.engine.before])
        return Told(_members(new_users, new_groups), _members(old_users, old_groups), None)
    transition = record.transition
    handoffs = transition.handoffs if transition is not None else None
    opened = list(handoffs.opened) if handoffs else []
    # Work taken away: a stage decided by others, the request withdrawn or cancelled.
    gone = [h for h in handoffs.closed if h.reason == Handoff.CloseReason.SUPERSEDED] if handoffs else []
    new_users, new_groups = _people(opened)
    old_users, old_groups = _people(gone)
    return Told(_members(new_users, new_groups), _members(old_users, old_groups), request.requester_id)


def _bell_event(notification: Notification, *, by: User | None) -> OutboxEvent:
    """The live event of a new notification, on its recipient's private stream."""
    return channel_event(
        group=Recipient(user_id=notification.recipient_id).channel_group,
        topic="notification.added",
        payload={
            "ref": notification.request.workflow_ref(),
            "label": notification.request.reference,
            # Whom a delegate hearing this stream may be told of it (workflows.subscriptions.Reach).
            "scope": notification.request.request_type.slug,
            "owner": str(notification.request.requester_id),
            "kind": notification.kind,
            "text": notification.text,
            "by": actor_ref(by),
        },
    )


def _decided_by_mail(request: ApprovalRequest) -> bool:
    """Whether the request waits for a decision a mail link can take (not a task)."""
    stage = request.current_stage
    return request.state == State.IN_REVIEW and stage is not None and not stage.is_task


def notify_transition(*, request_id: int, action: str, audit_seq: int, event_id: str) -> int:
    """Record (and mail, where there is an address) one notification per person concerned
    by audit entry `audit_seq`: whoever got work from it, whoever lost or passed on work,
    and the requester; never the person who acted.

    Returns how many were recorded now (0 when this event was already handled). Reports
    the event done at the end (`outbox_task_done`), so `notifications_resume` does not
    hand it on again.
    """
    request = ApprovalRequest.objects.select_related("request_type", "requester", "policy_version").get(
        pk=request_id
    )
    entry = (
        AuditEntry.objects.for_instance(request).select_related("actor", "on_behalf_of").get(seq=audit_seq)
    )
    record = request_record(entry)
    told = _told(request, entry, record)
    news = news_of(request, entry, record)
    named = Action.named(action)
    link = settings.BATON_BASE_URL.rstrip("/") + reverse("approvals:request_detail", args=[request.pk])
    ids = told.new_holders | told.old_holders | ({told.requester} if told.requester else set())
    people = User.objects.filter(Q(pk__in=ids), is_active=True)
    if entry.actor_id is not None:
        people = people.exclude(pk=entry.actor_id)  # nobody is told about their own action
    sent = 0
    for person in people.order_by("pk"):
        kind = _kind_for(person.pk, told, named, request)
        text = news
        if kind == Kind.HANDOFF:
            text = f"waits for you: {news}"
        subject = f"{request.reference} {text}"[:200]
        body = (
            f"{request.reference}: {request.title} ({request.request_type})\n\n{news[0].upper()}{news[1:]}.\n"
        )
        if entry.comment and entry.comment not in news:
            body += f"\nComment: {entry.comment}\n"
        body += f"\nOpen it: {link}\n"
        if kind == Kind.HANDOFF and _decided_by_mail(request):
            body += "".join(
                f"{action.label}: {action_link_make(user=person, request=request, action=action)}\n"
                for action in LINK_ACTIONS
            )
            body += "(Each link asks you to confirm, works once, only for you, for a few days.)\n"
        try:
            with transaction.atomic():
                notification = Notification.objects.create(
                    recipient=person,
                    request=request,
                    event_id=event_id,
                    kind=kind,
                    text=text[:300],
                    subject=subject,
                    body=body,
                )
                # The bell of every open page of theirs changes at once (after commit).
                outbox_write([_bell_event(notification, by=entry.actor)])
                # Mail as they prefer (at once, in the daily digest, or none), decided in
                # the same transaction: a worker killed after this commit loses no mail.
                mail_dispatch([notification])
        except IntegrityError:
            continue  # this event was already delivered to this person
        sent += 1
    outbox_task_done(event_id=event_id)
    logger.info("notified %s people of %s #%s", sent, request.reference, audit_seq)
    return sent


def notifications_resume(*, overdue: timedelta) -> int:
    """Hand again to the relay the notification tasks the broker lost (delivered more than
    `overdue` ago, never done): a Redis restarted without persistence drops its queue. A
    task run twice tells each person once (one notification per event and person)."""
    return outbox_tasks_resume(tasks=[NOTIFY_TASK], overdue=overdue)
