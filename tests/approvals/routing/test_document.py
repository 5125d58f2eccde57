"""Reading a policy document: every key it may hold, and one clear line per structural problem."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import yaml

from approvals.routing import (
    AllOf,
    AnyOf,
    Approvers,
    Escalation,
    Leaf,
    PolicyError,
    policy_parse,
)
from approvals.routing.model import MAX_STAGES


def _stage(**extra: Any) -> dict[str, Any]:
    return {"name": "review", "approvers": {"users": ["alex"]}, **extra}


def _problems(document: Any) -> list[str]:
    with pytest.raises(PolicyError) as caught:
        policy_parse(document)
    return caught.value.problems


def _stage_problems(**extra: Any) -> list[str]:
    return _problems({"stages": [_stage(**extra)]})


def test_a_full_document_reads_every_key():
    # given a document that uses every key a policy may hold
    document = yaml.safe_load(
        """
        request_type: expense
        name: Expenses
        description: Claims
        options: {one_decision_per_person: false, carry_over_approvals: true}
        stages:
          - name: manager
            description: The line manager checks it.
            approvers: {requester_manager: true, team_manager: true}
            rule: any
            sla: 2d
            escalate_to: {group: managers}
          - name: finance
            when: {all: [{field: amount, op: gt, value: 1000}, {any: [{field: currency, op: in, value: [EUR, USD]}, {field: vendor.country, op: exists}]}]}
            approvers: {users: [fiona, fiona, " carl "], groups: [finance]}
            rule: all
            sla: P1DT4H
            escalate_to: {user: carl}
          - name: committee
            approvers: {groups: [procurement]}
            rule: quorum
            quorum: 2
            veto: false
            sla: 1d12h30m
        """
    )
    # when it is read
    policy = policy_parse(document)
    # then the options and each stage mean what the document says
    assert policy.one_decision_per_person is False
    assert policy.carry_over_approvals is True
    manager, finance, committee = policy.stages
    assert manager.name == "manager"
    assert manager.description == "The line manager checks it."
    assert manager.approvers == Approvers(requester_manager=True, team_manager=True)
    assert (manager.rule, manager.quorum, manager.veto, manager.condition) == ("any", None, True, None)
    assert manager.sla == timedelta(days=2)
    assert manager.escalate_to == Escalation(group="managers")
    # names are trimmed and duplicates dropped, in order
    assert finance.approvers == Approvers(users=("fiona", "carl"), groups=("finance",))
    assert finance.rule == "all"
    assert finance.sla == timedelta(days=1, hours=4)
    assert finance.escalate_to == Escalation(user="carl")
    assert finance.condition == AllOf(
        (
            Leaf("amount", "gt", 1000),
            AnyOf((Leaf("currency", "in", ("EUR", "USD")), Leaf("vendor.country", "exists", True))),
        )
    )
    assert (committee.rule, committee.quorum, committee.veto) == ("quorum", 2, False)
    assert committee.sla == timedelta(days=1, hours=12, minutes=30)
    assert policy.stage_index("finance") == 1
    assert policy.stage_index("nope") is None


def test_defaults_are_one_decision_per_person_no_carry_over_rule_any_with_veto():
    # given the smallest document there is
    policy = policy_parse({"stages": [_stage()]})
    # then the defaults apply
    assert policy.one_decision_per_person is True
    assert policy.carry_over_approvals is False
    (stage,) = policy.stages
    assert (stage.rule, stage.veto, stage.quorum, stage.sla, stage.escalate_to) == (
        "any",
        True,
        None,
        None,
        None,
    )
    # and a null `when` or null options mean "none"
    assert policy_parse({"options": None, "stages": [_stage(when=None)]}).stages[0].condition is None


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        (None, "a policy is a mapping with a list of 'stages'"),
        ([], "a policy is a mapping with a list of 'stages'"),
        ({}, "stages: a policy needs at least one stage"),
        ({"stages": []}, "stages: a policy needs at least one stage"),
        ({"stages": {"name": "x"}}, "stages: a policy needs at least one stage"),
        ({"stages": [_stage()], "colour": "red"}, "unknown top-level key(s) colour"),
        ({"stages": [_stage()], "options": ["fast"]}, "options: must be a mapping"),
        ({"stages": [_stage()], "options": {"fast": True}}, "options: unknown option(s) fast"),
        (
            {"stages": [_stage()], "options": {"one_decision_per_person": "yes"}},
            "options.one_decision_per_person: must be true or false (got 'yes')",
        ),
        (
            {"stages": [_stage()], "options": {"carry_over_approvals": 1}},
            "options.carry_over_approvals: must be true or false (got 1)",
        ),
        ({"stages": ["review"]}, "stage 1: must be a mapping with at least name and approvers"),
        (
            {"stages": [{"approvers": {}}]},
            "stage 1: 'name' must be lower-case letters, digits, - or _ (got None)",
        ),
        (
            {"stages": [_stage(name="Finance Team")]},
            "stage 1: 'name' must be lower-case letters, digits, - or _ (got 'Finance Team')",
        ),
        (
            {"stages": [_stage(), _stage()]},
            "stage 2 'review': another stage has the same name",
        ),
    ],
)
def test_structural_problems_of_the_document(document, problem):
    # when a broken document is read, then the problem is named in one line
    assert problem in _problems(document)


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        ({"colour": "red"}, "unknown key(s) colour"),
        ({"approvers": None}, "'approvers' must name users, groups, requester_manager or team_manager"),
        ({"approvers": ["alex"]}, "'approvers' must name users, groups, requester_manager or team_manager"),
        ({"approvers": {"people": ["alex"]}}, "unknown approver key(s) people"),
        ({"approvers": {"users": "alex"}}, "approvers.users: must be a list of names"),
        ({"approvers": {"users": ["alex", ""]}}, "approvers.users: must be a list of names"),
        ({"approvers": {"groups": [3]}}, "approvers.groups: must be a list of names"),
        ({"approvers": {"requester_manager": "yes"}}, "approvers.requester_manager: must be true or false"),
        ({"approvers": {"team_manager": 1}}, "approvers.team_manager: must be true or false"),
        ({"rule": "most"}, "'rule' must be one of any, all, quorum (got 'most')"),
        ({"rule": "quorum"}, "rule quorum needs 'quorum': a whole number of at least 1 (got None)"),
        ({"rule": "quorum", "quorum": 0}, "rule quorum needs 'quorum': a whole number of at least 1 (got 0)"),
        (
            {"rule": "quorum", "quorum": 1.5},
            "rule quorum needs 'quorum': a whole number of at least 1 (got 1.5)",
        ),
        (
            {"rule": "quorum", "quorum": True},
            "rule quorum needs 'quorum': a whole number of at least 1 (got true)",
        ),
        ({"quorum": 2}, "'quorum' only applies to rule quorum (this stage's rule is any)"),
        ({"rule": "all", "quorum": 2}, "'quorum' only applies to rule quorum (this stage's rule is all)"),
        ({"veto": "no"}, "veto: must be true or false (got 'no')"),
        ({"rule": "all", "veto": False}, "'veto: false' has no meaning with rule all"),
        ({"sla": "soon"}, "'sla' must be a duration such as 30m, 4h, 2d or P2DT4H (got 'soon')"),
        ({"sla": 3}, "'sla' must be a duration such as 30m, 4h, 2d or P2DT4H (got 3)"),
        ({"sla": "0m"}, "'sla' must be a duration such as 30m, 4h, 2d or P2DT4H (got '0m')"),
        ({"escalate_to": "managers"}, "'escalate_to' must be {user: name} or {group: name}"),
        ({"escalate_to": {"team": "x"}}, "'escalate_to' must be {user: name} or {group: name}"),
        ({"escalate_to": {"user": "a", "group": "b"}}, "'escalate_to' must be {user: name} or {group: name}"),
        ({"escalate_to": {"user": 7}}, "'escalate_to' must be {user: name} or {group: name}"),
        ({"escalate_to": {"user": "  "}}, "'escalate_to' must be {user: name} or {group: name}"),
        ({"description": 5}, "'description' must be text"),
    ],
)
def test_structural_problems_of_a_stage(extra, problem):
    # when a stage has a broken key, then one line names the stage and the problem
    problems = _stage_problems(**extra)
    assert len(problems) == 1, problems
    assert problems[0].startswith("stage 1 'review': ")
    assert problem in problems[0]


@pytest.mark.parametrize(
    ("when", "problem"),
    [
        ("amount > 5", "a condition is {field, op, value} or {all: [...]} or {any: [...]}"),
        ({"all": []}, "'all' needs a non-empty list of conditions"),
        ({"any": {"field": "a"}}, "'any' needs a non-empty list of conditions"),
        (
            {"field": "a", "op": "eq", "value": 1, "why": "x"},
            "unknown key(s) why (a condition has field, op, value)",
        ),
        ({"field": "a b", "op": "eq", "value": 1}, "'field' must be a payload field name such as amount"),
        ({"field": "a..b", "op": "eq", "value": 1}, "'field' must be a payload field name"),
        (
            {"op": "eq", "value": 1},
            "'field' must be a payload field name such as amount or vendor.country (got None)",
        ),
        (
            {"field": "a", "op": "like", "value": 1},
            "'op' must be one of eq, ne, gt, gte, lt, lte, in, not_in, contains, exists (got 'like')",
        ),
        ({"field": "a", "op": "eq"}, "condition on 'a' has no 'value'"),
        ({"field": "a", "op": "in", "value": 1}, "'in' needs a list as its value (got 1)"),
        ({"field": "a", "op": "not_in", "value": "x"}, "'not_in' needs a list as its value (got 'x')"),
        ({"field": "a", "op": "exists", "value": "yes"}, "'exists' takes true or false"),
        (
            {"field": "a", "op": "eq", "value": {"x": 1}},
            "a condition's value must be a number, text, true/false",
        ),
        ({"field": "a", "op": "eq", "value": None}, "a condition's value must be a number, text, true/false"),
        ({"field": "a", "op": "eq", "value": [1, 2]}, "only 'in' and 'not_in' take a list"),
        ({"field": "a", "op": "contains", "value": ["x"]}, "only 'in' and 'not_in' take a list"),
        (
            {"field": "a", "op": "in", "value": [1, {"x": 1}]},
            "the values of 'in' must be numbers, text or true/false",
        ),
        (
            {"field": "a", "op": "not_in", "value": [[1]]},
            "the values of 'not_in' must be numbers, text or true/false",
        ),
        (
            {"all": [{"field": "a", "op": "eq", "value": 1}, {"field": "b", "op": "??", "value": 1}]},
            "when.all[2]: 'op' must be one of",
        ),
        (
            {"any": [{"all": [{"field": "a", "op": "gt"}]}]},
            "when.any[1].all[1]: condition on 'a' has no 'value'",
        ),
    ],
)
def test_structural_problems_of_a_condition(when, problem):
    # when a stage's condition is broken, then one line says where in it and what
    problems = _stage_problems(when=when)
    assert len(problems) == 1, problems
    assert problems[0].startswith("stage 1 'review': when")
    assert problem in problems[0]


def test_conditions_nest_at_most_six_levels():
    # given conditions nested six and seven levels deep
    leaf: dict[str, Any] = {"field": "a", "op": "eq", "value": 1}
    six: dict[str, Any] = leaf
    for _ in range(6):
        six = {"all": [six]}
    seven = {"any": [six]}
    # then six levels read and seven are refused in one line
    assert policy_parse({"stages": [_stage(when=six)]}).stages[0].condition is not None
    (problem,) = _stage_problems(when=seven)
    assert "conditions nest too deeply (at most 6 levels)" in problem


def test_every_problem_of_a_document_is_listed_one_per_line():
    # given a document with problems in the options and in two stages
    document = {
        "options": {"fast": True},
        "stages": [_stage(rule="most"), _stage(name="b", sla="never", approvers={"users": "x"})],
    }
    # when it is read
    problems = _problems(document)
    # then each problem is one line of its own
    assert problems == [
        "options: unknown option(s) fast",
        "stage 1 'review': 'rule' must be one of any, all, quorum (got 'most')",
        "stage 2 'b': approvers.users: must be a list of names",
        "stage 2 'b': 'sla' must be a duration such as 30m, 4h, 2d or P2DT4H (got 'never')",
    ]
    assert all("\n" not in p for p in problems)


def test_too_many_stages():
    stages = [_stage(name=f"s{i}") for i in range(MAX_STAGES + 1)]
    assert f"stages: at most {MAX_STAGES} stages" in _problems({"stages": stages})


def test_keys_that_are_not_text_are_named_not_a_crash():
    # given YAML that turns `on:` into the key True and `1:` into the number 1
    document = yaml.safe_load(
        "on: x\nstages:\n  - name: review\n    approvers: {users: [alex], 2: y}\n    1: x\n    when: {field: a, op: eq, value: 1, yes: 2}\n"
    )
    # when it is read, then each odd key is reported as text
    problems = _problems(document)
    assert "unknown top-level key(s) True" in problems
    assert any("unknown key(s) 1" in p for p in problems)
    assert any("unknown approver key(s) 2" in p for p in problems)
    # the condition's odd key is reported too (the stage with it is not read further)
    assert any("unknown key(s) True (a condition has field, op, value)" in p for p in problems)


def test_policy_error_joins_its_problems():
    error = PolicyError(["one", "two"])
    assert str(error) == "one; two"
    assert error.problems == ["one", "two"]
