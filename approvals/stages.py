"""One request's way through its policy at run time.

Called by ApprovalRequest's workflow hooks with the request's row locked (inside the
transition service's transaction): it reads who may approve a stage and what was decided
so far, and returns a `RoutePlan` that the transition method applies (fields only) and
the effects hook records (decision and revision rows, handoffs, audit data). Nothing
here writes. The simulation and the policy-move report use the same functions, so what
they show is what will happen.

Who fills a stage ("slots"): each named user, each named group (any member may speak for
it) and each manager, one slot apiece; for a quorum, groups are opened up into their
members, because a quorum counts people. The requester is never among them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import Group, Permission
from django.db.models import Q
from django.utils import timezone

from accounts.models import TeamMembership, User
from approvals.routing import (
    Policy,
    Route,
    RouteStep,
    Stage,
    Tally,
    condition_explain,
    condition_holds,
    stage_outcome,
)
from workflows import errors
from workflows.models import Handoff, HandoffSpec
from workflows.permissions import holds_handoff

if TYPE_CHECKING:
    from approvals.models import ApprovalRequest, Decision

DECIDE_PERMISSION = ("approvals", "decide_approvalrequest")
CHANGES_STAGE = "changes"
# The slots of a stage handed to its escalation target start with this: the stand-in
# decides the stage alone (see stand_in_rule), whatever its rule asked of the approvers.
STAND_IN = "stand-in:"


@dataclass(frozen=True)
class Slot:
    """One place to fill in a stage: a person ('user:7') or a group ('group:3')."""

    key: str
    user: User | None = None
    group: Group | None = None

    @property
    def label(self) -> str:
        if self.user is not None:
            return self.user.display_name
        return f"group {self.group}"


@dataclass
class StageEntry:
    """Where a request lands when it (re-)enters its route at some stage."""

    index: int | None  # None: past the last stage, i.e. approved
    slots: list[Slot] = field(default_factory=list)  # every slot of the stage
    waiting: list[Slot] = field(default_factory=list)  # those still to decide: their handoffs open
    skipped: list[dict[str, str]] = field(default_factory=list)
    met: list[str] = field(default_factory=list)
    failed: bool = False
    note: str = ""


@dataclass(frozen=True)
class DecisionSpec:
    stage_index: int
    stage_name: str
    outcome: str
    slot: str


@dataclass(frozen=True)
class RevisionSpec:
    number: int
    title: str
    description: str
    payload: dict[str, Any]
    diff: list[dict[str, Any]]


@dataclass
class RoutePlan:
    """What one lifecycle action does to a request's route (see the module docstring)."""

    target: str
    policy_version_id: int | None
    stage_index: int | None
    stage_slots: list[str]
    close: list[Handoff] = field(default_factory=list)
    open: list[HandoffSpec] = field(default_factory=list)
    decision: DecisionSpec | None = None
    revision: RevisionSpec | None = None
    audit: dict[str, Any] = field(default_factory=dict)


# --- who may approve a stage -------------------------------------------------------------


def users_who_may_decide(user_ids: Iterable[int]) -> set[int]:
    """Of these active users, those holding the decide permission (own, group, superuser)."""
    ids = set(user_ids)
    if not ids:
        return set()
    app_label, codename = DECIDE_PERMISSION
    permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    query = Q(is_superuser=True)
    if permission is not None:
        query |= Q(user_permissions=permission) | Q(groups__permissions=permission)
    return set(User.objects.filter(query, pk__in=ids, is_active=True).values_list("pk", flat=True).distinct())


def _team_managers(requester: User) -> list[User]:
    teams = TeamMembership.objects.filter(user=requester).values("team_id")
    memberships = (
        TeamMembership.objects.filter(team_id__in=teams, is_manager=True)
        .exclude(user=requester)
        .select_related("user")
        .order_by("user__username")
    )
    return [m.user for m in memberships]


