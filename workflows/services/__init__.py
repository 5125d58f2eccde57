"""THE way any workflow state changes: transitions, creation and handoff changes.

Every function here runs in one database transaction that locks the instance row, so
a change, its handoffs, its audit entry and its outbox events commit together or not at
all. Views, API, tasks, commands and the admin call these functions; none of them set
`state`, a handoff or the audit trail themselves.

    transition.py   transition(): lock, check, act, record (the path of every action)
    creation.py     instance_create(): a new instance, optionally with its first action
    handoffs.py     handoff_claim(), handoff_unclaim(), handoff_reassign(), reassign_input_check()
    notes.py        instance_note(): a comment or an attachment on the record, state unchanged
    snooze.py       handoff_snooze(): its holder puts an item aside until a follow-up time
    common.py       the system actor, the row lock, handoffs opened and closed, live events
    idempotency.py  keys that make a retried transition replay its first result
"""

from workflows.services.common import (
    SYSTEM,
    SystemActor,
    TransitionResult,
    actor_ref,
    field_values,
    fields_to_save,
    instance_channel_group,
)
from workflows.services.creation import instance_create
from workflows.services.handoffs import (
    handoff_claim,
    handoff_reassign,
    handoff_unclaim,
    reassign_input_check,
)
from workflows.services.notes import instance_note
from workflows.services.snooze import handoff_snooze
from workflows.services.transition import transition

__all__ = [
    "SYSTEM",
    "SystemActor",
    "TransitionResult",
    "actor_ref",
    "field_values",
    "fields_to_save",
    "handoff_claim",
    "handoff_reassign",
    "handoff_snooze",
    "handoff_unclaim",
    "instance_channel_group",
    "instance_create",
    "instance_note",
    "reassign_input_check",
    "transition",
]
