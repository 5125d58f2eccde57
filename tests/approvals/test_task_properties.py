"""Random policies with task stages (alone, in parallel groups, reading earlier outputs,
handing back) and random work through the real service, and the invariants after every
step (on top of those of test_policy_properties):

- a request is fulfilled only when every task step that applies had its rule met by the
  completions that stand (a single task done; any / all / a quorum of a group);
- outputs are recorded exactly once per completion: one audit entry carries each
  completion's outputs, and the request's outputs are the latest standing completion's;
- no stage reads an output that does not exist yet: a stage the request waits in (or
  passed) that reads outputs.<s>.<field> comes after task <s>, and <s> was done or skipped;
- a refused action changed nothing; the trail verifies.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from approvals.models import ApprovalRequest, State, TaskCompletion
from approvals.route import route_data
from approvals.routing import condition_holds
from approvals.routing.conditions import condition_leaves
from approvals.services import request_act, request_create
from tests.approvals.policy_world import snapshot
from tests.approvals.test_policy_properties import GROUP_MEMBERS, Pool, _make_pool, stages
from tests.factories import publish_policy
from workflows import errors
from workflows.audit import audit_verify
from workflows.models import AuditEntry, Handoff

HOLDER_TOKENS = ["u1", "u2", "u3", "u4", "group:g1", "group:g2"]
OUTPUTS = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 9}}}


def _holders(draw: Any) -> dict[str, Any]:
    tokens = draw(st.lists(st.sampled_from(HOLDER_TOKENS), min_size=1, max_size=2, unique=True))
    found: dict[str, Any] = {}
    users = [t for t in tokens if not t.startswith("group:")]
    groups = [t.removeprefix("group:") for t in tokens if t.startswith("group:")]
    if users:
        found["users"] = users
    if groups:
        found["groups"] = groups
    return found


@st.composite
def task_stage(draw: Any, name: str, earlier_tasks: list[str]) -> dict[str, Any]:
    stage: dict[str, Any] = {"name": name, "type": "task", "holders": _holders(draw), "outputs": OUTPUTS}
    targets = ["requester", "not_fulfilled", *earlier_tasks]
    stage["if_not_done"] = draw(st.sampled_from(targets))
    if earlier_tasks and draw(st.booleans()):
        source = draw(st.sampled_from(earlier_tasks))
        op = draw(st.sampled_from(["gt", "lt", "exists"]))
        value = draw(st.booleans()) if op == "exists" else draw(st.integers(0, 9))
        stage["when"] = {"field": f"outputs.{source}.n", "op": op, "value": value}
    return stage


@st.composite
def task_policies(draw: Any) -> dict[str, Any]:
    """Decision stages and task steps (single or parallel) in a random order."""
    steps = draw(st.lists(st.sampled_from(["decision", "task", "group"]), min_size=1, max_size=4))
    document_stages: list[dict[str, Any]] = []
    earlier: list[str] = []
    for i, kind in enumerate(steps, start=1):
        if kind == "decision":
            stage = draw(stages(i))
            if earlier and draw(st.booleans()):
                source = draw(st.sampled_from(earlier))
                stage["when"] = {
                    "field": f"outputs.{source}.n",
                    "op": "gte",
                    "value": draw(st.integers(0, 9)),
                }
            document_stages.append(stage)
        elif kind == "task":
            document_stages.append(draw(task_stage(f"t{i}", earlier)))
            earlier.append(f"t{i}")
        else:
            members = [draw(task_stage(f"t{i}{m}", earlier)) for m in "abc"[: draw(st.integers(2, 3))]]
            rule = draw(st.sampled_from(["any", "all", "quorum"]))
            group: dict[str, Any] = {"name": f"p{i}", "rule": rule, "stages": members}
            if rule == "quorum":
                group["quorum"] = draw(st.integers(1, len(members)))
            document_stages.append({"parallel": group})
            earlier += [m["name"] for m in members]
    return {
        "options": {
            "one_decision_per_person": draw(st.booleans()),
            "carry_over_approvals": draw(st.booleans()),
        },
        "stages": document_stages,
    }


def _names_holding(request: ApprovalRequest, pool: Pool) -> list[str]:
    names = []
    for handoff in Handoff.objects.for_instance(request).open().select_related("candidate_group"):
        group = handoff.candidate_group.name if handoff.candidate_group else ""
        for name, user in pool.users.items():
            if handoff.assignee_id == user.pk or (
                handoff.assignee_id is None and name in GROUP_MEMBERS.get(group, [])
            ):
                names.append(name)
    return sorted(set(names)) or ["rita"]


def _next(data: st.DataObject, request: ApprovalRequest, pool: Pool) -> tuple[str, str, dict[str, Any]]:
    action = data.draw(
        st.sampled_from(
            ["complete", "complete", "complete", "hand_back", "approve", "approve", "reject", "resubmit"]
        )
    )
    who = data.draw(st.sampled_from([*_names_holding(request, pool), "u1"]))
    extra: dict[str, Any] = {}
    if action == "complete":
        value = data.draw(st.one_of(st.integers(0, 9), st.just(-1), st.just("x")))  # sometimes invalid
        extra = {"outputs": {"n": value}}
    if action == "resubmit":
        who, extra = "rita", {"payload": {"amount": 100, "kind": "a"}}
    return action, who, extra


def _check_fulfilled(request: ApprovalRequest) -> None:
    """Fulfilled: every task step that applies had its rule met by the standing completions."""
    policy = request.policy
    assert policy is not None
    data = route_data(request.payload, request.outputs)
    done = set(request.outputs)
    index = 0
    while index < len(policy.stages):
        step = policy.step_of(index)
        index = step[-1] + 1
        members = [policy.stages[i] for i in step]
        if not members[0].is_task:
            continue
        applicable = [s for s in members if condition_holds(s.condition, data)]
        group = members[0].group
        needed = group.needed(len(applicable)) if group else len(applicable)
        assert len([s for s in applicable if s.name in done]) >= needed, f"fulfilled with step {step} unmet"


def _check_outputs_recorded_once(request: ApprovalRequest) -> None:
    completions = list(TaskCompletion.objects.filter(request=request, outcome="completed").order_by("id"))
    entries = [
        e
        for e in AuditEntry.objects.for_instance(request).filter(action="complete").order_by("seq")
        if e.data.get("task", {}).get("outcome") == "completed"
    ]
    assert [(c.stage_name, c.outputs) for c in completions] == [
        (e.data["task"]["stage"], e.data["task"]["outputs"]) for e in entries
    ]
    current = [c for c in completions if c.revision == request.revision]
    for name, outputs in request.outputs.items():
        latest = [c for c in current if c.stage_name == name]
        assert latest, f"output of {name} with no completion in this revision"
        assert latest[-1].outputs == outputs


def _check_reads(request: ApprovalRequest) -> None:
    """A stage waited in reads only outputs of earlier tasks that are done (or were skipped)."""
    policy = request.policy
    if policy is None or request.stage_index is None:
        return
    for index in policy.step_of(request.stage_index):
        stage = policy.stages[index]
        if stage.condition is None:
            continue
        for leaf in condition_leaves(stage.condition):
            if leaf.field.startswith("outputs."):
                source = leaf.field.split(".")[1]
                position = policy.stage_index(source)
                assert position is not None
                assert position < index, f"{stage.name} reads {source}, which comes later"
                assert policy.stages[position].group is None or policy.stages[position].group != stage.group


def _run(pool: Pool, document: dict[str, Any], steps: int, data: st.DataObject) -> None:
    publish_policy(request_type=pool.request_type, document=document)
    try:
        request = request_create(
            requester=pool.users["rita"],
            request_type=pool.request_type,
            title="Work",
            payload={"amount": 100, "kind": "a"},
        )
    except errors.WorkflowError:
        event("refused at submission")
        return
    for _ in range(steps):
        action, who, extra = _next(data, request, pool)
        before = snapshot(request)
        outputs_before = dict(request.outputs)
        comment = "because" if action in {"reject", "hand_back", "request_changes"} else ""
        try:
            request_act(
                request_id=request.pk, action=action, actor=pool.users[who], comment=comment, data=extra
            )
        except errors.WorkflowError:
            assert snapshot(request) == before, f"{who} {action} was refused but changed something"
            request.refresh_from_db()
            assert request.outputs == outputs_before
            continue
        request.refresh_from_db()
        _check_outputs_recorded_once(request)
        _check_reads(request)
        if request.state == State.FULFILLED:
            _check_fulfilled(request)
    event(f"ended {request.state}")
    assert audit_verify().ok


@pytest.mark.django_db
def test_random_policies_with_tasks_keep_every_invariant():
    pool = _make_pool()

    @settings(
        max_examples=int(os.environ.get("BATON_PROPERTY_EXAMPLES", "40")),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(document=task_policies(), steps=st.integers(min_value=0, max_value=12), data=st.data())
    def run(document: dict[str, Any], steps: int, data: st.DataObject) -> None:
        _run(pool, document, steps, data)

    run()
