"""Why a person can take no action on a request now: one sentence naming the failed check.

The request page shows it where no button is offered; the API answers it beside a
refused action. Both read it from `request_why_not`, so the two never disagree. The
checks are the lifecycle's own (approvals.lifecycle.decide, .work): this module only
picks, among them, the one that explains this person's situation, and adds what only
the holders can tell (someone else claimed it, a delegation has ended).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Q
from django.utils import timezone

from accounts.models import Delegation
from approvals.actions import DECISIONS, TASK_ACTIONS, Action
from approvals.lifecycle.base import ActionOption, RequestFacts, RequestStep, distinct_from_refusal
from approvals.lifecycle.decide import DECIDE_PERMISSION, already_decided
from approvals.models import ApprovalRequest, State
from workflows.definition import Step
from workflows.permissions import user_group_ids

if TYPE_CHECKING:
    from collections.abc import Sequence

    from accounts.models import User
    from workflows.models import Handoff


class WhyNot:
    """The names of the checks (stable: the API reports them as `code`)."""

    INACTIVE = "inactive"
    CLOSED = "closed"
    DRAFT = "draft"
    WITH_REQUESTER = "with_requester"
    OWN_REQUEST = "own_request"
    NOT_APPROVER = "not_approver"
    ALREADY_DECIDED = "already_decided"
    SEPARATION_OF_DUTIES = "separation_of_duties"
    CLAIMED_BY_OTHER = "claimed_by_other"
    DELEGATION_ENDED = "delegation_ended"
    NOT_YOUR_STAGE = "not_your_stage"


@dataclass(frozen=True)
class Explanation:
    code: str
    message: str


def _holders(handoffs: Sequence[Handoff]) -> str:
    labels = sorted({h.holder_label() for h in handoffs})
    return ", ".join(labels) if labels else "nobody"


def _delegation_ended(*, user: User, holders: set[int]) -> Explanation | None:
    """The latest delegation to `user` from someone who holds the request now, if it has
    ended (expired or revoked): the person expected to act for them and no longer may."""
    if not holders:
        return None
    now = timezone.now()
    ended = (
        Delegation.objects.filter(delegate=user, delegator_id__in=holders)
        .filter(Q(revoked_at__lte=now) | Q(ends_at__lte=now))
        .select_related("delegator")
        .order_by("-id")
        .first()
    )
    if ended is None or Delegation.objects.active().filter(delegate=user, delegator_id__in=holders).exists():
        return None
    when = min(t for t in (ended.revoked_at, ended.ends_at) if t is not None)
    verb = "was revoked" if ended.revoked_at is not None and ended.revoked_at == when else "ended"
    return Explanation(
        WhyNot.DELEGATION_ENDED,
        f"Your delegation from {ended.delegator} {verb} on {timezone.localtime(when):%d %b %Y %H:%M}; "
        "you no longer act for them.",
    )


def request_why_not(
    *,
    request: ApprovalRequest,
    user: User,
    open_handoffs: list[Handoff],
    options: Sequence[ActionOption],
    facts: RequestFacts | None = None,
) -> Explanation | None:
    """Why `user` can take none of the actions of `request` now, or None when they can
    take one. `options` are the request's action options for `user`
    (approvals.lifecycle.action_options); reads at most two more queries (delegations)."""
    if any(o.allowed for o in options):
        return None
    if not user.is_active:
        return Explanation(WhyNot.INACTIVE, "Your account is not active.")
    state = request.get_state_display().lower()
    if not request.is_open:
        return Explanation(
            WhyNot.CLOSED, f"{request.reference} is {state}: it is closed, nothing more can be done."
        )
    if request.state == State.DRAFT:
        return Explanation(WhyNot.DRAFT, f"It is a draft: only {request.requester} can submit it.")
    if request.state == State.CHANGES_REQUESTED:
        return Explanation(
            WhyNot.WITH_REQUESTER,
            f"It is back with {request.requester} for changes; nothing waits for you until they resubmit.",
        )
    stage = request.current_stage
    where = (
        f"in stage {stage.name} for {_holders(open_handoffs)}" if stage else f"for {_holders(open_handoffs)}"
    )
    waiting = f"It waits {where}"
    if request.requester_id == user.pk:
        return Explanation(WhyNot.OWN_REQUEST, f"You requested it; it waits {where}.")
    step: RequestStep = Step(
        instance=request,
        name=Action.APPROVE,
        actor=user,
        principal=user,
        facts=facts or RequestFacts(open_handoffs=open_handoffs, request=request),
    )
    kinds = {o.action for o in options}
    # Their say, once given, closes their item: nothing else explains as well why they wait.
    if kinds & set(DECISIONS) and already_decided(step):
        return Explanation(WhyNot.ALREADY_DECIDED, "You have already decided on this request.")
    groups = user_group_ids(user)
    mine = [h for h in open_handoffs if h.assignee_id == user.pk]
    offered = [h for h in open_handoffs if h.candidate_group_id in groups]
    if not mine and offered and all(h.assignee_id not in (None, user.pk) for h in offered):
        taken = offered[0]
        return Explanation(
            WhyNot.CLAIMED_BY_OTHER,
            f"{taken.assignee} claimed it from {taken.candidate_group}; "
            "ask them or a manager to release it to the group.",
        )
    if not mine and not offered:
        holders = {h.assignee_id for h in open_handoffs if h.assignee_id is not None}
        return _delegation_ended(user=user, holders=holders) or Explanation(
            WhyNot.NOT_YOUR_STAGE, f"{waiting}; not for you."
        )
    # The person holds it: one of the lifecycle's own checks refused them.
    if stage is not None and (refusal := distinct_from_refusal(step, stage=stage, person=user)):
        return Explanation(WhyNot.SEPARATION_OF_DUTIES, refusal)
    if kinds & set(DECISIONS) and not user.has_perm(DECIDE_PERMISSION):
        return Explanation(WhyNot.NOT_APPROVER, "You hold it, but you are not an approver.")
    refused = [o for o in options if o.action in (*DECISIONS, *TASK_ACTIONS) and o.reason]
    return Explanation(WhyNot.NOT_YOUR_STAGE, refused[0].reason if refused else f"{waiting}; not for you.")
