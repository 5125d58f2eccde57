"""Random policies, payloads and decision sequences through the real service, and the
invariants that must hold after every step:

- the request is in a legal state, reached along an edge of the lifecycle, and its stage
  index agrees with it (and its open handoffs belong to that stage);
- the stage index never goes backwards without a change request and resubmission;
- nobody has two decisions in one revision (or one stage, where the policy allows more),
  counting who acted and on whose behalf;
- a refused action changed nothing;
- the audit trail has exactly one transition entry per successful action, from the state
  before to the state after, and the trail verifies;
- approved means every stage that was not skipped had its rule met by the decisions that
  count in the final revision (recomputed here with routing.stage_outcome);
- rejected means somebody rejected.

The people and groups are made once; each example publishes a new policy version and
submits a fresh request.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from accounts.models import Delegation, Team, TeamMembership, User
from accounts.roles import APPROVERS, MANAGERS, REQUESTERS
from approvals.diagrams import lifecycle_edges
from approvals.models import ApprovalRequest, Decision, RequestType, State
from approvals.routing import Stage, Tally, condition_holds, stage_outcome
from approvals.services import request_act, request_create
from tests.approvals.policy_world import snapshot
from tests.factories import GroupFactory, RequestTypeFactory, UserFactory, publish_policy
from workflows import errors
from workflows.audit import audit_verify
from workflows.models import AuditEntry, Handoff

KINDS = ["a", "b", "c"]
AMOUNTS = [0, 50, 100, 500, 1000, 1500]
SCHEMA = {
    "type": "object",
    "required": ["amount", "kind"],
    "properties": {"amount": {"type": "integer", "minimum": 0}, "kind": {"type": "string", "enum": KINDS}},
}
APPROVER_NAMES = ["u1", "u2", "u3", "u4", "mgr"]
GROUP_MEMBERS = {"g1": ["u1", "u2"], "g2": ["u3", "u4", "rita"]}  # rita asks, and is in g2
TEAM_MANAGER = "u4"
# delegator -> delegate: u1 speaks for u2, mgr for ... u2 speaks for mgr, u3 for the requester, rita for u4
DELEGATIONS = [("u2", "u1"), ("mgr", "u2"), ("rita", "u3"), ("u4", "rita")]
EVERYONE = ["rita", *APPROVER_NAMES, "olaf"]
LEGAL_EDGES = {(e.source, e.target) for e in lifecycle_edges(ApprovalRequest)} | {("in_review", "in_review")}


@dataclass
class Pool:
    users: dict[str, User]
    groups: dict[str, Any]
    request_type: RequestType


def _make_pool() -> Pool:
    groups = {name: GroupFactory.create(name=name) for name in GROUP_MEMBERS}
    users: dict[str, User] = {}
    users["mgr"] = UserFactory.create(username="mgr", roles=[MANAGERS])
    users["rita"] = UserFactory.create(
        username="rita", roles=[REQUESTERS, APPROVERS], member_of=[groups["g2"]], manager=users["mgr"]
    )
    for name in ("u1", "u2", "u3", "u4"):
        member_of = [groups[g] for g, members in GROUP_MEMBERS.items() if name in members]
        users[name] = UserFactory.create(username=name, roles=[APPROVERS], member_of=member_of)
    users["olaf"] = UserFactory.create(username="olaf")
    team = Team.objects.create(slug="ops", name="Ops")
    TeamMembership.objects.create(team=team, user=users["rita"])
    TeamMembership.objects.create(team=team, user=users[TEAM_MANAGER], is_manager=True)
    for delegator, delegate in DELEGATIONS:
        Delegation.objects.create(delegator=users[delegator], delegate=users[delegate])
    request_type = RequestTypeFactory.create(
        slug="random", payload_schema=SCHEMA, approver_group=groups["g1"]
    )
    return Pool(users=users, groups=groups, request_type=request_type)


# --- what the policy means, worked out here independently of approvals.stages -----------------


def _people(approvers: dict[str, Any]) -> list[str]:
    """Everyone a stage names (groups opened up), never the requester, in a stable order."""
    names = [*approvers.get("users", [])]
    for group in approvers.get("groups", []):
        names += GROUP_MEMBERS[group]
    if approvers.get("requester_manager"):
        names.append("mgr")
    if approvers.get("team_manager"):
        names.append(TEAM_MANAGER)
    return list(dict.fromkeys(n for n in names if n != "rita"))


def _expected_slots(stage: Stage, pool: Pool, *, spoke: frozenset[int] = frozenset()) -> frozenset[str]:
    """The slots a stage should have; `spoke` are people who already decided in another
    stage of the revision, who have no place here when one decision per person is the rule."""
    keys = [f"user:{pool.users[n].pk}" for n in stage.approvers.users if n != "rita"]
    if stage.approvers.requester_manager:
        keys.append(f"user:{pool.users['mgr'].pk}")
    if stage.approvers.team_manager:
        keys.append(f"user:{pool.users[TEAM_MANAGER].pk}")
    for group in stage.approvers.groups:
        if stage.rule == "quorum":
            keys += [f"user:{pool.users[n].pk}" for n in GROUP_MEMBERS[group] if n != "rita"]
        else:
            keys.append(f"group:{pool.groups[group].pk}")
    return frozenset(k for k in keys if not (k.startswith("user:") and int(k[5:]) in spoke))


def _spoke_elsewhere(policy: Any, decisions: list[Decision], stage: Stage) -> frozenset[int]:
    if not policy.one_decision_per_person:
        return frozenset()
    return frozenset(
        person for d in decisions if d.stage_name != stage.name for person in (d.actor_id, d.principal_id)
    )


# --- strategies ----------------------------------------------------------------------------------

amount_leaf = st.builds(
    lambda op, value: {"field": "amount", "op": op, "value": value},
    st.sampled_from(["gt", "gte", "lt", "lte", "eq", "ne"]),
    st.sampled_from(AMOUNTS),
)
kind_leaf = st.one_of(
    st.builds(
        lambda op, value: {"field": "kind", "op": op, "value": value},
        st.sampled_from(["eq", "ne"]),
        st.sampled_from(KINDS),
    ),
    st.builds(
        lambda op, values: {"field": "kind", "op": op, "value": values},
        st.sampled_from(["in", "not_in"]),
        st.lists(st.sampled_from(KINDS), min_size=1, max_size=2, unique=True),
    ),
)
conditions = st.recursive(
    st.one_of(amount_leaf, kind_leaf),
    lambda inner: st.builds(
        lambda kind, items: {kind: items},
        st.sampled_from(["all", "any"]),
        st.lists(inner, min_size=1, max_size=3),
    ),
    max_leaves=4,
)


APPROVER_TOKENS = [*APPROVER_NAMES, "group:g1", "group:g2", "requester_manager", "team_manager"]


@st.composite
def stages(draw: Any, index: int) -> dict[str, Any]:
    # every token names at least one person other than the requester: never an empty stage
    tokens = draw(st.lists(st.sampled_from(APPROVER_TOKENS), min_size=1, max_size=4, unique=True))
    approvers: dict[str, Any] = {}
    users = [t for t in tokens if t in APPROVER_NAMES]
    groups = [t.removeprefix("group:") for t in tokens if t.startswith("group:")]
    if users:
        approvers["users"] = users
    if groups:
        approvers["groups"] = groups
    for flag in ("requester_manager", "team_manager"):
        if flag in tokens:
            approvers[flag] = True
    stage: dict[str, Any] = {"name": f"s{index}", "approvers": approvers}
    rule = draw(st.sampled_from(["any", "all", "quorum"]))
    stage["rule"] = rule
    if rule == "quorum":
        stage["quorum"] = draw(st.integers(min_value=1, max_value=len(_people(approvers))))
    if rule != "all" and draw(st.booleans()):
        stage["veto"] = False
    if draw(st.booleans()):
        stage["when"] = draw(conditions)
    return stage


@st.composite
def policies(draw: Any) -> dict[str, Any]:
    count = draw(st.integers(min_value=1, max_value=4))
    return {
        "options": {
            "one_decision_per_person": draw(st.booleans()),
            "carry_over_approvals": draw(st.booleans()),
        },
        "stages": [draw(stages(i + 1)) for i in range(count)],
    }


payloads = st.fixed_dictionaries({"amount": st.sampled_from(AMOUNTS), "kind": st.sampled_from(KINDS)})
DELEGATE_OF = dict(DELEGATIONS)


def _holders(request: ApprovalRequest, pool: Pool) -> list[str]:
    """The pool's people who hold an open handoff of the request now."""
    names = []
    for handoff in Handoff.objects.for_instance(request).open():
        for name, user in pool.users.items():
            if handoff.assignee_id == user.pk or (
                handoff.assignee_id is None and user.groups.filter(pk=handoff.candidate_group_id).exists()
            ):
                names.append(name)
    return sorted(set(names))