def stage_slots(stage: Stage, *, requester: User) -> list[Slot]:
    """The slots of `stage` for a request by `requester`: active people who may decide
    (never the requester) and the named groups."""
    people: list[User] = []
    if stage.approvers.users:
        by_name = {
            u.username: u for u in User.objects.filter(username__in=stage.approvers.users, is_active=True)
        }
        people += [by_name[name] for name in stage.approvers.users if name in by_name]
    if stage.approvers.requester_manager and requester.manager_id is not None:
        manager = User.objects.filter(pk=requester.manager_id, is_active=True).first()
        if manager is not None:
            people.append(manager)
    if stage.approvers.team_manager:
        people += _team_managers(requester)
    groups = list(Group.objects.filter(name__in=stage.approvers.groups)) if stage.approvers.groups else []
    groups.sort(key=lambda g: stage.approvers.groups.index(g.name))
    members_by_group: dict[int, list[User]] = {g.pk: [] for g in groups}
    if groups and stage.rule == "quorum":
        # Only a quorum counts people: other rules give each group one place, whoever is in it.
        memberships = (
            User.groups.through.objects.filter(group_id__in=members_by_group, user__is_active=True)
            .exclude(user_id=requester.pk)
            .select_related("user")
        )
        for membership in memberships:
            members_by_group[membership.group_id].append(membership.user)
    everyone = {p.pk for p in people} | {m.pk for ms in members_by_group.values() for m in ms}
    deciders = users_who_may_decide(everyone)

    slots: list[Slot] = []
    seen: set[str] = set()

    def add(slot: Slot) -> None:
        if slot.key not in seen:
            seen.add(slot.key)
            slots.append(slot)

    for person in people:
        if person.pk != requester.pk and person.pk in deciders:
            add(Slot(key=f"user:{person.pk}", user=person))
    for group in groups:
        members = sorted(
            (m for m in members_by_group[group.pk] if m.pk in deciders), key=lambda m: m.username
        )
        if stage.rule == "quorum":
            for member in members:
                add(Slot(key=f"user:{member.pk}", user=member))
        else:
            # A group's place stands even while it has nobody who may decide: people join
            # groups while requests wait, and the stage's SLA escalates meanwhile.
            add(Slot(key=f"group:{group.pk}", group=group))
    return slots


def escalation_slots(stage: Stage, *, requester: User) -> list[Slot]:
    """The stand-in for a stage nobody (or too few) could approve: its escalation target."""
    target = stage.escalate_to
    if target is None:
        return []
    if target.user:
        user = User.objects.filter(username=target.user, is_active=True).exclude(pk=requester.pk).first()
        return [Slot(key=f"{STAND_IN}user:{user.pk}", user=user)] if user is not None else []
    group = Group.objects.filter(name=target.group).first()
    return [Slot(key=f"{STAND_IN}group:{group.pk}", group=group)] if group is not None else []


def stand_in_rule(stage: Stage, slot_keys: Iterable[str]) -> Stage:
    """The rule a stage is decided by: its own, or 'any one' when its escalation target
    stands in. A stand-in is one person or one group: a quorum of 3 handed to them
    could otherwise never be met, and their approval would count as a failure."""
    if any(key.startswith(STAND_IN) for key in slot_keys):
        return dataclasses.replace(stage, rule="any", quorum=None)
    return stage


def _handoff_specs(stage: Stage, slots: list[Slot]) -> list[HandoffSpec]:
    due_at = timezone.now() + stage.sla if stage.sla is not None else None
    return [
        HandoffSpec(user=s.user, group=s.group, stage=stage.name, slot=s.key, due_at=due_at) for s in slots
    ]


# --- what was decided ----------------------------------------------------------------------


def _decisions(request: ApprovalRequest, *, policy: Policy, revision: int) -> dict[str, list[Decision]]:
    """Decisions that count in `revision`, by stage name: its own, and with carry-over the
    approvals of earlier revisions."""
    from approvals.models import Decision

    by_stage: dict[str, list[Decision]] = {}
    if revision > request.revision and not policy.carry_over_approvals:
        return by_stage  # a revision being made now has no decisions yet
    query = Q(revision=revision)
    if policy.carry_over_approvals:
        query |= Q(revision__lt=revision, outcome="approve")
    for decision in Decision.objects.filter(query, request=request).order_by("id"):
        by_stage.setdefault(decision.stage_name, []).append(decision)
    return by_stage


def deciders_this_revision(request: ApprovalRequest, *, stage_name: str | None = None) -> set[int]:
    """Everyone who took part in a decision that counts in the current revision (as actor
    or principal): its own decisions and, where the policy carries approvals over, those."""
    from approvals.models import Decision

    counts = Q(revision=request.revision)
    policy = request.policy
    if policy is not None and policy.carry_over_approvals:
        counts |= Q(revision__lt=request.revision, outcome="approve")
    query = Decision.objects.filter(counts, request=request)
    if stage_name is not None:
        query = query.filter(stage_name=stage_name)
    found: set[int] = set()
    for actor_id, principal_id in query.values_list("actor_id", "principal_id"):
        found.update(i for i in (actor_id, principal_id) if i is not None)
    return found


