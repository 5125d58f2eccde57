"""Task stages: work handed from role to role after (or between) decisions, with checked
outputs, parallel groups, hand-backs, fulfilment and separation of duties across stages.

Through the real service, under the demo policies (access: an IT task after the owner
and security; onboarding: IT, facilities and HR in parallel; invoice: payment by someone
other than the approver) and a few policies of the tests' own.
"""

from __future__ import annotations

import pytest

from approvals.models import ApprovalRequest, TaskCompletion
from approvals.publishing import document_problems, policy_draft_create, policy_move_apply, policy_publish
from approvals.route import route_simulate
from tests.approvals.policy_world import PolicyWorld, holders, last_entry, load_demo_world, snapshot
from tests.factories import publish_policy
from workflows import errors
from workflows.audit import audit_verify

pytestmark = pytest.mark.django_db

ONBOARDING = {"employee": "Sam Lee", "starts_on": "2026-12-14", "job_title": "Support engineer"}
IT_DONE = {"account_name": "slee", "email": "sam.lee@example.com"}
FACILITIES_DONE = {"desk": "3.14", "badge_number": "20417"}
HR_DONE = {"employee_id": "E10233", "contract_signed": True}


@pytest.fixture
def world() -> PolicyWorld:
    return load_demo_world()


def approved_access(world: PolicyWorld) -> ApprovalRequest:
    req = world.submit("access")
    world.act(req, "approve", "owen")
    world.act(req, "approve", "sam")
    req.refresh_from_db()
    return req


def approved_hire(world: PolicyWorld) -> ApprovalRequest:
    req = world.submit("onboarding", **ONBOARDING)
    world.act(req, "approve", "maria")
    req.refresh_from_db()
    return req


# --- one task after the decisions ---------------------------------------------------------------


def test_an_approved_access_request_waits_for_it_and_is_fulfilled_when_it_completes(world):
    # given an access request the owner and security approved
    req = approved_access(world)

    # then it is approved and being fulfilled: IT holds the task
    assert (req.state, req.in_fulfilment) == ("approved", True)
    assert holders(req) == [("it-account", "group it")]

    # when ivan of IT completes it with the account's name and a note for whoever is next
    result = world.act(
        req, "complete", "ivan", comment="Password sent by SMS.", data={"outputs": {"account_name": "rita.r"}}
    )

    # then the request is fulfilled; the output is stored with it under the stage's name
    req.refresh_from_db()
    assert (result.instance.state, req.state, req.in_fulfilment) == ("fulfilled", "fulfilled", False)
    assert req.outputs == {"it-account": {"account_name": "rita.r"}}
    assert req.fulfilled_at is not None
    assert holders(req) == []
    # and recorded: a completion with the note, and the audit entry with the outputs
    (done,) = TaskCompletion.objects.filter(request=req)
    assert (done.stage_name, done.outcome, done.outputs, done.note) == (
        "it-account",
        "completed",
        {"account_name": "rita.r"},
        "Password sent by SMS.",
    )
    entry = last_entry(req)
    assert entry.data["task"] == {
        "stage": "it-account",
        "outcome": "completed",
        "outputs": {"account_name": "rita.r"},
    }
    assert entry.comment == "Password sent by SMS."
    assert audit_verify().ok


@pytest.mark.parametrize(
    ("outputs", "field", "message"),
    [
        ({}, "outputs.account_name", "This field is required."),
        ({"account_name": "Rita R"}, "outputs.account_name", "Not in the expected form."),
        (
            {"account_name": "rita", "expires_on": "soon"},
            "outputs.expires_on",
            "Must be a date (YYYY-MM-DD).",
        ),
        ({"account_name": 7}, "outputs.account_name", "Must be text."),
    ],
)
def test_invalid_outputs_are_refused_naming_the_field_and_change_nothing(world, outputs, field, message):
    # given an access request waiting for IT
    req = approved_access(world)
    before = snapshot(req)
    # when IT completes it with outputs the stage's schema refuses
    with pytest.raises(errors.InvalidInput) as refused:
        world.act(req, "complete", "ivan", data={"outputs": outputs})
    # then the error names the field and why, and nothing was written
    assert message in refused.value.field_errors[field]
    assert snapshot(req) == before
    assert not TaskCompletion.objects.filter(request=req).exists()


