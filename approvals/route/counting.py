"""What was decided in a request's stages, from its decisions as read once per step."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from accounts.models import User
from approvals.models import ApprovalRequest, Decision
from approvals.route.plan import Slot
from approvals.route.slots import stand_in_rule, users_who_may_decide
from approvals.routing import Outcome, Policy, Stage, Tally, stage_outcome


def decisions_counted(
    decisions: Iterable[Decision], *, request: ApprovalRequest, policy: Policy, revision: int
) -> dict[str, list[Decision]]:
    """Decisions that count in `revision`, by stage name: its own, and with carry-over the
    approvals of earlier revisions. `decisions`: all of the request's, in order."""
    by_stage: dict[str, list[Decision]] = {}
    if revision > request.revision and not policy.carry_over_approvals:
        return by_stage  # a revision being made now has no decisions yet
    for decision in decisions:
        counts = decision.revision == revision or (
            policy.carry_over_approvals and decision.revision < revision and decision.outcome == "approve"
        )
        if counts:
            by_stage.setdefault(decision.stage_name, []).append(decision)
    return by_stage


def deciders_this_revision(
    decisions: Iterable[Decision], *, request: ApprovalRequest, stage_name: str | None = None
) -> set[int]:
    """Everyone who took part in a decision that counts in the current revision (as actor
    or principal): its own decisions and, where the policy carries approvals over, those."""
    policy = request.policy
    carry_over = policy is not None and policy.carry_over_approvals
    found: set[int] = set()
    for d in decisions:
        counts = d.revision == request.revision or (
            carry_over and d.revision < request.revision and d.outcome == "approve"
        )
        if counts and (stage_name is None or d.stage_name == stage_name):
            found.update(i for i in (d.actor_id, d.principal_id) if i is not None)
    return found


def undecided(slots: Iterable[Slot], *, decided: set[int], requester_id: int) -> int:
    """How many people could still decide in these slots."""
    count = 0
    group_ids = []
    for slot in slots:
        if slot.user is not None:
            count += slot.user.pk not in decided
        elif slot.group is not None:
            group_ids.append(slot.group.pk)
    if group_ids:
        members = set(
            User.objects.filter(groups__in=group_ids, is_active=True)
            .exclude(pk=requester_id)
            .values_list("pk", flat=True)
        )
        count += len(users_who_may_decide(members - decided))
    return count


def stage_result(
    stage: Stage, *, decisions: list[Decision], slot_keys: list[str], still_to_decide: Callable[[], int]
) -> tuple[Outcome, Tally]:
    """The stage's outcome under its rule (or its stand-in's) after `decisions`.

    Who could still decide is asked for only when the approvals alone do not settle it
    (it costs a query for groups).
    """
    rule = stand_in_rule(stage, slot_keys)
    approvals = [d for d in decisions if d.outcome == "approve"]
    tally = Tally(
        slots=frozenset(slot_keys),
        approved_slots=frozenset(d.slot for d in approvals),
        approvals=len({d.principal_id for d in approvals}),
        rejections=len({d.principal_id for d in decisions if d.outcome == "reject"}),
    )
    settled = rule.rule == "all" or tally.approvals >= rule.needed
    if not settled:
        tally = Tally(
            slots=tally.slots,
            approved_slots=tally.approved_slots,
            approvals=tally.approvals,
            rejections=tally.rejections,
            undecided=still_to_decide(),
        )
    return stage_outcome(rule, tally), tally