def _undecided(slots: Iterable[Slot], *, decided: set[int], requester_id: int) -> int:
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


def _tally(decisions: list[Decision], *, slots: list[str], undecided: int) -> Tally:
    approvals = [d for d in decisions if d.outcome == "approve"]
    return Tally(
        slots=frozenset(slots),
        approved_slots=frozenset(d.slot for d in approvals),
        approvals=len({d.principal_id for d in approvals}),
        rejections=len({d.principal_id for d in decisions if d.outcome == "reject"}),
        undecided=undecided,
    )


# --- entering the route --------------------------------------------------------------------


def route_enter(
    *,
    request: ApprovalRequest,
    policy: Policy,
    payload: Mapping[str, Any],
    revision: int,
    start: int = 0,
    deciding: Decision | None = None,
) -> StageEntry:
    """Walk from stage `start`: skip stages whose condition is false, pass stages already
    met by decisions that count, and stop at the first stage that needs someone.

    Raises InvalidInput when that stage has nobody who could approve it and no escalation
    target (e.g. the requester has no manager): better a clear refusal than a request
    waiting for no one.
    """
    requester = request.requester
    counted = _decisions(request, policy=policy, revision=revision)
    if deciding is not None:  # the decision being taken now, not yet written
        counted.setdefault(deciding.stage_name, []).append(deciding)
    entry = StageEntry(index=None)
    for index in range(start, len(policy.stages)):
        stage = policy.stages[index]
        if not condition_holds(stage.condition, payload):
            assert stage.condition is not None
            entry.skipped.append({"stage": stage.name, "reason": condition_explain(stage.condition, payload)})
            continue
        slots = stage_slots(stage, requester=requester)
        if policy.one_decision_per_person:
            # Whoever already decided in another stage cannot decide again: their place
            # here would wait for ever.
            spoke = {
                person
                for name, made in counted.items()
                if name != stage.name
                for d in made
                for person in (d.principal_id, d.actor_id)
            }
            slots = [s for s in slots if s.user is None or s.user.pk not in spoke]
        if not slots or (stage.rule == "quorum" and stage.quorum and len(slots) < stage.quorum):
            stand_in = escalation_slots(stage, requester=requester)
            if not stand_in:
                message = (
                    f"Stage '{stage.name}' of the {request.request_type} policy has nobody who could "
                    f"approve it for this request ({stage.approvers.describe()}). "
                    "Ask an administrator to fix the policy or the people it names."
                )
                raise errors.InvalidInput(message, field_errors={"request_type": [message]})
            entry.note = (
                f"nobody could approve stage '{stage.name}'; handed to {stage.escalate_to.describe()}"  # type: ignore[union-attr]
            )
            slots = stand_in
        decisions = counted.get(stage.name, [])
        if decisions:
            decided = {d.principal_id for d in decisions} | {d.actor_id for d in decisions}
            tally = _tally(
                decisions,
                slots=[s.key for s in slots],
                undecided=_undecided(slots, decided=decided, requester_id=requester.pk),
            )
            outcome = stage_outcome(stand_in_rule(stage, [s.key for s in slots]), tally)
            if outcome == "met":
                entry.met.append(stage.name)
                continue
            if outcome == "failed":
                entry.index, entry.slots, entry.failed = index, slots, True
                return entry
            entry.index, entry.slots = index, slots
            entry.waiting = [
                s
                for s in slots
                if s.key not in tally.approved_slots and not (s.user is not None and s.user.pk in decided)
            ]
            return entry
        entry.index, entry.slots, entry.waiting = index, slots, slots
        return entry
    return entry


def _entry_plan(
    *,
    entry: StageEntry,
    policy: Policy,
    version_id: int,
    in_review: str,
    approved: str,
    rejected: str,
) -> RoutePlan:
    if entry.index is None:
        plan = RoutePlan(target=approved, policy_version_id=version_id, stage_index=None, stage_slots=[])
    elif entry.failed:
        plan = RoutePlan(target=rejected, policy_version_id=version_id, stage_index=None, stage_slots=[])
    else:
        stage = policy.stages[entry.index]
        plan = RoutePlan(
            target=in_review,
            policy_version_id=version_id,
            stage_index=entry.index,
            stage_slots=[s.key for s in entry.slots],
            open=_handoff_specs(stage, entry.waiting),
        )
    route: dict[str, Any] = {"to": policy.stages[entry.index].name if entry.index is not None else None}
    if entry.skipped:
        route["skipped"] = entry.skipped
    if entry.met:
        route["met"] = entry.met
    if entry.note:
        route["note"] = entry.note
    plan.audit["route"] = route
    return plan