def _next_action(data: st.DataObject, request: ApprovalRequest, pool: Pool) -> tuple[str, str, Any]:
    """One action by someone: mostly by whoever holds the request now (or their delegate),
    sometimes by anyone at all, so that refusals are tried as often as decisions."""
    kind = data.draw(
        st.sampled_from(
            ["approve", "approve", "approve", "reject", "request_changes", "resubmit", "withdraw", "anyone"]
        )
    )
    if kind == "resubmit":
        return "resubmit", data.draw(st.sampled_from(["rita", "rita", "rita", "u1"])), data.draw(payloads)
    if kind == "withdraw":
        return "withdraw", data.draw(st.sampled_from(["rita", "u1"])), None
    if kind == "anyone":
        action = data.draw(st.sampled_from(["approve", "reject", "request_changes"]))
        return action, data.draw(st.sampled_from(EVERYONE)), data.draw(st.none() | st.sampled_from(EVERYONE))
    holders = _holders(request, pool) or EVERYONE
    principal = data.draw(st.sampled_from(holders))
    if principal in DELEGATE_OF and data.draw(st.booleans()):
        return kind, DELEGATE_OF[principal], principal
    return kind, principal, None


# --- the checks ------------------------------------------------------------------------------------


def _counted(request: ApprovalRequest, *, carry_over: bool) -> list[Decision]:
    """The decisions that count in the request's current revision."""
    found = Decision.objects.filter(request=request).order_by("id")
    return [
        d
        for d in found
        if d.revision == request.revision
        or (carry_over and d.revision < request.revision and d.outcome == "approve")
    ]