def test_only_the_holders_of_a_task_may_complete_it_and_the_reason_is_said(world):
    req = approved_access(world)
    # given people who do not hold the task: the requester, an approver, a manager
    for who in ("rita", "owen", "maria"):
        with pytest.raises(errors.Forbidden, match="No task of this request is waiting for you"):
            world.act(req, "complete", who, data={"outputs": {"account_name": "x1"}})
    # and decisions are not offered while the request waits for a task (a conflict, 409)
    with pytest.raises(errors.TransitionNotAllowed):
        world.act(req, "approve", "owen")


def test_a_task_cannot_be_done_and_goes_back_to_the_requester_with_the_reason(world):
    # given an access request waiting for IT, whose policy hands an impossible task back
    req = approved_access(world)
    # when IT says it cannot be done (a reason is required)
    with pytest.raises(errors.InvalidInput) as missing:
        world.act(req, "hand_back", "ivan")
    assert missing.value.field_errors["comment"] == ["Say why it cannot be done."]
    world.act(req, "hand_back", "ivan", comment="Payroll accounts need a cost centre.")
    # then the requester holds it to change and resubmit
    req.refresh_from_db()
    assert req.state == "changes_requested"
    assert holders(req) == [("changes", "rita")]
    (back,) = TaskCompletion.objects.filter(request=req)
    assert (back.outcome, back.target, back.note) == (
        "not_done",
        "requester",
        "Payroll accounts need a cost centre.",
    )
    assert last_entry(req).data["task"] == {
        "stage": "it-account",
        "outcome": "not_done",
        "target": "requester",
    }
    # when she resubmits, it is routed from the start again (the approvals do not carry over)
    world.act(
        req,
        "resubmit",
        "rita",
        data={
            "payload": {
                "system": "payroll",
                "level": "read",
                "justification": "Quarterly review, cost centre 4711.",
            }
        },
    )
    req.refresh_from_db()
    assert (req.state, req.revision, req.outputs) == ("in_review", 2, {})


# --- parallel work ---------------------------------------------------------------------------


def test_a_new_hire_goes_to_it_facilities_and_hr_at_once_and_is_fulfilled_when_all_are_done(world):
    # given an onboarding the hiring manager approved
    req = approved_hire(world)
    assert req.state == "approved"
    assert holders(req) == [("facilities", "group facilities"), ("hr", "group hr"), ("it", "group it")]

    # when IT and HR are done, it still waits for facilities alone
    assert world.act(req, "complete", "ivan", data={"outputs": IT_DONE}).instance.state == "approved"
    assert holders(req) == [("facilities", "group facilities"), ("hr", "group hr")]
    assert world.act(req, "complete", "hana", data={"outputs": HR_DONE}).instance.state == "approved"
    assert holders(req) == [("facilities", "group facilities")]
    # and the same task cannot be completed twice
    with pytest.raises(errors.Forbidden):
        world.act(req, "complete", "ivan", data={"outputs": IT_DONE})

    # when facilities is done too, it is fulfilled with every output stored once
    result = world.act(req, "complete", "faye", data={"outputs": FACILITIES_DONE})
    assert result.instance.state == "fulfilled"
    req.refresh_from_db()
    assert req.outputs == {"it": IT_DONE, "hr": HR_DONE, "facilities": FACILITIES_DONE}
    assert sorted(TaskCompletion.objects.filter(request=req).values_list("stage_name", flat=True)) == [
        "facilities",
        "hr",
        "it",
    ]
    assert audit_verify().ok


