"""Reassigning requests: one or many items handed to a person or a group, with a reason.

Each item goes through the engine's `handoff_reassign` (its own transaction: the item's
row locked, its handoff closed as 'reassigned' and its successor opened, an audit entry,
live events to the old and new holders). A batch is a list of such changes, each with
its own result: one item failing (closed meanwhile, handed to its own requester) leaves
the others done and says why it failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.contenttypes.models import ContentType

from approvals import policies
from approvals.models import ApprovalRequest
from workflows import errors
from workflows.models import Handoff
from workflows.services import handoff_reassign, reassign_input_check

if TYPE_CHECKING:
    from collections.abc import Sequence

    from django.contrib.auth.models import Group

    from accounts.models import User

REASON_MAX = 5000  # as long as a comment may be: the reason is the audit entry's comment


@dataclass(frozen=True)
class ReassignResult:
    """What became of one item: its new handoff, or the error that left it as it was."""

    handoff_id: int
    request: ApprovalRequest | None = None
    successor: Handoff | None = None
    error: errors.WorkflowError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def problem(self) -> str:
        """Why it failed, in a sentence (a field error's own words where it names one)."""
        if self.error is None:
            return ""
        messages = [m for ms in self.error.field_errors.values() for m in ms]
        return " ".join(messages) if messages else self.error.detail


def requests_reassign(
    *,
    actor: User,
    handoff_ids: Sequence[int],
    reason: str,
    to_user: User | None = None,
    to_group: Group | None = None,
) -> list[ReassignResult]:
    """Hand each open handoff in `handoff_ids` (of approval requests) to `to_user` and/or
    `to_group`, saying `reason`; one result per item, in the order given.

    Preconditions checked once, before any item (InvalidInput naming the field: reason,
    to_user, handoffs): a reason of at most REASON_MAX characters, an active person or a
    group, at least one item. Then per
    item, each on its own: NotFound when it is not a request's handoff `actor` may see,
    and the engine's refusals (Forbidden: not a manager or the item's holder;
    TransitionNotAllowed: closed meanwhile; InvalidInput: e.g. handed to its requester).
    Side effects, per item that succeeds: see workflows.services.handoff_reassign.
    """
    if len(reason) > REASON_MAX:
        message = f"At most {REASON_MAX} characters (got {len(reason)})."
        raise errors.InvalidInput("The reason is too long.", field_errors={"reason": [message]})
    reassign_input_check(to_user=to_user, to_group=to_group, reason=reason)
    ids = list(dict.fromkeys(handoff_ids))
    if not ids:
        raise errors.InvalidInput(
            "Nothing to reassign.", field_errors={"handoffs": ["Choose at least one item to reassign."]}
        )
    content_type = ContentType.objects.get_for_model(ApprovalRequest)
    handoffs = Handoff.objects.filter(pk__in=ids, content_type=content_type).in_bulk()
    requests_by_id = ApprovalRequest.objects.in_bulk(
        [int(h.object_id) for h in handoffs.values() if h.object_id.isdigit()]
    )
    results = []
    for handoff_id in ids:
        handoff = handoffs.get(handoff_id)
        request = requests_by_id.get(int(handoff.object_id)) if handoff is not None else None
        if request is None or not policies.may_view(request, actor):
            missing = errors.NotFound(f"Item {handoff_id} does not exist, or is not yours to see.")
            results.append(ReassignResult(handoff_id=handoff_id, error=missing))
            continue
        try:
            successor = handoff_reassign(
                handoff_id=handoff_id, actor=actor, to_user=to_user, to_group=to_group, reason=reason.strip()
            )
        except errors.NotFound as exc:
            results.append(ReassignResult(handoff_id=handoff_id, error=exc))
        except errors.WorkflowError as exc:
            results.append(ReassignResult(handoff_id=handoff_id, request=request, error=exc))
        else:
            results.append(ReassignResult(handoff_id=handoff_id, request=request, successor=successor))
    return results