def _check_state(request: ApprovalRequest) -> None:
    policy = request.policy
    assert policy is not None
    assert request.state in State.values
    open_handoffs = list(Handoff.objects.for_instance(request).open())
    if request.state == State.IN_REVIEW:
        assert request.stage_index is not None
        assert 0 <= request.stage_index < len(policy.stages)
        stage = policy.stages[request.stage_index]
        assert condition_holds(stage.condition, request.payload), (
            "waiting in a stage whose condition is false"
        )
        assert all(h.stage == stage.name for h in open_handoffs)
        counted = _counted(request, carry_over=policy.carry_over_approvals)
        spoke = _spoke_elsewhere(policy, counted, stage)
        assert set(request.stage_slots) == set(_expected_slots(stage, _POOL[0], spoke=spoke))
    else:
        assert request.stage_index is None
        assert request.stage_slots == []
    if request.state == State.CHANGES_REQUESTED:
        assert [(h.stage, h.assignee_id) for h in open_handoffs] == [("changes", request.requester_id)]
    if request.state in {State.APPROVED, State.REJECTED, State.WITHDRAWN}:
        assert open_handoffs == []


def _check_once(request: ApprovalRequest, *, once_per_request: bool, carry_over: bool) -> None:
    """Nobody takes part in two counted decisions of one revision (or of one stage)."""
    for revision in range(1, request.revision + 1):
        counted = [
            d
            for d in Decision.objects.filter(request=request)
            if d.revision == revision or (carry_over and d.revision < revision and d.outcome == "approve")
        ]
        involved: Counter[tuple[str, int]] = Counter()
        for d in counted:
            scope = "" if once_per_request else d.stage_name
            for person in {d.actor_id, d.principal_id}:
                involved[(scope, person)] += 1
        twice = [key for key, n in involved.items() if n > 1]
        assert not twice, f"revision {revision}: someone decided twice: {twice}"
    assert not Decision.objects.filter(request=request, principal_id=request.requester_id).exists()
    assert not Decision.objects.filter(request=request, actor_id=request.requester_id).exists()


def _check_approved(request: ApprovalRequest, pool: Pool, *, carry_over: bool) -> None:
    policy = request.policy
    assert policy is not None
    counted = _counted(request, carry_over=carry_over)
    for stage in policy.stages:
        if not condition_holds(stage.condition, request.payload):
            continue
        mine = [d for d in counted if d.stage_name == stage.name]
        approvals = [d for d in mine if d.outcome == "approve"]
        tally = Tally(
            slots=_expected_slots(stage, pool, spoke=_spoke_elsewhere(policy, counted, stage)),
            approved_slots=frozenset(d.slot for d in approvals),
            approvals=len({d.principal_id for d in approvals}),
            rejections=len({d.principal_id for d in mine if d.outcome == "reject"}),
            undecided=0,
        )
        assert stage_outcome(stage, tally) == "met", f"approved, but stage {stage.name} was not met: {tally}"