@pytest.mark.parametrize(
    ("rule", "quorum", "done_after"), [("any", None, 1), ("quorum", 2, 2), ("all", None, 3)]
)
def test_a_parallel_group_moves_on_when_its_rule_is_met(world, rule, quorum, done_after):
    # given a type whose three tasks run in parallel under `rule`, then a last decision
    document = {
        "stages": [
            {
                "parallel": {
                    "name": "work",
                    "rule": rule,
                    **({"quorum": quorum} if quorum else {}),
                    "stages": [
                        {"name": "a", "type": "task", "holders": {"users": ["ivan"]}},
                        {"name": "b", "type": "task", "holders": {"users": ["faye"]}},
                        {"name": "c", "type": "task", "holders": {"users": ["hana"]}},
                    ],
                }
            },
            {"name": "sign-off", "approvers": {"users": ["owen"]}},
        ]
    }
    publish_policy(request_type=world.types["general"], document=document)
    req = world.submit("general")
    assert req.state == "in_review"  # a decision still comes after the tasks
    order = ["ivan", "faye", "hana"]
    # when the tasks are done one by one
    for count, who in enumerate(order, start=1):
        result = world.act(req, "complete", who)
        if count == done_after:
            break
        assert holders(req) != [("sign-off", "owen")]
    # then the group's rule is met after `done_after`; the rest close as no longer needed
    assert result.instance.state == "in_review"
    assert holders(req) == [("sign-off", "owen")]
    # and the sign-off approves it: the last step was a decision, so it is approved
    assert world.act(req, "approve", "owen").instance.state == "approved"


# --- data between steps -------------------------------------------------------------------------


def test_a_later_stage_reads_an_earlier_tasks_output_in_its_condition(world):
    # given a type where IT assesses a risk level and security decides only when it is high
    document = {
        "stages": [
            {
                "name": "it",
                "type": "task",
                "holders": {"groups": ["it"]},
                "outputs": {
                    "type": "object",
                    "required": ["risk"],
                    "properties": {"risk": {"type": "string", "enum": ["low", "high"]}},
                },
            },
            {
                "name": "security",
                "when": {"field": "outputs.it.risk", "op": "eq", "value": "high"},
                "approvers": {"groups": ["security"]},
            },
            {"name": "it-setup", "type": "task", "holders": {"users": ["ivan"]}},
        ]
    }
    assert document_problems(document=document, schema={}) == []
    publish_policy(request_type=world.types["general"], document=document)

    # when IT rates one request low and another high
    low, high = world.submit("general"), world.submit("general")
    world.act(low, "complete", "ivan", data={"outputs": {"risk": "low"}})
    world.act(high, "complete", "ivan", data={"outputs": {"risk": "high"}})

    # then the low one skips security (saying why) and the high one waits for it
    assert holders(low) == [("it-setup", "ivan")]
    assert last_entry(low).data["route"]["skipped"] == [
        {"stage": "security", "reason": "outputs.it.risk is 'low', so outputs.it.risk = 'high' is false"}
    ]
    assert holders(high) == [("security", "group security")]
    high.refresh_from_db()
    assert high.state == "in_review"


def test_an_approver_rule_names_the_person_an_earlier_task_chose(world):
    # given a task whose output names who approves next
    document = {
        "stages": [
            {
                "name": "triage",
                "type": "task",
                "holders": {"users": ["ivan"]},
                "outputs": {
                    "type": "object",
                    "required": ["reviewer"],
                    "properties": {"reviewer": {"type": "string"}},
                },
            },
            {"name": "review", "approvers": {"from_output": "outputs.triage.reviewer"}},
        ]
    }
    assert document_problems(document=document, schema={}) == []
    publish_policy(request_type=world.types["general"], document=document)
    req = world.submit("general")
    # when triage names owen
    world.act(req, "complete", "ivan", data={"outputs": {"reviewer": "owen"}})
    # then owen holds the review and approves it
    assert holders(req) == [("review", "owen")]
    assert world.act(req, "approve", "owen").instance.state == "approved"