# --- simulation ------------------------------------------------------------------------------


def route_simulate(*, policy: Policy, payload: Mapping[str, Any], requester: User) -> Route:
    """The route a request with `payload` by `requester` would take under `policy`, with
    the people each stage would go to and why stages would be skipped. Reads only."""
    steps = []
    for index, stage in enumerate(policy.stages):
        if not condition_holds(stage.condition, payload):
            assert stage.condition is not None
            steps.append(
                RouteStep(
                    index=index,
                    stage=stage,
                    applies=False,
                    reason=condition_explain(stage.condition, payload),
                )
            )
            continue
        slots = stage_slots(stage, requester=requester)
        problem = ""
        if not slots or (stage.rule == "quorum" and stage.quorum and len(slots) < stage.quorum):
            stand_in = escalation_slots(stage, requester=requester)
            problem = (
                f"not enough approvers; handed to {stage.escalate_to.describe()}"  # type: ignore[union-attr]
                if stand_in
                else "nobody could approve this stage: submitting would be refused"
            )
            slots = stand_in
        steps.append(
            RouteStep(
                index=index,
                stage=stage,
                applies=True,
                reason="",
                approvers=tuple(s.label for s in slots),
                problem=problem,
            )
        )
    return Route(steps=tuple(steps))


# --- plans for each lifecycle action ------------------------------------------------------


def plan_submit(
    *,
    request: ApprovalRequest,
    policy: Policy,
    version_id: int,
    payload: Mapping[str, Any],
    revision: int,
    states: Mapping[str, str],
    open_handoffs: list[Handoff],
) -> RoutePlan:
    """Submission (or resubmission as `revision`): route from the first stage with `payload`."""
    entry = route_enter(request=request, policy=policy, payload=payload, revision=revision)
    if entry.failed:
        # Only approvals carried over count at (re)submission; a stage they leave out of
        # reach (its people already spoke for someone else) is no verdict on the request.
        assert entry.index is not None
        name = policy.stages[entry.index].name
        message = (
            f"Stage '{name}' of the {request.request_type} policy can no longer be met by the people "
            "left to decide it. Ask an administrator."
        )
        raise errors.TransitionNotAllowed(message)
    plan = _entry_plan(entry=entry, policy=policy, version_id=version_id, **_targets(states))
    plan.close = list(open_handoffs)
    return plan


def _targets(states: Mapping[str, str]) -> dict[str, str]:
    return {"in_review": states["in_review"], "approved": states["approved"], "rejected": states["rejected"]}


def through_handoff(*, principal: User, open_handoffs: list[Handoff]) -> Handoff | None:
    """The open handoff `principal` decides through: their own before their group's."""
    held = [h for h in open_handoffs if holds_handoff(user=principal, handoff=h)]
    held.sort(key=lambda h: (h.assignee_id != principal.pk or h.candidate_group_id is not None, h.pk))
    return held[0] if held else None