_POOL: list[Pool] = []


def _run(
    pool: Pool, document: dict[str, Any], payload: dict[str, Any], steps: int, data: st.DataObject
) -> None:
    users = pool.users
    version = publish_policy(request_type=pool.request_type, document=document)
    once_per_request = document["options"]["one_decision_per_person"]
    carry_over = document["options"]["carry_over_approvals"]
    request = request_create(
        requester=users["rita"], request_type=pool.request_type, title="Random", payload=payload
    )
    assert request.policy_version_id == version.pk
    entries = list(AuditEntry.objects.for_instance(request).order_by("seq"))
    assert [e.action for e in entries] == ["create", "submit"]
    assert (entries[1].source, entries[1].target) == ("draft", request.state)
    _check_state(request)
    last_revision, last_index = request.revision, request.stage_index

    for _ in range(steps):
        action, who, extra = _next_action(data, request, pool)
        before = snapshot(request)
        source = request.state
        kwargs: dict[str, Any] = {}
        if action == "resubmit":
            kwargs["data"] = {"payload": extra}
        elif extra is not None:
            kwargs["on_behalf_of"] = users[extra]
        comment = "because" if action in {"reject", "request_changes"} else ""
        try:
            result = request_act(
                request_id=request.pk, action=action, actor=users[who], comment=comment, **kwargs
            )
        except errors.WorkflowError:
            # a refusal changes nothing at all
            assert snapshot(request) == before, f"{who} {action} was refused but changed something"
            continue
        request.refresh_from_db()
        # one transition entry, from the state before to the state after, along a lifecycle edge
        new = list(AuditEntry.objects.for_instance(request).filter(seq__gt=before[6]).order_by("seq"))
        assert [(e.kind, e.action, e.source, e.target) for e in new] == [
            (AuditEntry.Kind.TRANSITION, action, source, request.state)
        ]
        assert result.target == request.state
        assert (source, request.state) in LEGAL_EDGES
        _check_state(request)
        # the stage never goes back within a revision
        if request.revision != last_revision:
            assert action == "resubmit"
            assert request.revision == last_revision + 1
        elif request.state == State.IN_REVIEW and last_index is not None:
            assert request.stage_index is not None
            assert request.stage_index >= last_index, (
                f"stage went back from {last_index} to {request.stage_index}"
            )
        if request.state == State.IN_REVIEW:
            last_revision, last_index = request.revision, request.stage_index
        else:
            last_revision, last_index = request.revision, None
        _check_once(request, once_per_request=once_per_request, carry_over=carry_over)

    # (seen with --hypothesis-show-statistics: how the generated cases ended)
    event(f"ended {request.state}")
    if request.state == State.APPROVED:
        _check_approved(request, pool, carry_over=carry_over)
    if request.state == State.REJECTED:
        assert _counted(request, carry_over=False)[-1].outcome == "reject"
    # every transition in the trail is one recorded change of state (or a stay in review)
    trail = list(AuditEntry.objects.for_instance(request).order_by("seq"))
    assert all(a.target == b.source for a, b in itertools.pairwise(trail))
    assert trail[-1].target == request.state
    assert audit_verify().ok


@pytest.mark.django_db
def test_random_policies_and_decisions_keep_every_invariant():
    # given a fixed pool of people, groups, a team and delegations, made once
    pool = _make_pool()
    _POOL[:] = [pool]

    # when random policies meet random payloads and random actions by random people
    @settings(
        # ~20 s on SQLite; BATON_PROPERTY_EXAMPLES=1000 for a long hunt (passed on both databases)
        max_examples=int(os.environ.get("BATON_PROPERTY_EXAMPLES", "60")),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        document=policies(), payload=payloads, steps=st.integers(min_value=0, max_value=14), data=st.data()
    )
    def run(document: dict[str, Any], payload: dict[str, Any], steps: int, data: st.DataObject) -> None:
        _run(pool, document, payload, steps, data)

    # then every invariant holds after every step
    run()
