"""Snoozing: the holder of an item puts it aside until a follow-up time.

The handoff stays open and held (its SLA and timers run on: a snooze is the holder's
note to self, never a way to stop the clock); lists of active work leave it out until
`snoozed_until`, when the timers scan wakes it with a notice (approvals.timers.snooze).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from workflows import errors
from workflows.models import Handoff
from workflows.services.common import recipients_of
from workflows.services.handoffs import _lock_handoff, _record

if TYPE_CHECKING:
    from accounts.models import User

MAX_SNOOZE = timedelta(days=365)


def handoff_snooze(
    *, handoff_id: int, actor: User, until: datetime | None, now: datetime | None = None
) -> Handoff:
    """Put an item aside until `until` (aware; in the future, within MAX_SNOOZE), or wake
    it now (`until` None).

    Only the person it is assigned to may (claim a group's item first). Raises NotFound,
    TransitionNotAllowed (closed), Forbidden (not theirs), InvalidInput naming 'until'.
    Side effects: a 'snooze' audit entry; live events to the holder.
    """
    moment = now or timezone.now()
    if until is not None:
        if timezone.is_naive(until):
            raise errors.InvalidInput(
                "Give a time with its zone.", field_errors={"until": ["Give a full date and time."]}
            )
        if until <= moment:
            message = "Choose a time in the future."
            raise errors.InvalidInput(message, field_errors={"until": [message]})
        if until > moment + MAX_SNOOZE:
            message = f"At most {MAX_SNOOZE.days} days ahead."
            raise errors.InvalidInput(message, field_errors={"until": [message]})
    with transaction.atomic():
        workflow, instance, handoff = _lock_handoff(handoff_id)
        if not handoff.is_open:
            raise errors.TransitionNotAllowed("This item is no longer open.")
        if not actor.is_active or handoff.assignee_id != actor.pk:
            raise errors.Forbidden("Only the person this item is assigned to can snooze it (claim it first).")
        if until is None and handoff.snoozed_until is None:
            return handoff
        handoff.snoozed_until = until
        handoff.save(update_fields=["snoozed_until"])
        _record(
            workflow=workflow,
            instance=instance,
            action="snooze" if until is not None else "wake",
            actor=actor,
            on_behalf_of=None,
            comment="",
            data={"handoff": handoff.pk, "until": until.isoformat() if until else None},
            recipients=recipients_of(handoff),
            trace_id=None,
        )
        return handoff
