"""What one due handoff timer does: remind its holder, or escalate as its stage says.

Precondition of `timer_fire`: the caller holds the request's row lock and the handoff's
(approvals.timers.scan). The timer's bookkeeping is written before the action, in the
same transaction, so the action happens exactly as often as the timer advances: once.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import formats, timezone

from accounts.models import User
from approvals.actions import Action
from approvals.models import ApprovalRequest, Notification
from approvals.routing import Stage, duration_text
from approvals.timers.notices import holders_of, managers_of, notices_send
from workflows import errors
from workflows.models import Handoff
from workflows.services import SYSTEM, handoff_reassign, transition

logger = logging.getLogger(__name__)

Kind = Notification.Kind


def stage_of(request: ApprovalRequest, handoff: Handoff) -> Stage | None:
    """The policy stage a handoff belongs to (None for the requester's own handoffs)."""
    policy = request.policy
    if policy is None:
        return None
    index = policy.stage_index(handoff.stage)
    return policy.stages[index] if index is not None else None


def _when(moment: datetime | None) -> str:
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT") if moment else "now"


def _timers_save(handoff: Handoff, *, stage: Stage | None) -> None:
    handoff.next_timer_at = handoff.next_timer(stage.remind_at if stage else ())
    Handoff.objects.filter(pk=handoff.pk).update(
        next_timer_at=handoff.next_timer_at,
        reminders_sent=handoff.reminders_sent,
        escalated_at=handoff.escalated_at,
    )


def timer_fire(*, handoff: Handoff, request: ApprovalRequest, now: datetime) -> str:
    """Fire `handoff`'s timer if it is due at `now`.

    Returns 'reminded', 'escalated:<action>', 'nothing' (not due) or 'decided' (the
    handoff closed or the request left review before its timer fired: logged, nothing
    done). Reminders missed while no scan ran are folded into one.
    """
    if not handoff.is_open or not request.is_open:
        logger.info(
            "timer of handoff %s fired after %s was decided (%s): nothing done",
            handoff.pk,
            request.reference,
            request.state,
        )
        if handoff.next_timer_at is not None:
            Handoff.objects.filter(pk=handoff.pk).update(next_timer_at=None)
        return "decided"
    if handoff.next_timer_at is None or handoff.next_timer_at > now:
        return "nothing"
    stage = stage_of(request, handoff)
    fractions = stage.remind_at if stage is not None else ()
    moments = handoff.reminder_moments(fractions)
    passed = sum(1 for m in moments if m <= now)
    due = handoff.due_at is not None and handoff.due_at <= now
    if not due and passed > handoff.reminders_sent:
        handoff.reminders_sent = passed
        _timers_save(handoff, stage=stage)
        _remind(handoff=handoff, request=request, stage=stage, number=passed)
        return "reminded"
    if not due or handoff.escalated_at is not None:
        _timers_save(handoff, stage=stage)  # a stale next timer: set it right
        return "nothing"
    handoff.reminders_sent = len(moments)
    handoff.escalated_at = now
    _timers_save(handoff, stage=stage)
    action = stage.overdue_action if stage is not None else "notify_manager"
    with transaction.atomic():
        try:
            done = _escalate(handoff=handoff, request=request, stage=stage, action=action)
        except errors.WorkflowError as exc:
            # The policy's escalation cannot be done (its target left, the route has
            # nobody next): the manager hears of it instead, and the log says why.
            logger.warning(
                "escalation '%s' of handoff %s (%s) failed: %s; telling the manager instead",
                action,
                handoff.pk,
                request.reference,
                exc.detail,
            )
            done = False
    if not done:
        _notify_manager(handoff=handoff, request=request, stage=stage)
        return "escalated:notify_manager"
    return f"escalated:{action}"


def _remind(*, handoff: Handoff, request: ApprovalRequest, stage: Stage | None, number: int) -> None:
    where = f" at stage {handoff.stage}" if handoff.stage else ""
    text = f"reminder: waits for you{where}, due {_when(handoff.due_at)}"
    notices_send(
        request=request,
        people=holders_of(handoff) - {request.requester_id},
        kind=Kind.REMINDER,
        key=f"timer:{handoff.pk}:remind:{number}",
        text=text,
        body=f"This request waits for you{where}. It is due {_when(handoff.due_at)}.",
    )


def stage_visit_key(*, request: ApprovalRequest, handoff: Handoff) -> str:
    """What identifies the visit of a stage that `handoff` belongs to: the handoffs of one
    stage (every approver of an all or quorum stage) open together, from one clock
    reading, so they share their due time, as do their successors by reassignment; a
    later visit (after a resubmission or a hand-back) has its own. Under a working-time
    SLA, holders with different calendars have different deadlines, told apart."""
    stage = hashlib.sha256(handoff.stage.encode()).hexdigest()[:10]
    due = int(handoff.due_at.timestamp()) if handoff.due_at is not None else f"h{handoff.pk}"
    return f"{request.pk}:{request.revision}:{stage}:{due}"


def _notify_manager(*, handoff: Handoff, request: ApprovalRequest, stage: Stage | None) -> None:
    """Tell the holder's managers that the stage is overdue: once per stage visit and
    manager, however many of its handoffs (one per approver) run out together."""
    sla = f" (SLA {duration_text(stage.sla)})" if stage is not None and stage.sla is not None else ""
    overdue = [handoff]
    if handoff.due_at is not None:
        overdue = list(
            Handoff.objects.for_instance(request)
            .open()
            .filter(stage=handoff.stage, due_at=handoff.due_at)
            .select_related("assignee", "candidate_group")
            .order_by("pk")
        ) or [handoff]
    holders = [h.holder_label() for h in overdue]
    held_by = ", ".join(holders[:-1]) + " and " + holders[-1] if len(holders) > 1 else holders[0]
    text = f"overdue at stage {handoff.stage}{sla}: held by {held_by}"
    told = notices_send(
        request=request,
        people=managers_of(handoff, stage=stage),
        kind=Kind.ESCALATION,
        key=f"stage:{stage_visit_key(request=request, handoff=handoff)}:escalate",
        text=text,
        body=f"It was due {_when(handoff.due_at)} and still waits for {held_by}.",
    )
    if not told:
        logger.warning(
            "handoff %s of %s is overdue and has no manager to tell", handoff.pk, request.reference
        )


def _escalate(*, handoff: Handoff, request: ApprovalRequest, stage: Stage | None, action: str) -> bool:
    """Do the stage's overdue action; False when there is nothing to do but tell a manager."""
    if stage is None or action == "notify_manager":
        return False
    reason = f"Stage {stage.name} ran out of time (SLA {duration_text(stage.sla) if stage.sla else 'none'})"
    if action == "reassign":
        target = stage.escalate_to
        if target is None:
            return False
        to_user = User.objects.filter(username=target.user, is_active=True).first() if target.user else None
        to_group = Group.objects.filter(name=target.group).first() if target.group else None
        if to_user is None and to_group is None:
            raise errors.InvalidInput(f"escalation target {target.describe()} does not exist")
        if (to_user is not None and to_user.pk == handoff.assignee_id) or (
            to_group is not None and handoff.assignee_id is None and to_group.pk == handoff.candidate_group_id
        ):
            return False  # already with the target: only a word to the manager is left
        handoff_reassign(
            handoff_id=handoff.pk, actor=SYSTEM, to_user=to_user, to_group=to_group, reason=reason
        )
        return True
    verdict = "approved" if action == "approve" else "rejected"
    transition(
        model=ApprovalRequest,
        instance_id=request.pk,
        name=Action.TIME_OUT,
        actor=SYSTEM,
        comment=f"{reason}; {verdict} automatically, as its policy says.",
        data={"stage": stage.name},
    )
    return True