@pytest.mark.parametrize(
    ("stages", "problem"),
    [
        (
            [
                {
                    "name": "sec",
                    "when": {"field": "outputs.it.risk", "op": "eq", "value": "high"},
                    "approvers": {"users": ["owen"]},
                }
            ],
            "stage 1 'sec': reads 'outputs.it.risk', which no earlier task stage produces",
        ),
        (
            [
                {"name": "sec", "approvers": {"users": ["owen"]}},
                {
                    "name": "it",
                    "type": "task",
                    "holders": {"users": ["ivan"]},
                    "outputs": {"type": "object", "properties": {"risk": {"type": "string"}}},
                },
                {
                    "name": "late",
                    "when": {"field": "outputs.it.level", "op": "gt", "value": 3},
                    "approvers": {"users": ["owen"]},
                },
            ],
            "stage 3 'late': reads 'outputs.it.level', which no earlier task stage produces",
        ),
        (
            [
                {
                    "name": "it",
                    "type": "task",
                    "holders": {"users": ["ivan"]},
                    "outputs": {"type": "object", "properties": {"risk": {"type": "string"}}},
                },
                {
                    "name": "late",
                    "when": {"field": "outputs.it.risk", "op": "gt", "value": 3},
                    "approvers": {"users": ["owen"]},
                },
            ],
            "'outputs.it.risk' is string, so gt cannot compare it",
        ),
        (
            [
                {
                    "name": "it",
                    "type": "task",
                    "holders": {"users": ["ivan"]},
                    "outputs": {"type": "object", "properties": {"n": {"type": "number"}}},
                },
                {"name": "review", "approvers": {"from_output": "outputs.it.n"}},
            ],
            "approvers.from_output 'outputs.it.n' must be text (a user name) or a list of user names",
        ),
        (
            [
                {
                    "parallel": {
                        "name": "both",
                        "stages": [
                            {
                                "name": "a",
                                "type": "task",
                                "holders": {"users": ["ivan"]},
                                "outputs": {"type": "object", "properties": {"x": {"type": "string"}}},
                            },
                            {
                                "name": "b",
                                "type": "task",
                                "holders": {"users": ["faye"]},
                                "when": {"field": "outputs.a.x", "op": "eq", "value": "y"},
                            },
                        ],
                    }
                }
            ],
            "stage 2 'b': reads 'outputs.a.x', which no earlier task stage produces",
        ),
    ],
)
def test_policy_check_refuses_a_stage_that_reads_an_output_no_earlier_stage_produces(world, stages, problem):
    problems = document_problems(document={"stages": stages}, schema={})
    assert any(problem in p for p in problems), problems


def test_the_simulation_shows_what_each_stage_reads_and_hands_on(world):
    policy = world.types["onboarding"].current_policy.policy
    route = route_simulate(policy=policy, payload=ONBOARDING, requester=world["rita"])
    lines = route.describe()
    assert "2. it (task, with first-day): group it; one of them does it" in lines
    assert "   hands on outputs.it.account_name, outputs.it.email, outputs.it.laptop_serial" in lines
    assert "   hands on outputs.hr.contract_signed, outputs.hr.employee_id" in lines


# --- hand-backs and not fulfilled -------------------------------------------------------------


def test_hr_that_cannot_do_its_part_ends_the_onboarding_not_fulfilled(world):
    # given an onboarding whose HR task ends it when it cannot be done
    req = approved_hire(world)
    world.act(req, "complete", "ivan", data={"outputs": IT_DONE})
    # when HR says it cannot be done
    result = world.act(req, "hand_back", "hana", comment="The candidate declined the offer.")
    # then the request is not fulfilled, every open task closes, and the reason is on record
    assert result.instance.state == "not_fulfilled"
    assert holders(req) == []
    assert result.entry.comment == "The candidate declined the offer."
    assert result.entry.data["task"]["target"] == "not_fulfilled"


def test_a_task_handed_back_to_an_earlier_task_is_done_again_with_what_follows(world):
    # given a chain of three tasks where the last sends impossible work back to the first
    document = {
        "stages": [
            {
                "name": "prepare",
                "type": "task",
                "holders": {"users": ["ivan"]},
                "outputs": {"type": "object", "properties": {"v": {"type": "integer"}}},
            },
            {"name": "check", "type": "task", "holders": {"users": ["faye"]}},
            {"name": "ship", "type": "task", "holders": {"users": ["hana"]}, "if_not_done": "prepare"},
        ]
    }
    publish_policy(request_type=world.types["general"], document=document)
    req = world.submit("general")
    world.act(req, "complete", "ivan", data={"outputs": {"v": 1}})
    world.act(req, "complete", "faye")
    assert holders(req) == [("ship", "hana")]
    # when shipping cannot be done
    world.act(req, "hand_back", "hana", comment="Version 1 is broken.")
    # then preparing is done again, its earlier output no longer stands, and checking follows again
    req.refresh_from_db()
    assert (req.state, req.outputs) == ("approved", {})
    assert holders(req) == [("prepare", "ivan")]
    world.act(req, "complete", "ivan", data={"outputs": {"v": 2}})
    assert holders(req) == [("check", "faye")]
    world.act(req, "complete", "faye")
    assert world.act(req, "complete", "hana").instance.state == "fulfilled"
    req.refresh_from_db()
    assert req.outputs == {"prepare": {"v": 2}, "check": {}, "ship": {}}