def plan_decision(
    *,
    request: ApprovalRequest,
    policy: Policy,
    outcome: str,
    actor: User,
    principal: User,
    open_handoffs: list[Handoff],
    states: Mapping[str, str],
) -> RoutePlan:
    """An approver's approve / reject / request changes in the current stage.

    Precondition: `principal` holds an open handoff of the request (the permission check).
    """
    assert request.stage_index is not None
    assert request.policy_version_id is not None
    stage = policy.stages[request.stage_index]
    through = through_handoff(principal=principal, open_handoffs=open_handoffs)
    if through is None:
        raise errors.Forbidden("This request is not waiting for you.")
    decision = DecisionSpec(
        stage_index=request.stage_index, stage_name=stage.name, outcome=outcome, slot=through.slot
    )
    audit: dict[str, Any] = {
        "decision": {
            "stage": stage.name,
            "outcome": outcome,
            "revision": request.revision,
            "slot": through.slot,
        }
    }
    if outcome == "request_changes":
        plan = RoutePlan(
            target=states["changes_requested"],
            policy_version_id=request.policy_version_id,
            stage_index=None,
            stage_slots=[],
            close=list(open_handoffs),
            open=[HandoffSpec(user=request.requester, stage=CHANGES_STAGE, slot="requester")],
            decision=decision,
            audit=audit,
        )
        return plan

    from approvals.models import Decision

    this_one = Decision(
        principal_id=principal.pk,
        actor_id=actor.pk,
        outcome=outcome,
        slot=through.slot,
        stage_name=stage.name,
    )
    counted = _decisions(request, policy=policy, revision=request.revision)
    decisions = [*counted.get(stage.name, []), this_one]
    decided = {d.principal_id for d in decisions} | {d.actor_id for d in decisions}
    remaining = [h for h in open_handoffs if h.pk != through.pk]
    tally = _tally(
        decisions,
        slots=list(request.stage_slots),
        undecided=_undecided(
            [
                Slot(key=h.slot, user=h.assignee, group=None if h.assignee_id else h.candidate_group)
                for h in remaining
            ]
            + ([Slot(key=through.slot, group=through.candidate_group)] if through.candidate_group_id else []),
            decided=decided,
            requester_id=request.requester_id,
        ),
    )
    result = stage_outcome(stand_in_rule(stage, request.stage_slots), tally)
    if outcome == "approve" and result == "failed":
        # Too few people left to reach the quorum (e.g. a delegate who speaks for someone
        # cannot also speak for themselves): an approval must never reject the request.
        raise errors.TransitionNotAllowed(
            f"Stage '{stage.name}' could not be met after this approval: it needs {stage.needed} "
            f"approvals and only {tally.approvals + tally.undecided} people could give them. "
            "Decide for yourself, or ask an administrator."
        )
    audit["decision"]["stage_outcome"] = result
    if result == "met":
        entry = route_enter(
            request=request,
            policy=policy,
            payload=request.payload,
            revision=request.revision,
            start=request.stage_index + 1,
            deciding=this_one,
        )
        plan = _entry_plan(
            entry=entry, policy=policy, version_id=request.policy_version_id, **_targets(states)
        )
        plan.audit = {**audit, "route": {"from": stage.name, **plan.audit["route"]}}
        plan.close = list(open_handoffs)
    elif result == "failed":
        plan = RoutePlan(
            target=states["rejected"],
            policy_version_id=request.policy_version_id,
            stage_index=None,
            stage_slots=[],
            close=list(open_handoffs),
            audit=audit,
        )
    else:
        plan = RoutePlan(
            target=states["in_review"],
            policy_version_id=request.policy_version_id,
            stage_index=request.stage_index,
            stage_slots=list(request.stage_slots),
            close=[through],
            audit=audit,
        )
        if outcome == "reject" and through.candidate_group_id is not None:
            # A group's place stays open for its other members: a dissent is not a veto here.
            plan.open.append(
                HandoffSpec(
                    group=through.candidate_group, stage=stage.name, slot=through.slot, due_at=through.due_at
                )
            )
    plan.decision = decision
    return plan


def plan_close(*, request: ApprovalRequest, target: str, open_handoffs: list[Handoff]) -> RoutePlan:
    """Withdraw or cancel: every open handoff closes, the route ends."""
    return RoutePlan(
        target=target,
        policy_version_id=request.policy_version_id,
        stage_index=None,
        stage_slots=[],
        close=list(open_handoffs),
    )


def plan_move(
    *,
    request: ApprovalRequest,
    policy: Policy,
    version_id: int,
    states: Mapping[str, str],
    open_handoffs: list[Handoff],
) -> RoutePlan:
    """Move an in-flight request to another policy version.

    In review, it re-enters the new route from the start; decisions of this revision
    count again for stages of the same name. Waiting for changes, only the version
    changes (it is routed from the start when resubmitted anyway).
    """
    if request.state == states["changes_requested"]:
        return RoutePlan(
            target=states["changes_requested"],
            policy_version_id=version_id,
            stage_index=None,
            stage_slots=[],
            audit={"policy": {"from": request.policy_version_id, "to": version_id}},
        )
    entry = route_enter(request=request, policy=policy, payload=request.payload, revision=request.revision)
    plan = _entry_plan(entry=entry, policy=policy, version_id=version_id, **_targets(states))
    plan.close = list(open_handoffs)
    plan.audit["policy"] = {"from": request.policy_version_id, "to": version_id}
    return plan