def test_a_hand_back_must_name_an_earlier_task_stage(world):
    problems = document_problems(
        document={
            "stages": [
                {"name": "review", "approvers": {"users": ["owen"]}},
                {"name": "do", "type": "task", "holders": {"users": ["ivan"]}, "if_not_done": "review"},
            ]
        },
        schema={},
    )
    assert any("'if_not_done: review' must name an earlier task stage" in p for p in problems), problems


# --- separation of duties across stages ------------------------------------------------------


def test_the_person_who_approved_an_invoice_cannot_pay_it(world):
    # given an invoice fiona of finance approved
    req = world.submit("invoice", supplier="Paper Ltd", invoice_number="INV-7", amount=420)
    world.act(req, "approve", "fiona")
    req.refresh_from_db()
    assert holders(req) == [("payment", "group finance")]
    # when fiona tries to pay it herself, she is refused and told why
    with pytest.raises(
        errors.Forbidden,
        match="You took part in stage 'approval'; stage 'payment' must be done by someone else",
    ):
        world.act(
            req,
            "complete",
            "fiona",
            data={"outputs": {"transfer_reference": "TR-1", "paid_on": "2026-12-01"}},
        )
    # and felix, also of finance, pays it
    result = world.act(
        req, "complete", "felix", data={"outputs": {"transfer_reference": "TR-1", "paid_on": "2026-12-01"}}
    )
    assert result.instance.state == "fulfilled"


# --- moving requests in fulfilment -----------------------------------------------------------


def test_moving_an_onboarding_in_fulfilment_keeps_the_tasks_already_done(world):
    # given an onboarding where IT is done, and a new version that adds a welcome task after the group
    req = approved_hire(world)
    world.act(req, "complete", "ivan", data={"outputs": IT_DONE})
    document = world.types["onboarding"].current_policy.document
    document = {
        **document,
        "stages": [*document["stages"], {"name": "welcome", "type": "task", "holders": {"users": ["maria"]}}],
    }
    draft = policy_draft_create(request_type=world.types["onboarding"], document=document, actor=None)
    v2 = policy_publish(version=draft, actor=None)

    # when it is moved to the new version
    (row,) = policy_move_apply(request_type=world.types["onboarding"], to_version=v2)

    # then it is still in fulfilment, IT's part counts, facilities and HR still hold theirs
    assert row.moved, row.problem
    req.refresh_from_db()
    assert (req.state, req.policy_version_id) == ("approved", v2.pk)
    assert holders(req) == [("facilities", "group facilities"), ("hr", "group hr")]
    assert req.outputs["it"] == IT_DONE
    # and once they are done, the new welcome task follows, then it is fulfilled
    world.act(req, "complete", "faye", data={"outputs": FACILITIES_DONE})
    world.act(req, "complete", "hana", data={"outputs": HR_DONE})
    assert holders(req) == [("welcome", "maria")]
    assert world.act(req, "complete", "maria").instance.state == "fulfilled"


def test_a_manager_may_cancel_a_request_in_fulfilment_but_not_a_fulfilled_one(world):
    req = approved_access(world)
    assert world.act(req, "cancel", "maria", comment="No longer hiring").instance.state == "cancelled"
    assert holders(req) == []
    done = approved_access(world)
    world.act(done, "complete", "ivan", data={"outputs": {"account_name": "rita.r"}})
    with pytest.raises(errors.TransitionNotAllowed):
        world.act(done, "cancel", "maria", comment="Too late")
